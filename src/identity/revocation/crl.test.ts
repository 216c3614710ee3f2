// CRL parsing and checking: CRLs from src/pki's createCrl and from `openssl ca -gencrl`, malformed inputs,
// and the snapshot's answers (good, revoked, stale, missing, newest wins, wrong signer ignored).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import * as pkijs from "pkijs";
import { parsePemBundle } from "../certificate.ts";
import { mintCa } from "../testing/mint.ts";
import { x509 } from "../x509.ts";
import { revocationInfo } from "./cert-info.ts";
import { CrlParseError, crlSignatureProblem, parseCrls } from "./crl.ts";
import { CrlSnapshot } from "./crl-snapshot.ts";
import { crlPem, DAY, device, HOUR, testPki } from "./testing/pki.ts";

const pki = await testPki("Crl");
const good = await device("good-1", pki.int);
const revoked = await device("revoked-1", pki.int);
const now = new Date();
const bytes = (text: string) => Buffer.from(text);

test("a createCrl CRL parses: entries, reason, dates, number, AKI; it verifies with its CA only", async () => {
  const pem = await crlPem(pki.int, { revoked: [revoked], crlNumber: 42 });
  const [crl] = parseCrls(bytes(pem), "crl.pem");
  assert.ok(crl);
  assert.equal(crl.crlNumber, 42n);
  assert.equal(crl.authorityKeyId, revocationInfo(pki.int.cert).keyId);
  assert.equal(crl.issuer, "O=Crl, CN=Crl Device CA");
  assert.ok(crl.nextUpdate && crl.nextUpdate > crl.thisUpdate);
  const entry = crl.revoked.get(revoked.cert.serialNumber.replace(/^0+/, ""));
  assert.equal(entry?.reason, "keyCompromise");
  assert.equal(crl.revoked.size, 1);
  assert.equal(crlSignatureProblem(crl, pki.int.cert), undefined);
  assert.match(crlSignatureProblem(crl, pki.root.cert) ?? "", /is not CA/);
});

test("a CRL under the right name but another key is refused: signature, then AKI", async () => {
  const impostor = await mintCa("O=Crl, CN=Crl Device CA"); // same DN, other key
  const forged = parseCrls(bytes(await crlPem(pki.int, {}, impostor)), "forged.pem")[0];
  assert.ok(forged);
  assert.match(crlSignatureProblem(forged, pki.int.cert) ?? "", /signature does not verify/);
  const byImpostor = parseCrls(bytes(await crlPem(impostor)), "impostor.pem")[0];
  assert.ok(byImpostor);
  assert.match(crlSignatureProblem(byImpostor, pki.int.cert) ?? "", /authorityKeyIdentifier/);
});

test("several CRLs per PEM file, and DER", async () => {
  const both = (await crlPem(pki.int, { revoked: [revoked] })) + (await crlPem(pki.root));
  const crls = parseCrls(bytes(both), "both.pem");
  assert.deepEqual(
    crls.map((c) => c.issuer),
    ["O=Crl, CN=Crl Device CA", "O=Crl, CN=Crl Root CA"],
  );
  assert.equal(crls[1]?.source, "both.pem (CRL #2)");
  const der = new x509.X509Crl(await crlPem(pki.root)).rawData;
  assert.ok(parseCrls(new Uint8Array(der), "root.crl")[0]?.issuerDer.equals(pki.root.cert.subjectDer));
});

test("malformed inputs throw CrlParseError naming the source", async () => {
  const pem = await crlPem(pki.int);
  const cases: [string, Uint8Array, RegExp][] = [
    ["garbage", bytes("hello"), /garbage: not a DER-encoded CRL/],
    ["truncated-pem", bytes(pem.slice(0, pem.length - 30)), /not terminated by an END line/],
    ["certificate", bytes(pki.int.pem), /a "CERTIFICATE" block, not an X509 CRL/],
    ["truncated-der", new Uint8Array(new x509.X509Crl(pem).rawData).slice(0, 60), /not a DER-encoded CRL/],
    ["empty", bytes(""), /not a DER-encoded CRL/],
  ];
  for (const [name, data, message] of cases) {
    assert.throws(
      () => parseCrls(data, name),
      (err) => err instanceof CrlParseError && message.test(err.message),
    );
  }
});

test("a delta CRL is refused rather than read as complete", async () => {
  const crl = await x509.X509CrlGenerator.create({
    issuer: pki.int.x509.subjectName,
    thisUpdate: new Date(),
    nextUpdate: new Date(Date.now() + DAY),
    signingKey: pki.int.keys.privateKey,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [new x509.Extension("2.5.29.27", true, Uint8Array.from([2, 1, 1]))],
  });
  assert.throws(() => parseCrls(new Uint8Array(crl.rawData), "delta.crl"), /delta CRLs are not supported/);
});

const dir = mkdtempSync(join(tmpdir(), "portcullis-crl-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("an RSA CRL from `openssl ca -gencrl` parses and verifies with its CA", () => {
  const at = (f: string) => join(dir, f);
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  run(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-subj",
    "/O=OpenSSL/CN=OpenSSL CA",
    "-days",
    "30",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  );
  run(
    "req",
    "-new",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "leaf.key",
    "-out",
    "leaf.csr",
    "-subj",
    "/CN=leaf",
  );
  run(
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-set_serial",
    "0x00C0FFEE",
    "-days",
    "5",
    "-out",
    "leaf.pem",
  );
  writeFileSync(
    at("index.txt"),
    "R\t301231000000Z\t260101000000Z,keyCompromise\tC0FFEE\tunknown\t/CN=leaf\n",
  );
  writeFileSync(at("crlnumber"), "1000\n");
  writeFileSync(
    at("ca.cnf"),
    `[ca]\ndefault_ca=d\n[d]\ndatabase=${at("index.txt")}\ncrlnumber=${at("crlnumber")}\ndefault_md=sha256\ndefault_crl_days=7\ncrl_extensions=e\n[e]\nauthorityKeyIdentifier=keyid:always\n`,
  );
  run("ca", "-gencrl", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem", "-out", "crl.pem");
  const [ca] = parsePemBundle(readFileSync(at("ca.pem"), "utf8"));
  const [leaf] = parsePemBundle(readFileSync(at("leaf.pem"), "utf8"));
  assert.ok(ca && leaf);
  const [crl] = parseCrls(readFileSync(at("crl.pem")), "openssl.crl");
  assert.ok(crl);
  assert.equal(crl.signatureAlgorithm, "1.2.840.113549.1.1.11");
  assert.equal(crl.crlNumber, 0x1000n);
  assert.equal(crlSignatureProblem(crl, ca), undefined);
  const snapshot = CrlSnapshot.EMPTY.with("openssl", [crl]);
  const status = snapshot.status(leaf, ca, new Date());
  assert.equal(status.status, "revoked");
  assert.equal(status.status === "revoked" && status.reason, "keyCompromise");
  assert.equal(status.status === "revoked" && status.revokedAt.toISOString(), "2026-01-01T00:00:00.000Z");
});

test("snapshot: good on a fresh CRL, revoked even on a stale one, unknown when stale or missing", async () => {
  const fresh = parseCrls(bytes(await crlPem(pki.int, { revoked: [revoked] })), "fresh");
  const snap = CrlSnapshot.EMPTY.with("a", fresh);
  assert.deepEqual(snap.status(good.cert, pki.int.cert, now), { status: "good", source: "crl" });
  assert.equal(snap.status(revoked.cert, pki.int.cert, now).status, "revoked");
  assert.ok(snap.isFresh(good.cert, pki.int.cert, now));

  const later = new Date(now.getTime() + 2 * DAY);
  const stale = snap.status(good.cert, pki.int.cert, later);
  assert.equal(stale.status, "unknown");
  assert.match(stale.status === "unknown" ? stale.detail : "", /is stale: its nextUpdate .* has passed/);
  assert.equal(snap.status(revoked.cert, pki.int.cert, later).status, "revoked");

  const missing = snap.status(pki.int.cert, pki.root.cert, now);
  assert.match(
    missing.status === "unknown" ? missing.detail : "",
    /no CRL of issuer "CN=Crl Root CA,O=Crl" is loaded/,
  );
  assert.equal(snap.nextExpiry(now)?.getTime(), fresh[0]?.nextUpdate?.getTime());
});

test("snapshot: the newest CRL wins; a CRL under the issuer's name but not its key is ignored, and said so", async () => {
  const older = parseCrls(bytes(await crlPem(pki.int, { revoked: [revoked], crlNumber: 1 })), "old");
  const newer = parseCrls(bytes(await crlPem(pki.int, { crlNumber: 2 })), "new");
  const snap = CrlSnapshot.EMPTY.with("old", older).with("new", newer);
  assert.equal(snap.status(revoked.cert, pki.int.cert, now).status, "good"); // unrevoked (removed from the list)
  assert.equal(snap.with("new", newer), snap, "same bytes: same snapshot");
  assert.equal(snap.with("new", []).status(revoked.cert, pki.int.cert, now).status, "revoked");

  const impostor = await mintCa("O=Crl, CN=Crl Device CA");
  const forged = parseCrls(bytes(await crlPem(pki.int, {}, impostor)), "forged.pem");
  const status = CrlSnapshot.EMPTY.with("f", forged).status(good.cert, pki.int.cert, now);
  assert.match(
    status.status === "unknown" ? status.detail : "",
    /CRL from forged.pem \(CRL #1\) is ignored: its signature does not verify/,
  );
});

test("snapshot: a CRL issued in the future (beyond clock skew) is not used yet", async () => {
  const future = parseCrls(bytes(await crlPem(pki.int, { thisUpdate: new Date(now.getTime() + HOUR) })), "f");
  assert.equal(CrlSnapshot.EMPTY.with("f", future).status(good.cert, pki.int.cert, now).status, "unknown");
});

async function crlWithIdp(idp: pkijs.IssuingDistributionPoint): Promise<Uint8Array> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: pki.int.x509.subjectName,
    thisUpdate: new Date(Date.now() - 60_000),
    nextUpdate: new Date(Date.now() + DAY),
    signingKey: pki.int.keys.privateKey,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions: [new x509.Extension("2.5.29.28", true, idp.toSchema().toBER(false))],
  });
  return new Uint8Array(crl.rawData);
}

test("issuingDistributionPoint: a CA-only CRL says nothing about leaves; indirect CRLs are refused", async () => {
  const casOnly = parseCrls(
    await crlWithIdp(new pkijs.IssuingDistributionPoint({ onlyContainsCACerts: true })),
    "idp",
  );
  assert.equal(casOnly[0]?.only, "cas");
  const snap = CrlSnapshot.EMPTY.with("idp", casOnly);
  assert.equal(snap.status(good.cert, pki.int.cert, now).status, "unknown");
  const indirect = await crlWithIdp(new pkijs.IssuingDistributionPoint({ indirectCRL: true }));
  assert.throws(() => parseCrls(indirect, "indirect"), /indirect CRLs are not supported/);
});

/** A CRL of `pki.int` listing `revoked`, with the given extensions instead of createCrl's. */
async function crlWith(extensions: x509.Extension[]): Promise<Buffer> {
  const crl = await x509.X509CrlGenerator.create({
    issuer: pki.int.x509.subjectName,
    thisUpdate: new Date(now.getTime() - HOUR),
    nextUpdate: new Date(now.getTime() + DAY),
    signingKey: pki.int.keys.privateKey,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
    extensions,
    entries: [
      { serialNumber: revoked.cert.serialNumber, revocationDate: new Date(now.getTime() - HOUR), reason: 1 },
    ],
  });
  return Buffer.from(crl.rawData);
}

test("a CRL without cRLNumber, or with a critical one, cannot vouch for good; its revocations still count", async () => {
  const crlNumber = (critical: boolean) =>
    new x509.Extension("2.5.29.20", critical, Uint8Array.from([2, 1, 7]));
  const cases = [
    { name: "no cRLNumber", extensions: [], why: /has no cRLNumber/ },
    { name: "critical cRLNumber", extensions: [crlNumber(true)], why: /cRLNumber is marked critical/ },
  ];
  for (const { name, extensions, why } of cases) {
    const [crl] = parseCrls(await crlWith(extensions), name);
    assert.ok(crl);
    assert.match(crl.unusable ?? "", why, name);
    const snap = CrlSnapshot.EMPTY.with(name, [crl]);
    const status = snap.status(good.cert, pki.int.cert, now);
    assert.equal(status.status, "unknown", name);
    assert.match(status.status === "unknown" ? status.detail : "", why, name);
    assert.equal(snap.status(revoked.cert, pki.int.cert, now).status, "revoked", name);
  }
  const [usable] = parseCrls(await crlWith([crlNumber(false)]), "non-critical");
  assert.equal(usable?.unusable, undefined);
  assert.equal(
    CrlSnapshot.EMPTY.with("ok", usable ? [usable] : []).status(good.cert, pki.int.cert, now).status,
    "good",
  );
});
