// Issuing certificates and CRLs: root and intermediate CAs, device (client) and server leaves, CRLs.
import { isIP } from "node:net";
import { x509 } from "../identity/x509.ts";
import { PkiError } from "./errors.ts";
import {
  type CryptoKeyPair,
  DEFAULT_KEY_ALGORITHM,
  exportPrivateKeyPem,
  generateKeyPair,
  type KeyAlgorithm,
  signingAlgorithm,
} from "./keys.ts";
import { toPem } from "./pem.ts";

/** A CA that can sign: its certificate, its key pair and the key's algorithm. */
export interface Issuer {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  algorithm: KeyAlgorithm;
}

/** A newly issued certificate with its new key; usable as an Issuer when it is a CA. */
export interface Issued extends Issuer {
  certPem: string;
  keyPem: string;
}

export interface ValidityOptions {
  algorithm?: KeyAlgorithm;
  /** Default: now minus 5 minutes, so that a peer whose clock lags a little accepts the certificate. */
  notBefore?: Date;
  /** Default: the kind's validity (root 10 y, intermediate 5 y, leaf 1 y) from notBefore or now. */
  notAfter?: Date;
}

export interface CaOptions extends ValidityOptions {
  /**
   * A distinguished name in encoding order, most general RDN first ("O=Example, CN=Example Root CA", as
   * OpenSSL's -subj), or its JSON form ([{ CN: ["Example Root CA"] }]).
   */
  subject: string | x509.JsonName;
}

export interface IntermediateOptions extends CaOptions {
  /** basicConstraints pathLenConstraint; 0 = may only issue leaves. */
  pathLength?: number;
}

export interface DeviceOptions extends ValidityOptions {
  deviceId: string;
}

export interface ServerOptions extends ValidityOptions {
  /** DNS names and IP literals; IP literals go to iPAddress SAN entries. */
  names: string[];
  /** Default: the first name. */
  commonName?: string;
}

const BACKDATE_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

function addYears(date: Date, years: number): Date {
  const out = new Date(date);
  out.setUTCFullYear(out.getUTCFullYear() + years);
  return out;
}

function validity(opts: ValidityOptions, years: number): { notBefore: Date; notAfter: Date } {
  const now = new Date();
  const notBefore = opts.notBefore ?? new Date(now.getTime() - BACKDATE_MS);
  const notAfter = opts.notAfter ?? addYears(opts.notBefore ?? now, years);
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new PkiError("certificate validity: notAfter must be later than notBefore");
  }
  return { notBefore, notAfter };
}

/** 16 random bytes with the top bit clear (a positive INTEGER) and the next bit set (always 16 bytes). */
export function randomSerialNumber(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return Buffer.from(bytes).toString("hex");
}

/** The key identifier of a CA: its SKI when present, else computed from its public key (RFC 5280 method 1). */
async function keyIdOf(cert: x509.X509Certificate): Promise<string> {
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski) return ski.keyId;
  return (await x509.SubjectKeyIdentifierExtension.create(cert.publicKey)).keyId;
}

function assertCa(issuer: Issuer): void {
  const bc = issuer.cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new PkiError(`issuer ${issuer.cert.subject} is not a CA certificate`);
}

interface SignParams {
  subject: string | x509.JsonName;
  keys: CryptoKeyPair;
  algorithm: KeyAlgorithm;
  notBefore: Date;
  notAfter: Date;
  extensions: x509.Extension[];
}

async function sign(params: SignParams, issuer: Issuer | undefined): Promise<Issued> {
  const ski = await x509.SubjectKeyIdentifierExtension.create(params.keys.publicKey);
  // A self-signed root names its own key as the authority key, as OpenSSL does.
  const akiKeyId = issuer ? await keyIdOf(issuer.cert) : ski.keyId;
  const subject = new x509.Name(params.subject);
  const signer = issuer ?? params;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject,
    // The issuer's subject DER is copied as is, so name chaining is byte-exact.
    issuer: issuer ? issuer.cert.subjectName : subject,
    notBefore: params.notBefore,
    notAfter: params.notAfter,
    publicKey: params.keys.publicKey,
    signingKey: signer.keys.privateKey,
    signingAlgorithm: signingAlgorithm(signer.algorithm),
    extensions: [...params.extensions, ski, new x509.AuthorityKeyIdentifierExtension(akiKeyId)],
  });
  return {
    cert,
    keys: params.keys,
    algorithm: params.algorithm,
    certPem: toPem(cert.rawData, "CERTIFICATE"),
    keyPem: await exportPrivateKeyPem(params.keys.privateKey),
  };
}

function caExtensions(pathLength: number | undefined): x509.Extension[] {
  return [
    new x509.BasicConstraintsExtension(true, pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ];
}

export async function createRootCa(opts: CaOptions): Promise<Issued> {
  const algorithm = opts.algorithm ?? DEFAULT_KEY_ALGORITHM;
  const keys = await generateKeyPair(algorithm);
  const extensions = caExtensions(undefined);
  return sign({ subject: opts.subject, keys, algorithm, ...validity(opts, 10), extensions }, undefined);
}

export async function createIntermediateCa(issuer: Issuer, opts: IntermediateOptions): Promise<Issued> {
  assertCa(issuer);
  const algorithm = opts.algorithm ?? DEFAULT_KEY_ALGORITHM;
  const keys = await generateKeyPair(algorithm);
  const extensions = caExtensions(opts.pathLength ?? 0);
  return sign({ subject: opts.subject, keys, algorithm, ...validity(opts, 5), extensions }, issuer);
}

export function deviceUri(deviceId: string): string {
  return `urn:device:${deviceId}`;
}

export async function issueDeviceCertificate(issuer: Issuer, opts: DeviceOptions): Promise<Issued> {
  assertCa(issuer);
  if (opts.deviceId === "") throw new PkiError("device id must not be empty");
  const algorithm = opts.algorithm ?? DEFAULT_KEY_ALGORITHM;
  const keys = await generateKeyPair(algorithm);
  const extensions = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    new x509.SubjectAlternativeNameExtension([{ type: "url", value: deviceUri(opts.deviceId) }]),
  ];
  // JSON form of the subject: a device id with "," or "=" needs no escaping.
  const subject: x509.JsonName = [{ CN: [opts.deviceId] }];
  return sign({ subject, keys, algorithm, ...validity(opts, 1), extensions }, issuer);
}

export async function issueServerCertificate(issuer: Issuer, opts: ServerOptions): Promise<Issued> {
  assertCa(issuer);
  const first = opts.names[0];
  if (first === undefined) throw new PkiError("a server certificate needs at least one name");
  const algorithm = opts.algorithm ?? DEFAULT_KEY_ALGORITHM;
  const keys = await generateKeyPair(algorithm);
  const san: x509.JsonGeneralNames = opts.names.map((name) =>
    isIP(name) ? { type: "ip", value: name } : { type: "dns", value: name },
  );
  // keyEncipherment is only meaningful for RSA key transport; RFC 5480 §3 forbids it on EC keys.
  const usages = algorithm.startsWith("rsa-")
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;
  const extensions = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(usages, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    new x509.SubjectAlternativeNameExtension(san),
  ];
  const subject: x509.JsonName = [{ CN: [opts.commonName ?? first] }];
  return sign({ subject, keys, algorithm, ...validity(opts, 1), extensions }, issuer);
}

export const CRL_REASONS: readonly string[] = Object.keys(x509.X509CrlReason).filter((k) =>
  Number.isNaN(Number(k)),
);

export interface RevokedEntry {
  /** Hexadecimal serial number. */
  serialNumber: string;
  revokedAt: Date;
  /** An RFC 5280 CRLReason name, e.g. "keyCompromise"; default unspecified. */
  reason?: string;
}

export interface CrlOptions {
  revoked: readonly RevokedEntry[];
  thisUpdate?: Date;
  /** Default: thisUpdate + 30 days. */
  nextUpdate?: Date;
  /** Default: thisUpdate in seconds since 1970, which grows with every new CRL without stored state. */
  crlNumber?: number | bigint;
}

export function crlReasonCode(reason: string): number {
  const code = (x509.X509CrlReason as unknown as Record<string, number | undefined>)[reason];
  if (typeof code !== "number") {
    throw new PkiError(`unknown revocation reason "${reason}" (use one of ${CRL_REASONS.join(", ")})`);
  }
  return code;
}

/** DER INTEGER of a non-negative number: @peculiar/x509 has no class for the cRLNumber extension. */
function derInteger(value: bigint): Uint8Array {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, "hex");
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  // RFC 5280 §5.2.3: at most 20 octets, so the short length form always fits.
  if (bytes.length > 20) throw new PkiError("CRL number must fit in 20 octets");
  return Uint8Array.from([0x02, bytes.length, ...bytes]);
}

export const CRL_NUMBER_OID = "2.5.29.20";
const CRL_REASON_OID = "2.5.29.21";

export async function createCrl(
  issuer: Issuer,
  opts: CrlOptions,
): Promise<{ crl: x509.X509Crl; pem: string }> {
  assertCa(issuer);
  const thisUpdate = opts.thisUpdate ?? new Date();
  const nextUpdate = opts.nextUpdate ?? new Date(thisUpdate.getTime() + 30 * DAY_MS);
  const crlNumber = BigInt(opts.crlNumber ?? Math.floor(thisUpdate.getTime() / 1000));
  if (crlNumber < 0n) throw new PkiError("CRL number must not be negative");
  const crl = await x509.X509CrlGenerator.create({
    issuer: issuer.cert.subjectName,
    thisUpdate,
    nextUpdate,
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: signingAlgorithm(issuer.algorithm),
    extensions: [
      new x509.AuthorityKeyIdentifierExtension(await keyIdOf(issuer.cert)),
      new x509.Extension(CRL_NUMBER_OID, false, derInteger(crlNumber)),
    ],
    entries: opts.revoked.map((entry) => {
      const reason = entry.reason === undefined ? 0 : crlReasonCode(entry.reason);
      // @peculiar/x509 writes an empty crlEntryExtensions SEQUENCE for an entry without a reason (invalid
      // DER that strict parsers refuse, the gateway's included), so "unspecified" is written out instead.
      return reason === 0
        ? {
            serialNumber: entry.serialNumber,
            revocationDate: entry.revokedAt,
            extensions: [new x509.Extension(CRL_REASON_OID, false, Uint8Array.from([0x0a, 0x01, 0x00]))],
          }
        : { serialNumber: entry.serialNumber, revocationDate: entry.revokedAt, reason };
    }),
  });
  return { crl, pem: toPem(crl.rawData, "X509 CRL") };
}
