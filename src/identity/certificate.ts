// A parsed X.509 certificate: everything the identity engine, the policies and the identity headers read,
// decoded once from DER. OpenSSL (node:crypto X509Certificate) is the parser of record: what it refuses
// is refused; the fields are then read from the same DER with the strict reader of der.ts, which costs
// microseconds where a schema-driven parse costs most of a millisecond. Parsing never throws anything
// but CertificateParseError.
import { createHash, X509Certificate as NodeX509 } from "node:crypto";
import {
  type PublicKeyInfo,
  publicKeyInfoOf,
  type SignatureAlgorithm,
  signatureAlgorithmOf,
} from "./algorithms.ts";
import {
  children,
  contents,
  ctx,
  DerError,
  decodeBoolean,
  decodeOid,
  decodeSmallInt,
  encoding,
  readTlv,
  TAG,
} from "./der.ts";
import { labelOf } from "./describe.ts";
import { firstValue, formatName, OID_COMMON_NAME, parseName, type Rdn } from "./dn.ts";
import {
  decodeAuthorityKeyId,
  decodeBasicConstraints,
  decodeExtKeyUsage,
  decodeKeyUsage,
  decodeSubjectKeyId,
  OID,
} from "./extensions.ts";
import { decodeGeneralNames, type GeneralName } from "./general-names.ts";
import { Lru } from "./lru.ts";
import { decodeNameConstraints, type NameConstraints } from "./name-constraints.ts";
import { decodeTime } from "./time.ts";

export class CertificateParseError extends Error {
  override name = "CertificateParseError";
}

export interface Certificate {
  readonly der: Buffer;
  /** node:crypto view, used for signature checks. */
  readonly node: NodeX509;
  /** SHA-256 of the DER, lower-case hex without separators (XFCC `Hash`). */
  readonly fingerprint: string;
  /** SHA-256 of the SubjectPublicKeyInfo as encoded in the certificate, base64 (Envoy/HPKP-style pin). */
  readonly spkiSha256: string;
  readonly serialNumber: string;
  /** The serialNumber INTEGER's content octets as encoded (two's complement), for the profile's format rules. */
  readonly serialNumberBytes: Uint8Array;
  /** X.509 version: 1, 2 or 3. */
  readonly version: number;
  /** The algorithm the issuer signed this certificate with. */
  readonly signatureAlgorithm: SignatureAlgorithm;
  /** This certificate's own public key. */
  readonly publicKey: PublicKeyInfo;
  /** The subjectPublicKey BIT STRING's bits, as encoded (what key identifiers and OCSP key hashes hash). */
  readonly subjectPublicKeyBits: Buffer;
  /** RFC 4514 string, most specific RDN first (as Envoy's XFCC `Subject`). */
  readonly subject: string;
  readonly issuer: string;
  /** The subject's RDNs in encoding order (most general first), for directoryName constraints. */
  readonly subjectRdns: readonly Rdn[];
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
  /** Every subjectAltName entry, in order; the san* lists below are views of it. */
  readonly subjectAltNames: readonly GeneralName[];
  readonly sanDns: readonly string[];
  readonly sanUris: readonly string[];
  readonly sanEmails: readonly string[];
  readonly sanIps: readonly string[];
  /** subjectKeyIdentifier, lower-case hex; undefined when absent. */
  readonly subjectKeyId: string | undefined;
  /** keyIdentifier of the authorityKeyIdentifier, lower-case hex; undefined when absent. */
  readonly authorityKeyId: string | undefined;
  /** Parsed nameConstraints of a CA; undefined when absent. */
  readonly nameConstraints: NameConstraints | undefined;
  /** OIDs of critical extensions, for the "unknown critical extension" rule. */
  readonly criticalExtensions: readonly string[];
  /** OIDs of every extension, critical or not. */
  readonly extensionOids: readonly string[];
}

export const EKU = {
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  ocspSigning: "1.3.6.1.5.5.7.3.9",
  anyExtendedKeyUsage: "2.5.29.37.0",
} as const;

const sha256 = (data: Uint8Array, encoding: "hex" | "base64"): string =>
  createHash("sha256").update(data).digest(encoding);

interface Extensions {
  readonly byOid: Map<string, Uint8Array>;
  readonly critical: string[];
}

/** Extensions ::= SEQUENCE OF Extension; Extension ::= SEQUENCE { extnID, critical DEFAULT FALSE, extnValue } */
function readExtensions(der: Buffer, wrapper: ReturnType<typeof readTlv>): Extensions {
  const byOid = new Map<string, Uint8Array>();
  const critical: string[] = [];
  const seq = readTlv(der, wrapper.start, wrapper.end);
  if (seq.tag !== TAG.sequence || seq.end !== wrapper.end) throw new DerError("malformed extensions");
  for (const ext of children(der, seq)) {
    const fields = ext.tag === TAG.sequence ? children(der, ext) : [];
    const [idTlv, second, third] = fields;
    if (!idTlv || !second || fields.length > 3) throw new DerError("malformed extension");
    const oid = decodeOid(der, idTlv);
    const isCritical = third !== undefined && decodeBoolean(der, second);
    const value = third ?? second;
    if (value.tag !== TAG.octetString)
      throw new DerError(`extension ${oid}: extnValue is not an OCTET STRING`);
    // RFC 5280 §4.2: at most one instance of an extension; two could be read differently by two verifiers.
    if (byOid.has(oid)) throw new DerError(`duplicate extension ${oid}`);
    byOid.set(oid, contents(der, value));
    if (isCritical) critical.push(oid);
  }
  return { byOid, critical };
}

/** SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }: the key's bits. */
function publicKeyBits(der: Buffer, spki: ReturnType<typeof readTlv>): Buffer {
  const key = children(der, spki)[1];
  if (key?.tag !== TAG.bitString || key.end === key.start) throw new DerError("bad SubjectPublicKeyInfo");
  return der.subarray(key.start + 1, key.end);
}

function parseFields(der: Buffer, node: NodeX509): Certificate {
  const cert = readTlv(der, 0);
  if (cert.tag !== TAG.sequence || cert.end !== der.length) throw new DerError("not one DER SEQUENCE");
  const [tbs, sigAlg, sigValue, extra] = children(der, cert);
  if (!tbs || !sigAlg || !sigValue || extra || tbs.tag !== TAG.sequence)
    throw new DerError("bad Certificate");
  const fields = children(der, tbs);
  let i = 0;
  let version = 1;
  const first = fields[0];
  if (first?.tag === ctx(0, true)) {
    const v = readTlv(der, first.start, first.end);
    if (v.tag !== TAG.integer || v.end !== first.end) throw new DerError("bad version");
    version = decodeSmallInt(der, v) + 1;
    if (version > 3) throw new DerError(`unknown X.509 version ${version}`);
    i++;
  }
  const [serial, tbsSig, issuer, validity, subject, spki] = fields.slice(i, i + 6);
  if (!serial || !tbsSig || !issuer || !validity || !subject || !spki)
    throw new DerError("truncated TBSCertificate");
  if (serial.tag !== TAG.integer || serial.end === serial.start) throw new DerError("bad serialNumber");
  // RFC 5280 §4.1.1.2: the signed and the unsigned algorithm identifiers must be the same.
  if (!Buffer.from(encoding(der, tbsSig)).equals(encoding(der, sigAlg))) {
    throw new DerError("signatureAlgorithm differs from the TBSCertificate signature field");
  }
  if (issuer.tag !== TAG.sequence || subject.tag !== TAG.sequence || validity.tag !== TAG.sequence) {
    throw new DerError("bad TBSCertificate");
  }
  const [notBefore, notAfter] = children(der, validity);
  if (!notBefore || !notAfter) throw new DerError("bad Validity");
  let extensions: Extensions = { byOid: new Map(), critical: [] };
  for (const field of fields.slice(i + 6)) {
    if (field.tag === ctx(3, true)) extensions = readExtensions(der, field);
    else if (field.tag !== ctx(1, false) && field.tag !== ctx(2, false))
      throw new DerError("bad TBSCertificate");
  }

  const subjectDer = der.subarray(subject.headerStart, subject.end);
  const issuerDer = der.subarray(issuer.headerStart, issuer.end);
  const subjectRdns = parseName(subjectDer);
  const ext = extensions.byOid;
  const bcDer = ext.get(OID.basicConstraints);
  const bc = bcDer ? decodeBasicConstraints(bcDer) : { ca: false, pathLength: undefined };
  const kuDer = ext.get(OID.keyUsage);
  const ekuDer = ext.get(OID.extKeyUsage);
  const sanDer = ext.get(OID.subjectAltName);
  const ncDer = ext.get(OID.nameConstraints);
  const skiDer = ext.get(OID.subjectKeyIdentifier);
  const akiDer = ext.get(OID.authorityKeyIdentifier);
  const subjectAltNames = sanDer ? decodeGeneralNames(sanDer) : [];
  const sanOf = (kind: GeneralName["kind"]) =>
    subjectAltNames.filter((n) => n.kind === kind).map((n) => n.value);
  return {
    der,
    node,
    fingerprint: sha256(der, "hex"),
    spkiSha256: sha256(encoding(der, spki), "base64"),
    serialNumber: node.serialNumber.toLowerCase(),
    serialNumberBytes: contents(der, serial),
    version,
    signatureAlgorithm: signatureAlgorithmOf(der, sigAlg),
    publicKey: publicKeyInfoOf(der, spki),
    subjectPublicKeyBits: publicKeyBits(der, spki),
    subject: formatName(subjectRdns),
    issuer: formatName(parseName(issuerDer)),
    subjectRdns,
    subjectDer,
    issuerDer,
    commonName: firstValue(subjectRdns, OID_COMMON_NAME),
    notBefore: decodeTime(der, notBefore),
    notAfter: decodeTime(der, notAfter),
    selfIssued: subjectDer.equals(issuerDer),
    isCA: bc.ca,
    pathLength: bc.pathLength,
    keyUsage: kuDer ? decodeKeyUsage(kuDer) : undefined,
    extKeyUsage: ekuDer ? decodeExtKeyUsage(ekuDer) : undefined,
    subjectAltNames,
    sanDns: sanOf("dns"),
    sanUris: sanOf("uri"),
    sanEmails: sanOf("email"),
    sanIps: sanOf("ip"),
    subjectKeyId: skiDer ? decodeSubjectKeyId(skiDer) : undefined,
    authorityKeyId: akiDer ? decodeAuthorityKeyId(akiDer) : undefined,
    nameConstraints: ncDer ? decodeNameConstraints(ncDer) : undefined,
    criticalExtensions: extensions.critical,
    extensionOids: [...ext.keys()],
  };
}

export function parseCertificate(der: Uint8Array): Certificate {
  // A copy: the caller's buffer may be reused (socket buffers), the certificate outlives it.
  const bytes = Buffer.from(der);
  let node: NodeX509;
  try {
    node = new NodeX509(bytes);
  } catch (err) {
    throw new CertificateParseError(`malformed certificate: ${(err as Error).message}`);
  }
  try {
    return parseFields(bytes, node);
  } catch (err) {
    const why = err instanceof DerError ? err.message : String(err);
    throw new CertificateParseError(`malformed certificate ${nodeLabel(node)}: ${why}`);
  }
}

/** How a certificate that OpenSSL read but this parser refused is named: its subject, or its fingerprint. */
function nodeLabel(node: NodeX509): string {
  // node:crypto reports an empty subject as undefined.
  const subject = (node.subject ?? "").split("\n").filter(Boolean).reverse().join(",");
  return labelOf(subject, node.fingerprint256.replaceAll(":", "").toLowerCase());
}

const parsed = new Lru<Certificate>(10_000);
/**
 * Larger certificates are parsed afresh each time: clients choose what they send, and 10,000 cached
 * certificates of chainLimits.maxBytes each would hold hundreds of megabytes. Device and CA certificates
 * are a few hundred bytes to 2 KiB.
 */
export const MAX_CACHED_CERTIFICATE_BYTES = 4096;

/**
 * parseCertificate through a bounded LRU keyed by the DER's SHA-256. Devices share intermediates and
 * reconnect with the same leaf: the same object comes back, and with it the signature results that
 * path-validation.ts memoises per certificate object.
 */
export function parseCertificateCached(der: Uint8Array): Certificate {
  if (der.length > MAX_CACHED_CERTIFICATE_BYTES) return parseCertificate(der);
  const key = sha256(der, "base64");
  const hit = parsed.get(key);
  if (hit !== undefined) return hit;
  const cert = parseCertificate(der);
  parsed.set(key, cert);
  return cert;
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

/**
 * A SHA-256 certificate fingerprint as written by people and tools (`AB:CD:…` as openssl prints it, any
 * case) in the form `Certificate.fingerprint` uses: lower-case hex without separators. Undefined when it
 * is not 64 hex digits.
 */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.replaceAll(":", "").toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}

/** SHA-256 over the concatenated DER of a chain: the cache key of a presented chain. */
export function chainFingerprint(chain: readonly Certificate[]): string {
  const hash = createHash("sha256");
  for (const cert of chain) hash.update(cert.fingerprint);
  return hash.digest("hex");
}
