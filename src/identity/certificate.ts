// A parsed X.509 certificate: everything the identity engine, the policies and the identity headers read,
// decoded once from DER. Parsing never throws anything but CertificateParseError.
import { createHash, X509Certificate as NodeX509 } from "node:crypto";
import { x509 } from "./x509.ts";

export class CertificateParseError extends Error {
  override name = "CertificateParseError";
}

export interface Certificate {
  readonly der: Buffer;
  /** node:crypto view, used for signature checks. */
  readonly node: NodeX509;
  /** SHA-256 of the DER, lower-case hex without separators (XFCC `Hash`). */
  readonly fingerprint: string;
  /** SHA-256 of the SubjectPublicKeyInfo, base64 (Envoy/HPKP-style SPKI pin). */
  readonly spkiSha256: string;
  readonly serialNumber: string;
  /** RFC 4514 string, most specific RDN first (as Envoy's XFCC `Subject`). */
  readonly subject: string;
  readonly issuer: string;
  /** DER of the subject and issuer Names, for exact name chaining. */
  readonly subjectDer: Buffer;
  readonly issuerDer: Buffer;
  readonly commonName: string | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly selfIssued: boolean;
  /** basicConstraints; absent extension means not a CA. */
  readonly isCA: boolean;
  readonly pathLength: number | undefined;
  /** keyUsage bits by name; undefined when the extension is absent (no restriction). */
  readonly keyUsage: ReadonlySet<string> | undefined;
  /** extendedKeyUsage OIDs; undefined when the extension is absent (no restriction). */
  readonly extKeyUsage: readonly string[] | undefined;
  readonly sanDns: readonly string[];
  readonly sanUris: readonly string[];
  readonly sanEmails: readonly string[];
  readonly sanIps: readonly string[];
  /** OIDs of critical extensions, for the "unknown critical extension" rule. */
  readonly criticalExtensions: readonly string[];
  /** OIDs of every extension, critical or not (e.g. to refuse a nameConstraints not yet enforced). */
  readonly extensionOids: readonly string[];
}

export const EKU = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  ocspSigning: "1.3.6.1.5.5.7.3.9",
  anyExtendedKeyUsage: "2.5.29.37.0",
} as const;

const KEY_USAGE_NAMES: readonly [number, string][] = [
  [x509.KeyUsageFlags.digitalSignature, "digitalSignature"],
  [x509.KeyUsageFlags.nonRepudiation, "nonRepudiation"],
  [x509.KeyUsageFlags.keyEncipherment, "keyEncipherment"],
  [x509.KeyUsageFlags.dataEncipherment, "dataEncipherment"],
  [x509.KeyUsageFlags.keyAgreement, "keyAgreement"],
  [x509.KeyUsageFlags.keyCertSign, "keyCertSign"],
  [x509.KeyUsageFlags.cRLSign, "cRLSign"],
  [x509.KeyUsageFlags.encipherOnly, "encipherOnly"],
  [x509.KeyUsageFlags.decipherOnly, "decipherOnly"],
];

const ATTRIBUTE_NAMES: Record<string, string> = { E: "emailAddress" };

/** RFC 4514 §2.4 escaping of one attribute value. */
function escapeDnValue(value: string): string {
  let out = value.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
  if (out.startsWith("#") || out.startsWith(" ")) out = `\\${out}`;
  if (out.endsWith(" ") && out.length > 1) out = `${out.slice(0, -1)}\\ `;
  return out;
}

/** RFC 4514 string of a Name: RDNs in reverse order of the encoding, comma-separated. */
function formatName(name: x509.Name): string {
  return name
    .toJSON()
    .map((rdn) =>
      Object.entries(rdn)
        .flatMap(([type, values]) =>
          values.map((v) => `${ATTRIBUTE_NAMES[type] ?? type}=${escapeDnValue(v)}`),
        )
        .join("+"),
    )
    .reverse()
    .join(",");
}

function toBuffer(data: ArrayBuffer | ArrayBufferView): Buffer {
  return ArrayBuffer.isView(data)
    ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    : Buffer.from(data);
}

export function parseCertificate(der: Uint8Array): Certificate {
  let node: NodeX509;
  let cert: x509.X509Certificate;
  try {
    node = new NodeX509(der);
    cert = new x509.X509Certificate(der);
  } catch (err) {
    throw new CertificateParseError(`malformed certificate: ${(err as Error).message}`);
  }
  try {
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    const ku = cert.getExtension(x509.KeyUsagesExtension);
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const names = san?.names.items ?? [];
    const sanOf = (type: string) => names.filter((n) => n.type === type).map((n) => n.value);
    const keyUsage = ku
      ? new Set(KEY_USAGE_NAMES.filter(([flag]) => (ku.usages & flag) !== 0).map(([, n]) => n))
      : undefined;
    const subjectDer = toBuffer(cert.subjectName.toArrayBuffer());
    const issuerDer = toBuffer(cert.issuerName.toArrayBuffer());
    const spki = node.publicKey.export({ type: "spki", format: "der" });
    return {
      der: Buffer.from(der),
      node,
      fingerprint: createHash("sha256").update(der).digest("hex"),
      spkiSha256: createHash("sha256").update(spki).digest("base64"),
      serialNumber: node.serialNumber.toLowerCase(),
      subject: formatName(cert.subjectName),
      issuer: formatName(cert.issuerName),
      subjectDer,
      issuerDer,
      commonName: cert.subjectName.getField("CN")[0],
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      selfIssued: subjectDer.equals(issuerDer),
      isCA: bc?.ca ?? false,
      pathLength: bc?.pathLength,
      keyUsage,
      extKeyUsage: eku ? Array.from(eku.usages, String) : undefined,
      sanDns: sanOf("dns"),
      sanUris: sanOf("url"),
      sanEmails: sanOf("email"),
      sanIps: sanOf("ip"),
      criticalExtensions: Array.from(cert.extensions)
        .filter((e) => e.critical)
        .map((e) => e.type),
      extensionOids: Array.from(cert.extensions, (e) => e.type),
    };
  } catch (err) {
    throw new CertificateParseError(`malformed certificate extensions: ${(err as Error).message}`);
  }
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/g;

/** Every certificate of a PEM bundle, in order; text outside the blocks is ignored, a bad block throws. */
export function parsePemBundle(text: string): Certificate[] {
  const certs: Certificate[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const body = (match[1] ?? "").replace(/\s+/g, "");
    certs.push(parseCertificate(Buffer.from(body, "base64")));
  }
  return certs;
}

export function toPem(cert: Certificate): string {
  const b64 = cert.der.toString("base64").replace(/.{1,64}/g, "$&\n");
  return `-----BEGIN CERTIFICATE-----\n${b64}-----END CERTIFICATE-----\n`;
}

/** SHA-256 over the concatenated DER of a chain: the cache key of a presented chain. */
export function chainFingerprint(chain: readonly Certificate[]): string {
  const hash = createHash("sha256");
  for (const cert of chain) hash.update(cert.fingerprint);
  return hash.digest("hex");
}
