// Parsing a CRL (RFC 5280 §5) into the immutable form the snapshot indexes, and checking it against a CA.
import { createHash } from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import type { Certificate } from "../certificate.ts";
import { certificateLabel } from "../describe.ts";
import { x509 } from "../x509.ts";
import { revocationInfo } from "./cert-info.ts";
import { canonicalSerial, hex, readPemBlocks } from "./der.ts";
import { unsupportedAlgorithm, verifySignature } from "./signature.ts";

export class CrlParseError extends Error {
  override name = "CrlParseError";
}

export interface RevokedEntry {
  readonly revokedAt: Date;
  /** RFC 5280 CRLReason name, when the entry gives one. */
  readonly reason?: string;
}

export interface ParsedCrl {
  /** Where it came from, for logs: a file or URL and the CRL's position in it. */
  readonly source: string;
  /** SHA-256 of the DER: two loads of the same bytes are the same data. */
  readonly sha256: string;
  readonly issuerDer: Buffer;
  /** RFC 4514 issuer, for messages. */
  readonly issuer: string;
  readonly authorityKeyId: string | undefined;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly crlNumber: bigint | undefined;
  /**
   * Why this CRL cannot vouch that a certificate is good (RFC 5280 §5.2.3: the cRLNumber extension is
   * required and non-critical), undefined when it can. Its revoked entries still count: a signed
   * statement that a certificate is revoked is never ignored.
   */
  readonly unusable: string | undefined;
  /** Canonical serial (canonicalSerial) → entry. */
  readonly revoked: ReadonlyMap<string, RevokedEntry>;
  /** Issuing Distribution Point scope: which certificates this CRL speaks about. */
  readonly only: "users" | "cas" | undefined;
  /** Issuing Distribution Point full names: the CRL covers only certificates naming one of them. */
  readonly distributionPoints: readonly string[] | undefined;
  readonly signatureAlgorithm: string;
  readonly tbs: Uint8Array;
  readonly signature: Uint8Array;
}

/** RFC 5280 CRLReason names by code, shared with OCSP's RevokedInfo. */
const REASONS = [
  "unspecified",
  "keyCompromise",
  "cACompromise",
  "affiliationChanged",
  "superseded",
  "cessationOfOperation",
  "certificateHold",
  undefined, // 7 is unused
  "removeFromCRL",
  "privilegeWithdrawn",
  "aACompromise",
];

export function crlReasonName(code: number): string {
  return REASONS[code] ?? "unspecified";
}

const OID = {
  authorityKeyIdentifier: "2.5.29.35",
  crlNumber: "2.5.29.20",
  deltaCrlIndicator: "2.5.29.27",
  issuingDistributionPoint: "2.5.29.28",
  reasonCode: "2.5.29.21",
  invalidityDate: "2.5.29.24",
  certificateIssuer: "2.5.29.29",
} as const;

/** Extensions a CRL may carry without changing what it means for us (freshestCRL, issuerAltName, AIA...). */
const HARMLESS = new Set(["2.5.29.46", "2.5.29.18", "1.3.6.1.5.5.7.1.1", "2.5.29.60"]);

function integerValue(value: unknown): bigint | undefined {
  if (!(value instanceof asn1js.Integer)) return undefined;
  const text = hex(value.valueBlock.valueHexView);
  return text === "" ? 0n : BigInt(`0x${text}`);
}

function readExtensions(crl: pkijs.CertificateRevocationList, fail: (m: string) => never) {
  const out = {
    authorityKeyId: undefined as string | undefined,
    crlNumber: undefined as bigint | undefined,
    unusable: undefined as string | undefined,
    only: undefined as ParsedCrl["only"],
    distributionPoints: undefined as string[] | undefined,
  };
  for (const ext of crl.crlExtensions?.extensions ?? []) {
    const value = ext.parsedValue;
    switch (ext.extnID) {
      case OID.authorityKeyIdentifier:
        if (value instanceof pkijs.AuthorityKeyIdentifier && value.keyIdentifier) {
          out.authorityKeyId = hex(value.keyIdentifier.valueBlock.valueHexView);
        }
        break;
      case OID.crlNumber:
        out.crlNumber = integerValue(value);
        if (ext.critical) out.unusable = "its cRLNumber is marked critical (RFC 5280: it MUST NOT be)";
        break;
      case OID.deltaCrlIndicator:
        fail("delta CRLs are not supported (deltaCRLIndicator present)");
        break;
      case OID.issuingDistributionPoint: {
        if (!(value instanceof pkijs.IssuingDistributionPoint)) fail("unreadable issuingDistributionPoint");
        // Partitioned by reason, indirect or attribute-certificate CRLs would make "not listed" mean less
        // than "not revoked": refuse them rather than answer good on partial data.
        if (value.indirectCRL) fail("indirect CRLs are not supported");
        if (value.onlySomeReasons !== undefined) fail("CRLs partitioned by reason are not supported");
        if (value.onlyContainsAttributeCerts) fail("attribute-certificate CRLs are not supported");
        if (value.onlyContainsUserCerts) out.only = "users";
        if (value.onlyContainsCACerts) out.only = "cas";
        if (Array.isArray(value.distributionPoint)) {
          out.distributionPoints = value.distributionPoint
            .filter((n) => n.type === 6 && typeof n.value === "string")
            .map((n) => String(n.value));
        }
        break;
      }
      default:
        if (ext.critical && !HARMLESS.has(ext.extnID)) fail(`unknown critical extension ${ext.extnID}`);
    }
  }
  if (out.crlNumber === undefined) out.unusable ??= "it has no cRLNumber (RFC 5280: required in every CRL)";
  return out;
}

function readEntries(crl: pkijs.CertificateRevocationList, fail: (m: string) => never) {
  const revoked = new Map<string, RevokedEntry>();
  for (const entry of crl.revokedCertificates ?? []) {
    let reason: string | undefined;
    for (const ext of entry.crlEntryExtensions?.extensions ?? []) {
      if (ext.extnID === OID.reasonCode && ext.parsedValue instanceof asn1js.Enumerated) {
        reason = crlReasonName(ext.parsedValue.valueBlock.valueDec);
      } else if (ext.extnID === OID.certificateIssuer) {
        fail("CRL entries with a certificateIssuer (indirect CRLs) are not supported");
      } else if (ext.critical && ext.extnID !== OID.invalidityDate) {
        fail(`unknown critical entry extension ${ext.extnID}`);
      }
    }
    const serial = canonicalSerial(hex(entry.userCertificate.valueBlock.valueHexView));
    revoked.set(serial, { revokedAt: entry.revocationDate.value, ...(reason ? { reason } : {}) });
  }
  return revoked;
}

/** One DER-encoded CRL; throws CrlParseError naming `source` on anything malformed or unsupported. */
export function parseCrlDer(der: Uint8Array, source: string): ParsedCrl {
  const fail = (message: string): never => {
    throw new CrlParseError(`${source}: ${message}`);
  };
  const asn = asn1js.fromBER(der);
  if (asn.offset === -1 || asn.offset !== der.byteLength) fail("not a DER-encoded CRL");
  let crl: pkijs.CertificateRevocationList;
  try {
    crl = new pkijs.CertificateRevocationList({ schema: asn.result });
  } catch (err) {
    return fail(`not a CRL: ${(err as Error).message}`);
  }
  const algorithm = crl.signatureAlgorithm.algorithmId;
  if (crl.signature.algorithmId !== algorithm) fail("inner and outer signature algorithms differ");
  const unsupported = unsupportedAlgorithm(algorithm);
  if (unsupported !== undefined) fail(unsupported);
  const issuerBuffer = crl.issuer.valueBeforeDecode;
  const issuerDer = Buffer.from(issuerBuffer);
  const thisUpdate = crl.thisUpdate.value;
  const nextUpdate = crl.nextUpdate?.value;
  if (nextUpdate !== undefined && nextUpdate.getTime() < thisUpdate.getTime()) {
    fail("nextUpdate is earlier than thisUpdate");
  }
  const extensions = readExtensions(crl, fail);
  return {
    source,
    sha256: createHash("sha256").update(der).digest("hex"),
    issuerDer,
    issuer: new x509.Name(issuerBuffer).toString(),
    ...extensions,
    thisUpdate,
    nextUpdate,
    revoked: readEntries(crl, fail),
    signatureAlgorithm: algorithm,
    tbs: crl.tbsView,
    signature: crl.signatureValue.valueBlock.valueHexView,
  };
}

/** Every CRL of a file or HTTP body: PEM with any number of "X509 CRL" blocks, or one DER CRL. */
export function parseCrls(data: Uint8Array, source: string): ParsedCrl[] {
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("latin1");
  if (!text.includes("-----BEGIN ")) return [parseCrlDer(data, source)];
  let blocks: ReturnType<typeof readPemBlocks>;
  try {
    blocks = readPemBlocks(text);
  } catch (err) {
    throw new CrlParseError(`${source}: ${(err as Error).message}`);
  }
  const crls = blocks.map((block, i) => {
    const where = `${source} (CRL #${i + 1})`;
    if (block.label !== "X509 CRL")
      throw new CrlParseError(`${where}: a "${block.label}" block, not an X509 CRL`);
    return parseCrlDer(block.der, where);
  });
  if (crls.length === 0) throw new CrlParseError(`${source}: no CRL found`);
  return crls;
}

/** Why `issuer` did not sign `crl`, or undefined when it did: name, cRLSign, AKI and signature. */
export function crlSignatureProblem(crl: ParsedCrl, issuer: Certificate): string | undefined {
  const who = `CA ${certificateLabel(issuer)}`;
  if (!crl.issuerDer.equals(issuer.subjectDer)) return `its issuer "${crl.issuer}" is not ${who}`;
  if (issuer.keyUsage !== undefined && !issuer.keyUsage.has("cRLSign")) {
    return `${who} has keyUsage without cRLSign`;
  }
  if (crl.authorityKeyId !== undefined && crl.authorityKeyId !== revocationInfo(issuer).keyId) {
    return `its authorityKeyIdentifier does not name the key of ${who}`;
  }
  if (!verifySignature(crl.signatureAlgorithm, crl.tbs, crl.signature, issuer.node.publicKey)) {
    return `its signature does not verify with the key of ${who}`;
  }
  return undefined;
}
