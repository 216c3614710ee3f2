// Test helper: mints ECDSA P-256 certificates in-process, with every knob the identity tests need to break them.
import type { webcrypto } from "node:crypto";
import { type Certificate, EKU, parseCertificate, toPem } from "../certificate.ts";
import { x509 } from "../x509.ts";
import { cidrBytes, seq, tagged } from "./der-encode.ts";

const ECDSA = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY = 86_400_000;

export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export type CryptoKey = webcrypto.CryptoKey;

/** A minted certificate with its keys, so that it can issue further certificates. */
export interface Minted {
  readonly cert: Certificate;
  readonly keys: CryptoKeyPair;
  readonly pem: string;
  /** The @peculiar/x509 view: its subjectName is reused verbatim as the issuer name of children. */
  readonly x509: x509.X509Certificate;
}

export type KeyUsageName =
  | "digitalSignature"
  | "nonRepudiation"
  | "keyEncipherment"
  | "dataEncipherment"
  | "keyAgreement"
  | "keyCertSign"
  | "cRLSign";

export interface MintOptions {
  /** Distinguished name, e.g. "CN=device-001, O=Acme". */
  readonly subject: string;
  /** Signer; omitted means self-signed. */
  readonly issuer?: Minted;
  /** Issuer name override (defaults to the issuer's subject, or the own subject when self-signed). */
  readonly issuerName?: string;
  /** Key pair of the new certificate; generated when omitted (lets tests re-key or reuse a key). */
  readonly keys?: CryptoKeyPair;
  /** Signing key override, e.g. a stranger's key under the right issuer name: a bad signature. */
  readonly signingKey?: CryptoKey;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** basicConstraints cA; undefined omits the extension entirely. */
  readonly ca?: boolean;
  readonly pathLength?: number;
  /** keyUsage bits; undefined omits the extension. */
  readonly keyUsage?: readonly KeyUsageName[];
  /** extendedKeyUsage OIDs; undefined omits the extension. */
  readonly extKeyUsage?: readonly string[];
  readonly sanUris?: readonly string[];
  readonly sanDns?: readonly string[];
  readonly sanEmails?: readonly string[];
  readonly sanIps?: readonly string[];
  /** Extra extensions, e.g. an unknown critical one. */
  readonly extensions?: readonly x509.Extension[];
  /** subjectKeyIdentifier (SHA-1 of the key, as CAs compute it); default true. */
  readonly ski?: boolean;
  /**
   * authorityKeyIdentifier: by default the issuer's key identifier, or `authorityKey`'s, and none for a
   * self-signed certificate; false omits it.
   */
  readonly aki?: boolean;
  /** The public key the authorityKeyIdentifier names when there is no `issuer` (e.g. an `issuerName` override). */
  readonly authorityKey?: CryptoKey;
  /** Serial number as hex (two's complement); default a random positive one. */
  readonly serialNumber?: string;
}

export function newKeys(): Promise<CryptoKeyPair> {
  return globalThis.crypto.subtle.generateKey(ECDSA, true, ["sign", "verify"]);
}

export async function mint(options: MintOptions): Promise<Minted> {
  const { keys, x509: generated } = await mintUnparsed(options);
  const cert = parseCertificate(new Uint8Array(generated.rawData));
  return { cert, keys, pem: toPem(cert), x509: generated };
}

/** A certificate minted but not parsed by the engine: for the ones it refuses to parse. */
export async function mintUnparsed(
  options: MintOptions,
): Promise<{ keys: CryptoKeyPair; x509: x509.X509Certificate; pem: string }> {
  const keys = options.keys ?? (await newKeys());
  const extensions: x509.Extension[] = [];
  if (options.ca !== undefined) {
    extensions.push(new x509.BasicConstraintsExtension(options.ca, options.pathLength, true));
  }
  if (options.keyUsage !== undefined) {
    const flags = options.keyUsage.reduce((acc, name) => acc | x509.KeyUsageFlags[name], 0);
    extensions.push(new x509.KeyUsagesExtension(flags, true));
  }
  if (options.extKeyUsage !== undefined) {
    extensions.push(new x509.ExtendedKeyUsageExtension([...options.extKeyUsage], false));
  }
  const names: x509.JsonGeneralName[] = [
    ...(options.sanUris ?? []).map((value) => ({ type: "url" as const, value })),
    ...(options.sanDns ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(options.sanEmails ?? []).map((value) => ({ type: "email" as const, value })),
    ...(options.sanIps ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  if (options.ski !== false) extensions.push(await x509.SubjectKeyIdentifierExtension.create(keys.publicKey));
  const authorityKey = options.issuer?.keys.publicKey ?? options.authorityKey;
  if (authorityKey && options.aki !== false) {
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(authorityKey));
  }
  extensions.push(...(options.extensions ?? []));

  const issuerName = options.issuerName ?? options.issuer?.x509.subjectName ?? options.subject;
  const signingKey = options.signingKey ?? options.issuer?.keys.privateKey ?? keys.privateKey;
  const now = Date.now();
  const generated = await x509.X509CertificateGenerator.create({
    subject: options.subject,
    issuer: issuerName,
    notBefore: options.notBefore ?? new Date(now - DAY),
    notAfter: options.notAfter ?? new Date(now + 365 * DAY),
    publicKey: keys.publicKey,
    ...(options.serialNumber === undefined ? {} : { serialNumber: options.serialNumber }),
    signingKey,
    signingAlgorithm: ECDSA,
    extensions,
  });
  return { keys, x509: generated, pem: generated.toString("pem") };
}

/** A CA certificate as CAs issue them: critical basicConstraints, keyCertSign + cRLSign. */
export function mintCa(
  subject: string,
  issuer?: Minted,
  extra: Omit<MintOptions, "subject" | "issuer"> = {},
): Promise<Minted> {
  return mint({ subject, issuer, ca: true, keyUsage: ["keyCertSign", "cRLSign"], ...extra });
}

/** A device certificate: digitalSignature, clientAuth, SAN URI urn:device:<cn>. */
export function mintDevice(
  cn: string,
  issuer: Minted,
  extra: Omit<MintOptions, "subject" | "issuer"> = {},
): Promise<Minted> {
  return mint({
    subject: `CN=${cn}`,
    issuer,
    keyUsage: ["digitalSignature"],
    extKeyUsage: [EKU.clientAuth],
    sanUris: [`urn:device:${cn}`],
    ...extra,
  });
}

export const days = (n: number): number => n * DAY;

/** One nameConstraints subtree: exactly one of the fields. */
export interface Subtree {
  readonly dns?: string;
  readonly email?: string;
  readonly uri?: string;
  /** "10.0.0.0/8", "2001:db8::/32". */
  readonly ip?: string;
  /** A DN in @peculiar/x509 string form, first RDN first: "O=Acme" or "C=DE, O=Acme". */
  readonly dn?: string;
}

function generalName(subtree: Subtree): Buffer {
  if (subtree.dns !== undefined) return tagged(2, false, Buffer.from(subtree.dns, "latin1"));
  if (subtree.email !== undefined) return tagged(1, false, Buffer.from(subtree.email, "latin1"));
  if (subtree.uri !== undefined) return tagged(6, false, Buffer.from(subtree.uri, "latin1"));
  if (subtree.ip !== undefined) return tagged(7, false, cidrBytes(subtree.ip));
  if (subtree.dn !== undefined)
    return tagged(4, true, Buffer.from(new x509.Name(subtree.dn).toArrayBuffer()));
  throw new Error("empty subtree");
}

/** A nameConstraints extension (critical, as RFC 5280 requires). */
export function nameConstraints(constraints: {
  readonly permitted?: readonly Subtree[];
  readonly excluded?: readonly Subtree[];
}): x509.Extension {
  const part = (n: number, list: readonly Subtree[] | undefined) =>
    list && list.length > 0 ? [tagged(n, true, ...list.map((s) => seq(generalName(s))))] : [];
  const value = seq(...part(0, constraints.permitted), ...part(1, constraints.excluded));
  return new x509.Extension("2.5.29.30", true, new Uint8Array(value));
}
