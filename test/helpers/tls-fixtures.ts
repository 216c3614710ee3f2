// Extra certificates for TLS end-to-end tests, next to the demo PKI in one directory:
// two more server certificates (HOST_B, FALLBACK_HOST), a second trust domain (its own root + intermediate and a
// device under it), and two devices that only the identity engine can tell apart from good ones.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { x509 } from "../../src/identity/x509.ts";
import { type DemoPki, ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { writeFileAtomic } from "../../src/pki/files.ts";
import { deviceUri, type Issuer, randomSerialNumber } from "../../src/pki/issue.ts";
import { exportPrivateKeyPem, generateKeyPair, signingAlgorithm } from "../../src/pki/keys.ts";
import { toPem } from "../../src/pki/pem.ts";
import { initPki, issueToFiles, loadPki } from "../../src/pki/store.ts";

export const HOST_A = "mtls.auth.local.com";
export const HOST_B = "tenant-b.local.test";
export const FALLBACK_HOST = "fallback.test";

export interface TlsFixtures {
  readonly demo: DemoPki;
  /** Server certificate for HOST_B only, issued by the demo intermediate (file names relative to dir). */
  readonly otherServer: { cert: string; key: string };
  /** Server certificate for FALLBACK_HOST only, issued by the demo intermediate. */
  readonly fallbackServer: { cert: string; key: string };
  /** CA bundle of the second trust domain (intermediate + root), relative to dir. */
  readonly caB: string;
  /** Device `device-b` under the second trust domain (leaf + intermediate), relative to dir. */
  readonly deviceB: { cert: string; key: string };
  /** Demo-intermediate leaf whose extendedKeyUsage is serverAuth only: OpenSSL's sslclient check rejects it. */
  readonly serverAuthDevice: { cert: string; key: string };
  /** A CA:TRUE leaf (EKU clientAuth) under the demo root: OpenSSL accepts it, the engine says wrong_purpose. */
  readonly caLeafDevice: { cert: string; key: string };
  readonly anyEkuDevice: { cert: string; key: string };
}

/** Reads a fixture file (relative to dir) as text. */
export function pem(dir: string, file: string): string {
  return readFileSync(join(dir, file), "utf8");
}

async function issueOddLeaf(
  dir: string,
  name: string,
  issuer: Issuer,
  opts: { ca: boolean; eku: string },
): Promise<{ cert: string; key: string }> {
  const keys = await generateKeyPair("ec-p256");
  const ski = await x509.SubjectKeyIdentifierExtension.create(keys.publicKey);
  const issuerSki = issuer.cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (!issuerSki) throw new Error("issuer has no subjectKeyIdentifier");
  const usages = opts.ca
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign
    : x509.KeyUsageFlags.digitalSignature;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: new x509.Name([{ CN: [name] }]),
    issuer: issuer.cert.subjectName,
    notBefore: new Date(Date.now() - 5 * 60 * 1000),
    notAfter: new Date(Date.now() + 30 * 24 * 60 * 60 * 1000),
    publicKey: keys.publicKey,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: signingAlgorithm(issuer.algorithm),
    extensions: [
      new x509.BasicConstraintsExtension(opts.ca, undefined, true),
      new x509.KeyUsagesExtension(usages, true),
      new x509.ExtendedKeyUsageExtension([opts.eku]),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: deviceUri(name) }]),
      ski,
      new x509.AuthorityKeyIdentifierExtension(issuerSki.keyId),
    ],
  });
  const isRoot = issuer.cert.subject === issuer.cert.issuer;
  const chain = isRoot ? "" : toPem(issuer.cert.rawData, "CERTIFICATE");
  writeFileAtomic(join(dir, `${name}.key`), await exportPrivateKeyPem(keys.privateKey), 0o600);
  writeFileAtomic(join(dir, `${name}.crt`), toPem(cert.rawData, "CERTIFICATE") + chain);
  return { cert: `${name}.crt`, key: `${name}.key` };
}

/** Creates the demo PKI in `dir` plus the extra certificates above. */
export async function createTlsFixtures(dir: string): Promise<TlsFixtures> {
  const demo = await ensureDemoPki(dir);
  const pkiA = await loadPki(demo.pkiDir);
  await issueToFiles(pkiA, { kind: "server", names: [HOST_B] }, { out: join(dir, "other-server") });
  await issueToFiles(pkiA, { kind: "server", names: [FALLBACK_HOST] }, { out: join(dir, "fallback-server") });
  const pkiB = await initPki(join(dir, "pki-b"), { name: "Tenant B Root CA" });
  await issueToFiles(pkiB, { kind: "device", deviceId: "device-b" }, { out: join(dir, "device-b") });
  const serverAuthDevice = await issueOddLeaf(dir, "serverauth-device", pkiA.intermediate, {
    ca: false,
    eku: x509.ExtendedKeyUsage.serverAuth,
  });
  const caLeafDevice = await issueOddLeaf(dir, "ca-leaf-device", pkiA.root, {
    ca: true,
    eku: x509.ExtendedKeyUsage.clientAuth,
  });
  // anyExtendedKeyUsage alone: OpenSSL refuses it for a client, and so does the engine (one rule, both modes).
  const anyEkuDevice = await issueOddLeaf(dir, "anyeku-device", pkiA.intermediate, {
    ca: false,
    eku: "2.5.29.37.0",
  });
  return {
    demo,
    otherServer: { cert: "other-server.crt", key: "other-server.key" },
    fallbackServer: { cert: "fallback-server.crt", key: "fallback-server.key" },
    caB: "pki-b/ca-chain.crt",
    deviceB: { cert: "device-b.crt", key: "device-b.key" },
    serverAuthDevice,
    caLeafDevice,
    anyEkuDevice,
  };
}
