// Tests of the on-disk PKI directory: init, load errors, issuing to files, revocation and CRLs.
import assert from "node:assert/strict";
import { X509Certificate as NodeX509 } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { parsePemBundle } from "../identity/certificate.ts";
import { x509 } from "../identity/x509.ts";
import { PkiError } from "./errors.ts";
import { initPki, issueToFiles, loadPki, normalizeSerial, PKI_FILES, revoke, writeCrl } from "./store.ts";

const base = mkdtempSync(join(tmpdir(), "portcullis-store-"));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(base, `pki-${++n}`);
const crlOf = (path: string) => new x509.X509Crl(readFileSync(path, "utf8"));

test("init writes the layout, keys 0600, and refuses to overwrite", async () => {
  const dir = freshDir();
  const pki = await initPki(dir, { name: "Acme Root CA" });
  assert.deepEqual(readdirSync(dir).sort(), Object.values(PKI_FILES).sort());
  assert.equal(statSync(join(dir, "root.key")).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, "intermediate.key")).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  const chain = parsePemBundle(readFileSync(join(dir, "ca-chain.crt"), "utf8"));
  assert.deepEqual(
    chain.map((c) => c.commonName),
    ["Acme Intermediate CA", "Acme Root CA"],
  );
  assert.deepEqual(JSON.parse(readFileSync(join(dir, "revoked.json"), "utf8")), []);
  assert.ok(await crlOf(join(dir, "crl.pem")).verify({ publicKey: pki.intermediate.cert.publicKey }));
  assert.ok(await crlOf(join(dir, "root-crl.pem")).verify({ publicKey: pki.root.cert.publicKey }));
  await assert.rejects(initPki(dir), /root\.key: already exists/);
  const loaded = await loadPki(dir);
  assert.equal(loaded.root.cert.serialNumber, pki.root.cert.serialNumber);
  assert.equal(loaded.intermediate.algorithm, "ec-p256");
});

test("load names the missing or corrupt file", async () => {
  const dir = freshDir();
  await initPki(dir);
  const original = readFileSync(join(dir, "intermediate.key"), "utf8");
  const expectError = async (pattern: RegExp) =>
    assert.rejects(loadPki(dir), (err: Error) => err instanceof PkiError && pattern.test(err.message));
  writeFileSync(join(dir, "intermediate.key"), "junk");
  await expectError(/intermediate\.key: not a PEM private key$/);
  writeFileSync(join(dir, "intermediate.key"), readFileSync(join(dir, "root.key")));
  await expectError(/intermediate\.key: does not match the certificate in .*intermediate\.crt$/);
  writeFileSync(join(dir, "intermediate.key"), original);
  writeFileSync(join(dir, "revoked.json"), "{");
  await expectError(/revoked\.json: corrupt/);
  writeFileSync(join(dir, "revoked.json"), "[]");
  writeFileSync(join(dir, "root.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  await expectError(/root\.crt: certificate 1 is malformed/);
  rmSync(join(dir, "root.crt"));
  await expectError(/root\.crt: missing$/);
});

test("issueToFiles writes leaf + intermediate and a 0600 key; refuses to overwrite", async () => {
  const dir = freshDir();
  const pki = await initPki(dir);
  const device = await issueToFiles(pki, { kind: "device", deviceId: "dev/42" }, { days: 10 });
  assert.equal(device.certPath, join(dir, "dev_42.crt"));
  assert.equal(statSync(device.keyPath).mode & 0o777, 0o600);
  const [leaf, intermediate, ...more] = parsePemBundle(readFileSync(device.certPath, "utf8"));
  assert.equal(more.length, 0);
  assert.equal(leaf?.commonName, "dev/42");
  assert.equal(intermediate?.serialNumber, normalizeSerial(pki.intermediate.cert.serialNumber));
  const days = ((leaf?.notAfter.getTime() ?? 0) - Date.now()) / 86_400_000;
  assert.ok(days > 9.9 && days <= 10, String(days));
  await assert.rejects(issueToFiles(pki, { kind: "device", deviceId: "dev/42" }), /already exists/);
  await issueToFiles(pki, { kind: "device", deviceId: "dev/42" }, { force: true });

  const out = join(base, "srv");
  const server = await issueToFiles(pki, { kind: "server", names: ["gw.local", "10.1.2.3"] }, { out });
  assert.equal(server.certPath, `${out}.crt`);
  const srv = parsePemBundle(readFileSync(server.certPath, "utf8"))[0];
  assert.deepEqual(srv?.sanDns, ["gw.local"]);
  assert.deepEqual(srv?.sanIps, ["10.1.2.3"]);
  // A leaf never outlives its intermediate.
  const long = await issueToFiles(pki, { kind: "device", deviceId: "long" }, { days: 36500 });
  assert.equal(long.issued.cert.notAfter.getTime(), pki.intermediate.cert.notAfter.getTime());
});

test("revoke by serial or certificate file updates revoked.json and crl.pem", async () => {
  const dir = freshDir();
  const pki = await initPki(dir);
  const device = await issueToFiles(pki, { kind: "device", deviceId: "d1" });
  const first = await revoke(dir, { certFile: device.certPath }, "keyCompromise");
  assert.equal(first.serialNumber, device.serialNumber);
  assert.equal(first.alreadyRevoked, false);
  const again = await revoke(dir, { serial: device.serialNumber.toUpperCase() });
  assert.equal(again.alreadyRevoked, true);
  await revoke(dir, { serial: "00:0A:bc" }, "superseded");
  const list = JSON.parse(readFileSync(join(dir, "revoked.json"), "utf8"));
  assert.deepEqual(
    list.map((e: { serialNumber: string; reason: string }) => [e.serialNumber, e.reason]),
    [
      [device.serialNumber, "keyCompromise"],
      ["0abc", "superseded"],
    ],
  );
  const crl = crlOf(join(dir, "crl.pem"));
  assert.ok(await crl.verify({ publicKey: pki.intermediate.cert.publicKey }));
  assert.ok(crl.findRevoked(device.issued.cert));
  assert.ok(crl.findRevoked("0abc"));

  const stranger = await initPki(freshDir());
  const other = await issueToFiles(stranger, { kind: "device", deviceId: "x" });
  await assert.rejects(revoke(dir, { certFile: other.certPath }), /not issued by .*intermediate\.crt/);
  await assert.rejects(revoke(dir, { serial: "xyz" }), /not a hexadecimal serial/);
  await assert.rejects(revoke(dir, { serial: "01" }, "bogus"), /unknown revocation reason/);
});

test("writeCrl honours days and out", async () => {
  const dir = freshDir();
  const pki = await initPki(dir);
  const out = join(base, "exported.crl");
  const now = new Date();
  const result = await writeCrl(dir, { days: 7, out, now });
  assert.equal(result.path, out);
  const crl = crlOf(out);
  assert.equal(crl.nextUpdate?.getTime(), Math.floor(now.getTime() / 1000) * 1000 + 7 * 86_400_000);
  assert.ok(await crl.verify({ publicKey: pki.intermediate.cert.publicKey }));
  const inDir = await writeCrl(dir);
  assert.equal(inDir.path, join(dir, "crl.pem"));
  // Atomic writes leave no temp files behind.
  assert.ok(readdirSync(dir).every((f) => !f.endsWith(".tmp")));
  assert.ok(new NodeX509(readFileSync(join(dir, "root.crt"))).ca);
});
