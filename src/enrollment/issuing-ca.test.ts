// Tests of the issuing CA: loading (and every way a CA's files are refused), device certificates issued
// from `openssl req` requests checked by `openssl verify` and the project's own parser (profile, exact
// subject and key, validity clamped to the CA), and CRLs.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { EKU, parseCertificate } from "../identity/certificate.ts";
import { formatName, parseName } from "../identity/dn.ts";
import { x509 } from "../identity/x509.ts";
import { PkiError } from "../pki/errors.ts";
import {
  createIntermediateCa,
  createRootCa,
  deviceUri,
  type Issued,
  issueDeviceCertificate,
} from "../pki/issue.ts";
import { parseCsr } from "./csr.ts";
import { type IssuingCa, issueCrl, issueFromRequest, loadIssuingCa, subjectForDevice } from "./issuing-ca.ts";

const dir = mkdtempSync(join(tmpdir(), "portcullis-ca-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const DAY = 24 * 60 * 60 * 1000;

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function openssl(args: string[], input?: string): string {
  const run = spawnSync("openssl", args, { encoding: "utf8", input });
  assert.equal(run.status, 0, `openssl ${args.join(" ")}: ${run.stderr}${run.stdout}`);
  return run.stdout;
}

/** A parsed request from `openssl req -new`, as a device makes it. */
function deviceCsr(keyArgs: string[], subject = "/CN=device-042", extra: string[] = []) {
  const out = join(dir, `req-${++counter}.der`);
  const key = join(dir, `key-${counter}.pem`);
  openssl([
    "req",
    "-new",
    ...keyArgs,
    "-nodes",
    "-keyout",
    key,
    "-subj",
    subject,
    ...extra,
    "-outform",
    "DER",
    "-out",
    out,
  ]);
  return parseCsr(new Uint8Array(readFileSync(out)));
}

const EC_P256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];

interface Pki {
  root: Issued;
  intermediate: Issued;
  rootPem: string;
  intPem: string;
  intKey: string;
  ca: IssuingCa;
}

async function pki(algorithm?: "rsa-2048" | "ec-p384"): Promise<Pki> {
  const root = await createRootCa({ subject: "O=Portcullis, CN=Test Root CA", algorithm });
  const intermediate = await createIntermediateCa(root, {
    subject: "O=Portcullis, CN=Enrollment CA",
    algorithm,
  });
  const n = ++counter;
  const rootPem = file(`root-${n}.pem`, root.certPem);
  const intPem = file(`int-${n}.pem`, intermediate.certPem);
  const intKey = file(`int-${n}.key`, intermediate.keyPem);
  const ca = await loadIssuingCa({ cert: intPem, key: intKey, chain: [rootPem] });
  return { root, intermediate, rootPem, intPem, intKey, ca };
}

const ecPki = pki();

/** `openssl verify` of a leaf against the root, with the intermediate as untrusted. */
function opensslVerify(p: Pki, pem: string): string {
  const leaf = file(`leaf-${++counter}.pem`, pem);
  return openssl(["verify", "-CAfile", p.rootPem, "-untrusted", p.intPem, "-purpose", "sslclient", leaf]);
}

test("loadIssuingCa: certificate, chain above it, signer and key id", async () => {
  const p = await ecPki;
  assert.equal(p.ca.cert.subject, p.intermediate.cert.subject);
  assert.deepEqual(
    p.ca.chain.map((c) => c.subject),
    [p.root.cert.subject],
  );
  assert.equal(p.ca.signer.algorithm, "ec-p256");
  assert.equal(p.ca.signer.source, p.intKey);
  assert.equal(p.ca.keyId, p.intermediate.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
  // A root signs for itself: empty chain. A cert file holding the chain too gives the same chain.
  const rootKey = file("root.key", p.root.keyPem);
  assert.deepEqual((await loadIssuingCa({ cert: p.rootPem, key: rootKey })).chain, []);
  const both = file("int-and-root.pem", p.intermediate.certPem + p.root.certPem);
  const fromBundle = await loadIssuingCa({ cert: both, key: p.intKey });
  assert.deepEqual(
    fromBundle.chain.map((c) => c.subject),
    [p.root.cert.subject],
  );
});

test("issueFromRequest: an EC P-256 request becomes a client certificate that openssl verifies", async () => {
  const p = await ecPki;
  const csr = deviceCsr(EC_P256, "/CN=device-042", ["-addext", "subjectAltName=DNS:evil.example.com"]);
  const now = new Date();
  const issued = await issueFromRequest(p.ca, {
    spki: csr.spki,
    subjectDer: csr.subjectDer,
    deviceId: "device-042",
    sanUris: [deviceUri("device-042")],
    validityMs: 30 * DAY,
    now,
  });
  assert.match(opensslVerify(p, issued.pem), /: OK\n$/);
  const cert = parseCertificate(issued.der);
  assert.equal(cert.fingerprint, issued.fingerprint);
  assert.match(issued.fingerprint, /^[0-9a-f]{64}$/);
  assert.equal(cert.serialNumber, issued.serial);
  assert.match(issued.serial, /^[0-9a-f]{32}$/);
  assert.equal(issued.subject, "CN=device-042");
  assert.equal(cert.subject, issued.subject);
  assert.ok(cert.subjectDer.equals(csr.subjectDer));
  assert.ok(cert.issuerDer.equals(Buffer.from(p.intermediate.cert.subjectName.toArrayBuffer())));
  assert.deepEqual(cert.sanUris, ["urn:device:device-042"]);
  assert.deepEqual(cert.sanDns, [], "the SANs the request asked for are not copied");
  assert.deepEqual(cert.extKeyUsage, [EKU.clientAuth]);
  assert.deepEqual([...(cert.keyUsage ?? [])], ["digitalSignature"]);
  assert.ok(!cert.isCA);
  assert.ok(cert.criticalExtensions.includes("2.5.29.19") && cert.criticalExtensions.includes("2.5.29.15"));
  assert.equal(cert.authorityKeyId, p.ca.keyId);
  assert.ok(cert.subjectKeyId);
  assert.equal(cert.signatureAlgorithm.name, "ecdsa-with-SHA256");
  assert.equal(cert.version, 3);
  // The key is the request's, byte for byte.
  assert.ok(Buffer.from(new x509.X509Certificate(issued.der).publicKey.rawData).equals(csr.spki));
  const second = Math.floor(now.getTime() / 1000) * 1000;
  assert.equal(issued.notBefore.getTime(), second - 5 * 60 * 1000);
  assert.equal(issued.notAfter.getTime(), second + 30 * DAY);
  assert.equal(cert.notAfter.getTime(), issued.notAfter.getTime());
  assert.match(issued.pem, /^-----BEGIN CERTIFICATE-----\n/);
});

test("issueFromRequest: the validity never outlives the CA; an expired CA issues nothing", async () => {
  const p = await ecPki;
  const csr = deviceCsr(EC_P256);
  const base = { spki: csr.spki, subjectDer: csr.subjectDer, deviceId: "d", sanUris: [deviceUri("d")] };
  const issued = await issueFromRequest(p.ca, { ...base, validityMs: 50 * 365 * DAY, now: new Date() });
  assert.equal(issued.notAfter.getTime(), p.ca.cert.notAfter.getTime());
  assert.match(opensslVerify(p, issued.pem), /: OK\n$/);
  const late = new Date(p.ca.cert.notAfter.getTime() + 1000);
  await assert.rejects(issueFromRequest(p.ca, { ...base, validityMs: DAY, now: late }), /expired at/);
  await assert.rejects(
    issueFromRequest(p.ca, { ...base, validityMs: 0, now: new Date() }),
    /positive number/,
  );
  await assert.rejects(
    issueFromRequest(p.ca, {
      ...base,
      spki: Uint8Array.from([0x30, 0x00]),
      validityMs: DAY,
      now: new Date(),
    }),
    (err: unknown) => err instanceof PkiError && /malformed SubjectPublicKeyInfo/.test(err.message),
  );
});

test("issueFromRequest: RSA request (keyEncipherment), RSA CA (SHA-256), Ed25519, exact multi-RDN subject", async () => {
  const p = await pki("rsa-2048");
  assert.equal(p.ca.signer.algorithm, "rsa-2048");
  const rsa = deviceCsr(["-newkey", "rsa:2048"], "/C=DE/O=Acme GmbH/OU=Fleet+serialNumber=7/CN=device-7", [
    "-utf8",
  ]);
  const issued = await issueFromRequest(p.ca, {
    spki: rsa.spki,
    subjectDer: rsa.subjectDer,
    deviceId: "device-7",
    sanUris: [deviceUri("device-7")],
    validityMs: DAY,
    now: new Date(),
  });
  assert.match(opensslVerify(p, issued.pem), /: OK\n$/);
  const cert = parseCertificate(issued.der);
  assert.ok(cert.subjectDer.equals(rsa.subjectDer));
  assert.equal(issued.subject, rsa.subject);
  assert.deepEqual([...(cert.keyUsage ?? [])].sort(), ["digitalSignature", "keyEncipherment"]);
  assert.equal(cert.signatureAlgorithm.name, "sha256WithRSAEncryption");
  const ed = deviceCsr(["-newkey", "ed25519"], "/CN=device-ed");
  const edCert = await issueFromRequest((await ecPki).ca, {
    spki: ed.spki,
    subjectDer: subjectForDevice("device-ed"),
    deviceId: "device-ed",
    sanUris: [deviceUri("device-ed")],
    validityMs: DAY,
    now: new Date(),
  });
  assert.match(opensslVerify(await ecPki, edCert.pem), /: OK\n$/);
  assert.deepEqual(parseCertificate(edCert.der).publicKey, { type: "ed25519" });
  assert.deepEqual([...(parseCertificate(edCert.der).keyUsage ?? [])], ["digitalSignature"]);
});

test("issueFromRequest: a P-384 CA signs with ECDSA SHA-384", async () => {
  const p = await pki("ec-p384");
  const csr = deviceCsr(EC_P256);
  const issued = await issueFromRequest(p.ca, {
    spki: csr.spki,
    subjectDer: csr.subjectDer,
    deviceId: "device-042",
    sanUris: [deviceUri("device-042")],
    validityMs: DAY,
    now: new Date(),
  });
  assert.equal(parseCertificate(issued.der).signatureAlgorithm.name, "ecdsa-with-SHA384");
  assert.match(opensslVerify(p, issued.pem), /: OK\n$/);
});

test("subjectForDevice: CN=<id>, escaped when printed", () => {
  assert.equal(formatName(parseName(subjectForDevice("device-042"))), "CN=device-042");
  assert.equal(formatName(parseName(subjectForDevice("a,b=c"))), "CN=a\\,b\\=c");
  assert.throws(() => subjectForDevice(""), PkiError);
});

test("loadIssuingCa refuses: missing files, a key of another certificate, a non-CA, no keyCertSign, pkcs11:", async () => {
  const p = await ecPki;
  const refused = async (files: { cert: string; key: string; chain?: string[] }, message: RegExp) =>
    assert.rejects(loadIssuingCa(files), (err: unknown) => {
      assert.ok(err instanceof PkiError, String(err));
      assert.match(err.message, message);
      return true;
    });
  await refused({ cert: join(dir, "nope.pem"), key: p.intKey }, /nope\.pem: missing/);
  await refused({ cert: p.intPem, key: join(dir, "nope.key") }, /nope\.key: missing/);
  await refused(
    { cert: p.intPem, key: file("root2.key", p.root.keyPem) },
    /does not match the certificate in/,
  );
  await refused({ cert: p.intPem, key: p.intKey, chain: [join(dir, "none.pem")] }, /none\.pem: missing/);
  await refused({ cert: p.intPem, key: file("not-a-key.key", "hello") }, /not a PEM private key/);
  const device = await issueDeviceCertificate(p.intermediate, { deviceId: "device-1" });
  await refused(
    { cert: file("device.pem", device.certPem), key: file("device.key", device.keyPem) },
    /"CN=device-1" is not a CA certificate \(basicConstraints cA is not set\)/,
  );
  const noSign = join(dir, "nosign.pem");
  const noSignKey = join(dir, "nosign.key");
  openssl([
    "req",
    "-x509",
    ...EC_P256,
    "-nodes",
    "-keyout",
    noSignKey,
    "-out",
    noSign,
    "-subj",
    "/CN=No Sign CA",
    "-days",
    "30",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,digitalSignature,cRLSign",
  ]);
  await refused(
    { cert: noSign, key: noSignKey },
    /"CN=No Sign CA" may not sign certificates \(its keyUsage lacks keyCertSign\)/,
  );
  await refused(
    { cert: p.intPem, key: "pkcs11:token=ca;object=enroll" },
    /PKCS#11 keys are not supported yet: give a key file/,
  );
  // A chain that does not lead up from the CA.
  const other = await createRootCa({ subject: "CN=Other Root" });
  await refused(
    { cert: p.intPem, key: p.intKey, chain: [file("other.pem", other.certPem)] },
    /"CN=Other Root" does not issue "CN=Enrollment CA, O=Portcullis"|does not issue/,
  );
});

test("issueCrl: signed by the CA, lists the serials with their reasons, openssl verifies it", async () => {
  const p = await ecPki;
  const now = new Date();
  const pem = await issueCrl(
    p.ca,
    [
      { serial: "4a1b2c3d", revokedAt: new Date(now.getTime() - DAY), reason: "keyCompromise" },
      { serial: "0fee", revokedAt: now, reason: "unspecified" },
    ],
    { now, nextUpdate: new Date(now.getTime() + 7 * DAY), number: 42n },
  );
  const crlPath = file("ca.crl", pem);
  const bundle = file("ca-bundle.pem", p.intermediate.certPem + p.root.certPem);
  const out = spawnSync("openssl", ["crl", "-in", crlPath, "-CAfile", bundle, "-noout", "-text"], {
    encoding: "utf8",
  });
  assert.equal(out.status, 0, out.stderr);
  assert.match(out.stderr + out.stdout, /verify OK/);
  assert.match(out.stdout, /X509v3 CRL Number: \n\s*42/);
  assert.match(out.stdout, /Serial Number: 4A1B2C3D[\s\S]*Key Compromise/);
  assert.match(out.stdout, /Serial Number: 0FEE/);
  const crl = new x509.X509Crl(pem);
  assert.equal(crl.entries.length, 2);
  assert.ok(await crl.verify({ publicKey: p.ca.cert.publicKey }));
  await assert.rejects(issueCrl(p.ca, [], { now, nextUpdate: now, number: 1 }), /nextUpdate must be later/);
  await assert.rejects(
    issueCrl(p.ca, [{ serial: "01", revokedAt: now, reason: "bored" }], {
      now,
      nextUpdate: new Date(now.getTime() + DAY),
      number: 2,
    }),
    /unknown revocation reason "bored"/,
  );
});
