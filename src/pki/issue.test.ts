// Tests of certificate and CRL issuing: chains verify, extensions are as specified, RSA works, CRLs list serials.
import assert from "node:assert/strict";
import { X509Certificate as NodeX509 } from "node:crypto";
import { test } from "node:test";
import { EKU, parseCertificate } from "../identity/certificate.ts";
import { parseCrls } from "../identity/revocation/crl.ts";
import { x509 } from "../identity/x509.ts";
import {
  CRL_NUMBER_OID,
  createCrl,
  createIntermediateCa,
  createRootCa,
  issueDeviceCertificate,
  issueServerCertificate,
  randomSerialNumber,
} from "./issue.ts";

const node = (cert: x509.X509Certificate) => new NodeX509(Buffer.from(cert.rawData));
const parsed = (cert: x509.X509Certificate) => parseCertificate(new Uint8Array(cert.rawData));

async function chain(algorithm?: "rsa-2048") {
  const root = await createRootCa({ subject: "O=Portcullis, CN=Test Root CA", algorithm });
  const intermediate = await createIntermediateCa(root, { subject: "CN=Test Intermediate CA", algorithm });
  return { root, intermediate };
}

test("root -> intermediate -> device verifies with node:crypto", async () => {
  const { root, intermediate } = await chain();
  const device = await issueDeviceCertificate(intermediate, { deviceId: "device-001" });
  assert.ok(node(root.cert).checkIssued(node(root.cert)));
  assert.ok(node(root.cert).verify(node(root.cert).publicKey));
  assert.ok(node(intermediate.cert).checkIssued(node(root.cert)));
  assert.ok(node(intermediate.cert).verify(node(root.cert).publicKey));
  assert.ok(node(device.cert).checkIssued(node(intermediate.cert)));
  assert.ok(node(device.cert).verify(node(intermediate.cert).publicKey));
  assert.ok(!node(device.cert).verify(node(root.cert).publicKey));
  assert.match(device.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.deepEqual(new NodeX509(device.certPem).raw, node(device.cert).raw);
});

test("CA certificates: critical basicConstraints, keyCertSign|cRLSign, SKI/AKI chaining", async () => {
  const { root, intermediate } = await chain();
  const r = parsed(root.cert);
  const i = parsed(intermediate.cert);
  assert.ok(r.isCA && r.selfIssued);
  assert.equal(r.pathLength, undefined);
  assert.ok(i.isCA && !i.selfIssued);
  assert.equal(i.pathLength, 0);
  for (const ca of [r, i]) {
    assert.deepEqual([...(ca.keyUsage ?? [])].sort(), ["cRLSign", "keyCertSign"]);
    assert.ok(ca.criticalExtensions.includes("2.5.29.19"));
    assert.ok(ca.criticalExtensions.includes("2.5.29.15"));
  }
  const ski = root.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  assert.ok(ski);
  assert.equal(intermediate.cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, ski);
  assert.equal(root.cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, ski);
  assert.equal(r.subject, "CN=Test Root CA,O=Portcullis");
  const inter2 = await createIntermediateCa(root, { subject: "CN=Other", pathLength: 2 });
  assert.equal(parsed(inter2.cert).pathLength, 2);
});

test("validity defaults: root 10 y, intermediate 5 y, leaf 1 y, notBefore backdated 5 minutes", async () => {
  const before = Date.now();
  const { root, intermediate } = await chain();
  const device = await issueDeviceCertificate(intermediate, { deviceId: "d" });
  const year = 365 * 24 * 3600 * 1000;
  const near = (actual: Date, expected: number, slack = 3 * 24 * 3600 * 1000) =>
    assert.ok(Math.abs(actual.getTime() - expected) < slack, `${actual.toISOString()}`);
  near(root.cert.notBefore, before - 5 * 60 * 1000, 10_000);
  near(root.cert.notAfter, before + 10 * year);
  near(intermediate.cert.notAfter, before + 5 * year);
  near(device.cert.notAfter, before + year);
  const notBefore = new Date("2030-01-01T00:00:00Z");
  const notAfter = new Date("2030-02-01T00:00:00Z");
  const fixed = await issueDeviceCertificate(intermediate, { deviceId: "d", notBefore, notAfter });
  assert.equal(fixed.cert.notBefore.getTime(), notBefore.getTime());
  assert.equal(fixed.cert.notAfter.getTime(), notAfter.getTime());
});

test("device certificate: CN, SAN URI, clientAuth only, critical digitalSignature, not a CA", async () => {
  const { intermediate } = await chain();
  const device = await issueDeviceCertificate(intermediate, { deviceId: "sensor,7=x" });
  const p = parsed(device.cert);
  assert.equal(p.commonName, "sensor,7=x");
  assert.deepEqual(p.sanUris, ["urn:device:sensor,7=x"]);
  assert.deepEqual([...(p.extKeyUsage ?? [])], [EKU.clientAuth]);
  assert.deepEqual([...(p.keyUsage ?? [])], ["digitalSignature"]);
  assert.ok(p.criticalExtensions.includes("2.5.29.15"));
  assert.ok(!p.isCA);
  assert.ok(device.cert.getExtension(x509.BasicConstraintsExtension));
  assert.ok(device.cert.getExtension(x509.SubjectKeyIdentifierExtension));
  assert.equal(
    device.cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId,
    intermediate.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
  );
  assert.deepEqual(p.issuerDer, parsed(intermediate.cert).subjectDer);
});

test("server certificate: DNS and IP SANs, serverAuth", async () => {
  const { intermediate } = await chain();
  const server = await issueServerCertificate(intermediate, {
    names: ["localhost", "127.0.0.1", "::1", "gw.example"],
  });
  const p = parsed(server.cert);
  assert.equal(p.commonName, "localhost");
  assert.deepEqual(p.sanDns, ["localhost", "gw.example"]);
  assert.deepEqual(p.sanIps, ["127.0.0.1", "::1"]);
  assert.deepEqual([...(p.extKeyUsage ?? [])], [EKU.serverAuth]);
  assert.ok(p.keyUsage?.has("digitalSignature"));
  assert.ok(node(server.cert).checkHost("gw.example"));
  assert.ok(node(server.cert).checkIP("127.0.0.1"));
  const named = await issueServerCertificate(intermediate, { names: ["a.example"], commonName: "Gateway" });
  assert.equal(parsed(named.cert).commonName, "Gateway");
  await assert.rejects(issueServerCertificate(intermediate, { names: [] }), /at least one name/);
});

test("RSA keys: chain verifies, sha256WithRSAEncryption, server gets keyEncipherment", async () => {
  const { root, intermediate } = await chain("rsa-2048");
  const server = await issueServerCertificate(intermediate, { names: ["localhost"], algorithm: "rsa-2048" });
  assert.equal(intermediate.algorithm, "rsa-2048");
  assert.equal(node(intermediate.cert).publicKey.asymmetricKeyType, "rsa");
  assert.ok(node(intermediate.cert).verify(node(root.cert).publicKey));
  assert.ok(node(server.cert).verify(node(intermediate.cert).publicKey));
  assert.deepEqual(
    { ...server.cert.signatureAlgorithm },
    { name: "RSASSA-PKCS1-v1_5", hash: { name: "SHA-256" } },
  );
  assert.deepEqual([...(parsed(server.cert).keyUsage ?? [])].sort(), ["digitalSignature", "keyEncipherment"]);
  // An EC leaf under an RSA CA, and the reverse, both work.
  const device = await issueDeviceCertificate(intermediate, { deviceId: "d" });
  assert.equal(node(device.cert).publicKey.asymmetricKeyType, "ec");
  assert.ok(node(device.cert).verify(node(intermediate.cert).publicKey));
});

test("P-384 CAs sign with ECDSA SHA-384", async () => {
  const root = await createRootCa({ subject: "CN=P384 Root", algorithm: "ec-p384" });
  const device = await issueDeviceCertificate(root, { deviceId: "d" });
  assert.deepEqual({ ...device.cert.signatureAlgorithm }, { name: "ECDSA", hash: { name: "SHA-384" } });
  assert.ok(node(device.cert).verify(node(root.cert).publicKey));
});

test("serial numbers are 16 random bytes, positive", async () => {
  const serials = new Set(Array.from({ length: 50 }, randomSerialNumber));
  assert.equal(serials.size, 50);
  for (const s of serials) {
    assert.match(s, /^[0-7][0-9a-f]{31}$/);
    assert.ok(Number.parseInt(s.slice(0, 2), 16) >= 0x40);
  }
  const { root } = await chain();
  assert.equal(node(root.cert).serialNumber.length, 32);
});

test("only a CA can issue", async () => {
  const { intermediate } = await chain();
  const device = await issueDeviceCertificate(intermediate, { deviceId: "d" });
  await assert.rejects(issueDeviceCertificate(device, { deviceId: "e" }), /not a CA/);
});

test("CRL lists the revoked serial with its reason, carries AKI and CRL number, verifies with the intermediate", async () => {
  const { root, intermediate } = await chain();
  const device = await issueDeviceCertificate(intermediate, { deviceId: "revoked" });
  const revokedAt = new Date("2026-01-02T03:04:05Z");
  const thisUpdate = new Date("2026-01-03T00:00:00Z");
  const { crl, pem } = await createCrl(intermediate, {
    revoked: [{ serialNumber: device.cert.serialNumber, revokedAt, reason: "keyCompromise" }],
    thisUpdate,
    crlNumber: 300,
  });
  assert.match(pem, /^-----BEGIN X509 CRL-----\n/);
  assert.ok(await crl.verify({ publicKey: intermediate.cert.publicKey }));
  assert.ok(!(await crl.verify({ publicKey: root.cert.publicKey })));
  assert.equal(crl.issuer, intermediate.cert.subject);
  const entry = crl.findRevoked(device.cert);
  assert.ok(entry);
  assert.equal(entry.revocationDate.getTime(), revokedAt.getTime());
  assert.equal(entry.reason, x509.X509CrlReason.keyCompromise);
  assert.equal(crl.nextUpdate?.getTime(), thisUpdate.getTime() + 30 * 24 * 3600 * 1000);
  assert.equal(
    crl.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId,
    intermediate.cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
  );
  const number = crl.getExtension(CRL_NUMBER_OID);
  assert.ok(number);
  assert.deepEqual([...new Uint8Array(number.value)], [0x02, 0x02, 0x01, 0x2c]);
  const empty = await createCrl(intermediate, { revoked: [] });
  assert.equal(empty.crl.entries.length, 0);
  await assert.rejects(
    createCrl(intermediate, { revoked: [{ serialNumber: "01", revokedAt, reason: "bogus" }] }),
    /unknown revocation reason "bogus"/,
  );
});

test("a CRL entry without a reason is valid DER that the gateway's strict CRL parser reads", async () => {
  const { intermediate } = await chain();
  const device = await issueDeviceCertificate(intermediate, { deviceId: "no-reason" });
  for (const reason of [undefined, "unspecified"]) {
    const { pem } = await createCrl(intermediate, {
      revoked: [{ serialNumber: device.cert.serialNumber, revokedAt: new Date(), reason }],
    });
    const [crl] = parseCrls(Buffer.from(pem), "test");
    assert.ok(crl, String(reason));
    assert.equal(crl.revoked.size, 1, String(reason));
  }
});
