// parseCertificate: the DER reader agrees with @peculiar/x509 on every field it shares, refuses malformed
// and truncated input with CertificateParseError only, and parseCertificateCached hands back one object.
import assert from "node:assert/strict";
import { createHash, X509Certificate as NodeX509 } from "node:crypto";
import { test } from "node:test";
import {
  type Certificate,
  CertificateParseError,
  MAX_CACHED_CERTIFICATE_BYTES,
  parseCertificate,
  parseCertificateCached,
} from "./certificate.ts";
import { decide } from "./decide.ts";
import { verifyChain } from "./path-validation.ts";
import { PemError, readPemCertificates } from "./pem.ts";
import * as c from "./testing/corpus.ts";
import * as r from "./testing/corpus-rules.ts";
import { mint, mintDevice } from "./testing/mint.ts";
import { caExtensions, mintRaw, rawCertificateDer, rawKeys, signerOf } from "./testing/mint-raw.ts";
import { x509 } from "./x509.ts";

function escapeDnValue(value: string): string {
  let out = value.replace(/[\\,+"<>;=]/g, (ch) => `\\${ch}`);
  if (out.startsWith("#") || out.startsWith(" ")) out = `\\${out}`;
  if (out.endsWith(" ") && out.length > 1) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/** The subject format the engine had before the DER reader, through @peculiar/x509's Name. */
function referenceName(name: x509.Name): string {
  const labels: Record<string, string> = { E: "emailAddress" };
  return name
    .toJSON()
    .map((rdn) =>
      Object.entries(rdn)
        .flatMap(([type, values]) => values.map((v) => `${labels[type] ?? type}=${escapeDnValue(v)}`))
        .join("+"),
    )
    .reverse()
    .join(",");
}

/** The fields as @peculiar/x509 and node:crypto read them. */
function reference(der: Buffer) {
  const cert = new x509.X509Certificate(der);
  const names = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
  const sanOf = (type: string) => names.filter((n) => n.type === type).map((n) => n.value);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const spki = new NodeX509(der).publicKey.export({ type: "spki", format: "der" });
  return {
    subject: referenceName(cert.subjectName),
    issuer: referenceName(cert.issuerName),
    subjectDer: Buffer.from(cert.subjectName.toArrayBuffer()).toString("hex"),
    issuerDer: Buffer.from(cert.issuerName.toArrayBuffer()).toString("hex"),
    commonName: cert.subjectName.getField("CN")[0],
    notBefore: cert.notBefore.getTime(),
    notAfter: cert.notAfter.getTime(),
    isCA: bc?.ca ?? false,
    pathLength: bc?.ca ? bc.pathLength : undefined,
    keyUsage: ku ? ku.usages : undefined,
    extKeyUsage: eku ? Array.from(eku.usages, String) : undefined,
    sanDns: sanOf("dns"),
    sanUris: sanOf("url"),
    sanEmails: sanOf("email"),
    sanIps: sanOf("ip"),
    criticalExtensions: Array.from(
      cert.extensions.filter((e) => e.critical),
      (e) => e.type,
    ),
    extensionOids: Array.from(cert.extensions, (e) => e.type),
    spkiSha256: createHash("sha256").update(spki).digest("base64"),
  };
}

const KU_FLAGS: Record<string, number> = {
  digitalSignature: x509.KeyUsageFlags.digitalSignature,
  nonRepudiation: x509.KeyUsageFlags.nonRepudiation,
  keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
  dataEncipherment: x509.KeyUsageFlags.dataEncipherment,
  keyAgreement: x509.KeyUsageFlags.keyAgreement,
  keyCertSign: x509.KeyUsageFlags.keyCertSign,
  cRLSign: x509.KeyUsageFlags.cRLSign,
  encipherOnly: x509.KeyUsageFlags.encipherOnly,
  decipherOnly: x509.KeyUsageFlags.decipherOnly,
};

function ours(cert: Certificate) {
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    subjectDer: cert.subjectDer.toString("hex"),
    issuerDer: cert.issuerDer.toString("hex"),
    commonName: cert.commonName,
    notBefore: cert.notBefore.getTime(),
    notAfter: cert.notAfter.getTime(),
    isCA: cert.isCA,
    pathLength: cert.pathLength,
    keyUsage: cert.keyUsage ? [...cert.keyUsage].reduce((acc, n) => acc | (KU_FLAGS[n] ?? 0), 0) : undefined,
    extKeyUsage: cert.extKeyUsage,
    sanDns: cert.sanDns,
    sanUris: cert.sanUris,
    sanEmails: cert.sanEmails,
    sanIps: cert.sanIps,
    criticalExtensions: cert.criticalExtensions,
    extensionOids: cert.extensionOids,
    spkiSha256: cert.spkiSha256,
  };
}

const special = await Promise.all([
  mint({ subject: 'O=Acme, CN=dev\\,ice \\"1\\"', sanDns: ["a.example.com"], sanEmails: ["x@example.com"] }),
  mint({
    subject: "C=DE, O=Gerät GmbH, CN=Gerät 東京",
    sanIps: ["10.0.0.1", "2001:db8::1", "::1", "fe80::1:0:0:1"],
  }),
  mint({
    subject: "CN=multi+O=valued, E=ops@example.com",
    ca: true,
    pathLength: 3,
    keyUsage: ["keyCertSign"],
  }),
  mint({ subject: "DC=com, DC=example, OU=devices, CN= leading and trailing ", sanUris: ["urn:device:a"] }),
]);

const corpus: Certificate[] = [
  ...Object.values(c).flatMap((v) =>
    v && typeof v === "object" && "cert" in v ? [v.cert as Certificate] : [],
  ),
  ...Object.values(r).flatMap((v) =>
    v && typeof v === "object" && "cert" in v ? [v.cert as Certificate] : [],
  ),
  ...special.map((m) => m.cert),
];

test("the DER reader agrees with @peculiar/x509 and node:crypto on every shared field", () => {
  assert.ok(corpus.length > 60, `corpus of ${corpus.length}`);
  for (const cert of corpus) assert.deepEqual(ours(cert), reference(cert.der), cert.subject);
});

test("version, algorithms and keys are read", () => {
  assert.equal(c.good.cert.version, 3);
  assert.equal(r.v1Int.cert.version, 1);
  assert.equal(c.good.cert.signatureAlgorithm.name, "ecdsa-with-SHA256");
  assert.deepEqual(c.good.cert.publicKey, { type: "ec", curve: "P-256" });
  assert.deepEqual(r.rsa1024Leaf.cert.publicKey, { type: "rsa", bits: 1024, exponent: 65537n });
  assert.deepEqual(r.rsaSha1Leaf.cert.signatureAlgorithm, {
    oid: "1.2.840.113549.1.1.5",
    name: "sha1WithRSAEncryption",
    hash: "sha1",
  });
  assert.deepEqual(r.secp256k1Leaf.cert.publicKey, { type: "ec", curve: "secp256k1" });
  assert.deepEqual(r.ed25519Leaf.cert.publicKey, { type: "ed25519" });
  assert.equal(r.ncIp6.cert.nameConstraints?.permitted[0]?.value, "2001:db8::/32");
  assert.equal(r.ncDn.cert.nameConstraints?.permitted[0]?.value, "O=Acme");
});

function assertParseError(der: Uint8Array, label: string): void {
  assert.throws(
    () => parseCertificate(der),
    (err: unknown) => err instanceof CertificateParseError,
    label,
  );
}

test("every truncation of a certificate, and trailing bytes, are CertificateParseError", () => {
  const der = c.good.cert.der;
  for (let n = 0; n < der.length; n++) assertParseError(der.subarray(0, n), `truncated to ${n} bytes`);
  assertParseError(Buffer.concat([der, Buffer.from([0])]), "a trailing byte");
  assertParseError(Buffer.from(c.good.pem), "PEM text instead of DER");
  assertParseError(Buffer.alloc(0), "empty");
});

test("flipped bytes parse or fail with CertificateParseError; what parses never makes verifyChain or decide throw", () => {
  const der = c.good.cert.der;
  const policy = { id: "p", trustStores: [c.stores.acme] };
  let parsed = 0;
  for (let i = 0; i < der.length; i++) {
    for (const mask of [0x01, 0x80, 0xff]) {
      const copy = Buffer.from(der);
      copy[i] = (copy[i] ?? 0) ^ mask;
      let cert: Certificate;
      try {
        cert = parseCertificate(copy);
      } catch (err) {
        assert.ok(err instanceof CertificateParseError, `byte ${i}: ${String(err)}`);
        continue;
      }
      parsed++;
      const result = verifyChain(cert, [c.int.cert], c.stores.acme, c.NOW);
      // A changed signed byte never validates.
      if (i > 4 && result.ok) assert.fail(`byte ${i} ^ ${mask} still validates`);
      decide(c.identityOf(cert, [c.int.cert]), policy, [c.stores.acme], c.NOW);
    }
  }
  assert.ok(parsed > 0);
});

test("duplicate extensions and malformed extension values are parse errors", () => {
  const keys = rawKeys();
  const base = { subject: "CN=dup", issuer: signerOf(c.int), notBefore: c.NOW, notAfter: c.NOW, keys };
  const [bc] = caExtensions();
  assert.ok(bc);
  assertParseError(rawCertificateDer({ ...base, extensions: [bc, bc] }, keys), "duplicate basicConstraints");
  const badKu = new x509.Extension("2.5.29.15", true, new Uint8Array([0x03, 0x02, 0x09, 0x80]));
  assertParseError(rawCertificateDer({ ...base, extensions: [badKu] }, keys), "keyUsage with 9 unused bits");
  const badSan = new x509.Extension("2.5.29.17", false, new Uint8Array([0x30, 0x03, 0x82, 0x01, 0xe9]));
  assertParseError(rawCertificateDer({ ...base, extensions: [badSan] }, keys), "non-ASCII dNSName");
  const badNc = new x509.Extension("2.5.29.30", true, new Uint8Array([0x30, 0x02, 0xa2, 0x00]));
  assertParseError(rawCertificateDer({ ...base, extensions: [badNc] }, keys), "nameConstraints [2]");
  assertParseError(rawCertificateDer({ ...base, outerSignature: "ecdsaSha384" }, keys), "algorithm mismatch");
  const v2 = rawCertificateDer({ ...base, version: 2 }, keys);
  const at = v2.indexOf(Buffer.from([0xa0, 0x03, 0x02, 0x01, 0x01]));
  assert.ok(at > 0);
  v2[at + 4] = 0x03; // version v4: OpenSSL reads it, the engine refuses it
  assertParseError(v2, "X.509 v4");
  // And a well-formed one mints and parses (the helper itself is sound).
  assert.equal(mintRaw({ ...base, extensions: [bc] }).cert.isCA, true);
});

test("readPemCertificates: bundles, and every damaged form is a PemError", () => {
  const bundle = readPemCertificates(`leaf\n${c.good.pem}chain\n${c.int.pem}`);
  assert.deepEqual(
    bundle.map((x) => x.fingerprint),
    [c.good.cert.fingerprint, c.int.cert.fingerprint],
  );
  const damaged = [
    c.good.pem.slice(0, 100),
    c.good.pem.replace("MII", "M!I"),
    c.good.pem.replace(/-----END CERTIFICATE-----/, "-----END X509 CRL-----"),
    `-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`,
    c.good.pem.replace(/\n[A-Za-z0-9+/]{64}\n/, "\n"),
  ];
  for (const text of damaged) assert.throws(() => readPemCertificates(text), PemError, text.slice(0, 80));
});

test("parseCertificateCached returns one object per DER", () => {
  const a = parseCertificateCached(c.good.cert.der);
  const b = parseCertificateCached(Buffer.from(c.good.cert.der));
  assert.equal(a, b);
  assert.notEqual(a, parseCertificateCached(c.int.cert.der));
  assert.throws(() => parseCertificateCached(c.good.cert.der.subarray(1)), CertificateParseError);
});

test("parseCertificateCached keeps no certificate larger than MAX_CACHED_CERTIFICATE_BYTES", async () => {
  const big = await mintDevice("big", c.int, {
    sanDns: Array.from({ length: 300 }, (_, i) => `host-${i}.devices.example.com`),
  });
  assert.ok(big.cert.der.length > MAX_CACHED_CERTIFICATE_BYTES);
  const a = parseCertificateCached(big.cert.der);
  assert.notEqual(
    a,
    parseCertificateCached(big.cert.der),
    "parsed afresh: a client cannot fill the cache with it",
  );
  assert.equal(a.fingerprint, big.cert.fingerprint);
});
