// The CA that EST enrollment issues device certificates with: loaded from a certificate and key file (and
// the chain above it, which /cacerts returns), checked to be a CA whose key it holds; it signs device
// leaves from a request's key and subject to one fixed client-certificate profile, and CRLs. Signing goes
// through the CaSigner interface so that a key held elsewhere (a PKCS#11 token) can be added later.
import { createHash } from "node:crypto";
import { publicKeyInfoOf } from "../identity/algorithms.ts";
import { children, DerError, readTlv, TAG } from "../identity/der.ts";
import { formatName, parseName } from "../identity/dn.ts";
import { x509 } from "../identity/x509.ts";
import { PkiError } from "../pki/errors.ts";
import { readCertificates, readIssuer } from "../pki/files.ts";
import { createCrl, type Issuer, randomSerialNumber } from "../pki/issue.ts";
import { type CryptoKey, type KeyAlgorithm, signingAlgorithm } from "../pki/keys.ts";
import { toPem } from "../pki/pem.ts";

/**
 * What signs for the CA. Today a key file, imported as a WebCrypto key; a PKCS#11 signer would provide a
 * token-backed CryptoKey of the same algorithm through a WebCrypto provider for PKCS#11.
 */
export interface CaSigner {
  /** Where the key is, for messages: a file path (later a pkcs11: URI). */
  readonly source: string;
  readonly algorithm: KeyAlgorithm;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

export interface IssuingCa {
  readonly cert: x509.X509Certificate;
  /** The certificates above the CA, up to the root, for /cacerts; empty for a root CA. */
  readonly chain: x509.X509Certificate[];
  readonly signer: CaSigner;
  /** The CA's subjectKeyIdentifier (computed from its key when the certificate has none), lower-case hex. */
  readonly keyId: string;
}

export interface IssueRequest {
  /** The SubjectPublicKeyInfo DER of the request, copied into the certificate as is. */
  readonly spki: Uint8Array;
  /** The subject Name DER, copied into the certificate as is. */
  readonly subjectDer: Uint8Array;
  /** The device the certificate is for (messages; the caller puts its identity in sanUris). */
  readonly deviceId: string;
  /** The only SAN entries of the certificate: URIs the caller approved (urn:device:<id>). */
  readonly sanUris: readonly string[];
  readonly validityMs: number;
  readonly now: Date;
}

export interface IssuedLeaf {
  readonly der: Uint8Array;
  readonly pem: string;
  /** Serial number, lower-case hex. */
  readonly serial: string;
  /** SHA-256 of the DER, lower-case hex. */
  readonly fingerprint: string;
  /** RFC 4514 form of the subject, as Certificate.subject prints it. */
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface RevokedSerial {
  /** Hexadecimal serial number. */
  readonly serial: string;
  readonly revokedAt: Date;
  /** An RFC 5280 CRLReason name, e.g. "keyCompromise" or "unspecified". */
  readonly reason: string;
}

const BACKDATE_MS = 5 * 60 * 1000;

/** Key references that name something other than a key file, refused until their signer exists. */
function refuseUnsupportedKey(keyPath: string): void {
  if (keyPath.toLowerCase().startsWith("pkcs11:")) {
    throw new PkiError(`${keyPath}: PKCS#11 keys are not supported yet: give a key file`);
  }
}

function assertCaCertificate(cert: x509.X509Certificate, path: string): void {
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) {
    throw new PkiError(`${path}: "${cert.subject}" is not a CA certificate (basicConstraints cA is not set)`);
  }
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (!ku || (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new PkiError(
      `${path}: "${cert.subject}" may not sign certificates (its keyUsage lacks keyCertSign)`,
    );
  }
}

/** The chain above `cert`: each certificate must be the issuer of the one before it. */
function checkChain(cert: x509.X509Certificate, chain: x509.X509Certificate[], files: string): void {
  let below = cert;
  for (const above of chain) {
    if (below.issuer !== above.subject) {
      throw new PkiError(
        `${files}: "${above.subject}" does not issue "${below.subject}" (the chain must go from the CA's issuer up to the root, in order)`,
      );
    }
    below = above;
  }
}

/**
 * The issuing CA from its files: `cert` (the CA first; any further certificates in it start the chain),
 * `key` (PEM, PKCS#8 or traditional), `chain` (files of the certificates above the CA, in order up to the
 * root). Throws PkiError naming the file for an unreadable file, a key of another certificate, a
 * certificate that is not a CA, or a pkcs11: key.
 */
export async function loadIssuingCa(files: {
  cert: string;
  key: string;
  chain?: string[];
}): Promise<IssuingCa> {
  refuseUnsupportedKey(files.key);
  const issuer = await readIssuer(files.cert, files.key);
  assertCaCertificate(issuer.cert, files.cert);
  const chain = [
    ...readCertificates(files.cert).slice(1),
    ...(files.chain ?? []).flatMap((p) => readCertificates(p)),
  ];
  checkChain(issuer.cert, chain, [files.cert, ...(files.chain ?? [])].join(", "));
  const ski = issuer.cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const keyId = ski
    ? ski.keyId
    : (await x509.SubjectKeyIdentifierExtension.create(issuer.cert.publicKey)).keyId;
  return {
    cert: issuer.cert,
    chain,
    signer: {
      source: files.key,
      algorithm: issuer.algorithm,
      privateKey: issuer.keys.privateKey,
      publicKey: issuer.keys.publicKey,
    },
    keyId: keyId.toLowerCase(),
  };
}

/** The Name DER of `CN=<deviceId>`. */
export function subjectForDevice(deviceId: string): Uint8Array {
  if (deviceId === "") throw new PkiError("device id must not be empty");
  return new Uint8Array(new x509.Name([{ CN: [deviceId] }]).toArrayBuffer());
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING (without its unused-bits byte). */
function keyIdentifier(spki: Uint8Array): { keyId: string; rsa: boolean } {
  try {
    const outer = readTlv(spki, 0);
    if (outer.tag !== TAG.sequence || outer.end !== spki.length) throw new DerError("not one SEQUENCE");
    const key = children(spki, outer)[1];
    if (key?.tag !== TAG.bitString || key.end === key.start) throw new DerError("no subjectPublicKey");
    const keyId = createHash("sha1")
      .update(spki.subarray(key.start + 1, key.end))
      .digest("hex");
    return { keyId, rsa: publicKeyInfoOf(spki, outer).type === "rsa" };
  } catch (err) {
    throw new PkiError(`malformed SubjectPublicKeyInfo: ${(err as Error).message}`);
  }
}

function subjectOf(subjectDer: Uint8Array): string {
  try {
    return formatName(parseName(subjectDer));
  } catch (err) {
    throw new PkiError(`malformed subject Name: ${(err as Error).message}`);
  }
}

/** The issuer view of the CA that src/pki's CRL writer signs with. */
function issuerOf(ca: IssuingCa): Issuer {
  return {
    cert: ca.cert,
    keys: { privateKey: ca.signer.privateKey, publicKey: ca.signer.publicKey },
    algorithm: ca.signer.algorithm,
  };
}

/**
 * A device client certificate for a request's key and subject: SAN exactly `sanUris`, EKU clientAuth,
 * keyUsage digitalSignature (plus keyEncipherment for RSA keys, critical), not a CA, SKI and AKI, valid
 * from 5 minutes before `now` for `validityMs` but never beyond the CA, with a random serial.
 */
export async function issueFromRequest(ca: IssuingCa, req: IssueRequest): Promise<IssuedLeaf> {
  if (req.deviceId === "") throw new PkiError("device id must not be empty");
  if (!Number.isFinite(req.validityMs) || req.validityMs <= 0) {
    throw new PkiError(
      `certificate validity must be a positive number of milliseconds, not ${req.validityMs}`,
    );
  }
  const now = req.now.getTime();
  if (now < ca.cert.notBefore.getTime()) {
    throw new PkiError(
      `the issuing CA "${ca.cert.subject}" is not valid before ${ca.cert.notBefore.toISOString()}`,
    );
  }
  if (now >= ca.cert.notAfter.getTime()) {
    throw new PkiError(`the issuing CA "${ca.cert.subject}" expired at ${ca.cert.notAfter.toISOString()}`);
  }
  for (const uri of req.sanUris) {
    if (!/^[\x21-\x7e]+$/.test(uri)) throw new PkiError(`SAN URI "${uri}" is not printable ASCII`);
  }
  const { keyId, rsa } = keyIdentifier(req.spki);
  const subject = subjectOf(req.subjectDer);
  const usages = rsa
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(usages, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    new x509.SubjectKeyIdentifierExtension(keyId),
    new x509.AuthorityKeyIdentifierExtension(ca.keyId),
  ];
  if (req.sanUris.length > 0) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension(req.sanUris.map((value) => ({ type: "url", value }))),
    );
  }
  const serial = randomSerialNumber();
  let cert: x509.X509Certificate;
  try {
    cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial,
      subject: new x509.Name(new Uint8Array(req.subjectDer)),
      // The CA's subject DER as is, so that name chaining is byte-exact.
      issuer: ca.cert.subjectName,
      notBefore: new Date(Math.max(now - BACKDATE_MS, ca.cert.notBefore.getTime())),
      notAfter: new Date(Math.min(now + req.validityMs, ca.cert.notAfter.getTime())),
      publicKey: new Uint8Array(req.spki),
      signingKey: ca.signer.privateKey,
      signingAlgorithm: signingAlgorithm(ca.signer.algorithm),
      extensions,
    });
  } catch (err) {
    throw new PkiError(`cannot issue a certificate for device "${req.deviceId}": ${(err as Error).message}`);
  }
  const der = new Uint8Array(cert.rawData);
  return {
    der,
    pem: toPem(der, "CERTIFICATE"),
    serial,
    fingerprint: createHash("sha256").update(der).digest("hex"),
    subject,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

/** A CRL of the issuing CA listing `revoked`, as PEM. */
export async function issueCrl(
  ca: IssuingCa,
  revoked: readonly RevokedSerial[],
  opts: { now: Date; nextUpdate: Date; number: bigint | number },
): Promise<string> {
  if (opts.nextUpdate.getTime() <= opts.now.getTime())
    throw new PkiError("CRL nextUpdate must be later than now");
  const { pem } = await createCrl(issuerOf(ca), {
    revoked: revoked.map((r) => ({ serialNumber: r.serial, revokedAt: r.revokedAt, reason: r.reason })),
    thisUpdate: opts.now,
    nextUpdate: opts.nextUpdate,
    crlNumber: opts.number,
  });
  return pem;
}
