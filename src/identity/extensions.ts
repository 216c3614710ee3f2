// Decoders for the extension values the engine enforces: basicConstraints, keyUsage, extendedKeyUsage and
// the key identifiers (subjectAltName is in general-names.ts, nameConstraints in name-constraints.ts). Each
// takes the extnValue contents (the DER inside the OCTET STRING) and throws DerError on anything malformed.
import {
  children,
  contents,
  ctx,
  DerError,
  decodeBoolean,
  decodeOid,
  decodeSmallInt,
  readTlv,
  TAG,
  type Tlv,
} from "./der.ts";

export const OID = {
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectAltName: "2.5.29.17",
  nameConstraints: "2.5.29.30",
  authorityKeyIdentifier: "2.5.29.35",
  subjectKeyIdentifier: "2.5.29.14",
  certificatePolicies: "2.5.29.32",
  policyConstraints: "2.5.29.36",
  inhibitAnyPolicy: "2.5.29.54",
} as const;

function whole(der: Uint8Array, tag: number, what: string): Tlv {
  const tlv = readTlv(der, 0);
  if (tlv.tag !== tag || tlv.end !== der.length) throw new DerError(`malformed ${what}`);
  return tlv;
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL } */
export function decodeBasicConstraints(der: Uint8Array): { ca: boolean; pathLength: number | undefined } {
  const fields = children(der, whole(der, TAG.sequence, "basicConstraints"));
  let ca = false;
  let pathLength: number | undefined;
  let i = 0;
  if (fields[i]?.tag === TAG.boolean) ca = decodeBoolean(der, fields[i++] as Tlv);
  const len = fields[i];
  if (len?.tag === TAG.integer) {
    pathLength = decodeSmallInt(der, len);
    i++;
  }
  if (i !== fields.length) throw new DerError("malformed basicConstraints");
  return { ca, pathLength: ca ? pathLength : undefined };
}

/** KeyUsage bit names, in bit order (RFC 5280 §4.2.1.3). */
export const KEY_USAGE_BITS = [
  "digitalSignature",
  "nonRepudiation",
  "keyEncipherment",
  "dataEncipherment",
  "keyAgreement",
  "keyCertSign",
  "cRLSign",
  "encipherOnly",
  "decipherOnly",
] as const;

/** KeyUsage ::= BIT STRING: the names of the bits set. */
export function decodeKeyUsage(der: Uint8Array): Set<string> {
  const tlv = whole(der, TAG.bitString, "keyUsage");
  const unused = der[tlv.start];
  if (unused === undefined || unused > 7) throw new DerError("malformed keyUsage");
  const out = new Set<string>();
  KEY_USAGE_BITS.forEach((name, bit) => {
    const byte = der[tlv.start + 1 + (bit >> 3)];
    if (tlv.start + 1 + (bit >> 3) < tlv.end && byte !== undefined && byte & (0x80 >> (bit & 7)))
      out.add(name);
  });
  return out;
}

/** ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId */
export function decodeExtKeyUsage(der: Uint8Array): string[] {
  return children(der, whole(der, TAG.sequence, "extendedKeyUsage")).map((oid) => decodeOid(der, oid));
}

/** SubjectKeyIdentifier ::= KeyIdentifier ::= OCTET STRING: lower-case hex. */
export function decodeSubjectKeyId(der: Uint8Array): string {
  return Buffer.from(contents(der, whole(der, TAG.octetString, "subjectKeyIdentifier"))).toString("hex");
}

/**
 * AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL,
 * authorityCertIssuer [1] GeneralNames OPTIONAL, authorityCertSerialNumber [2] INTEGER OPTIONAL }:
 * the keyIdentifier as lower-case hex, undefined when absent (the issuer/serial form is not used to chain).
 */
export function decodeAuthorityKeyId(der: Uint8Array): string | undefined {
  const fields = children(der, whole(der, TAG.sequence, "authorityKeyIdentifier"));
  let keyId: string | undefined;
  let last = -1;
  for (const field of fields) {
    const n = field.tag & 0x1f;
    const expected = [ctx(0, false), ctx(1, true), ctx(2, false)][n];
    // Each field at most once, in order, with its own tag.
    if (n > 2 || n <= last || field.tag !== expected) throw new DerError("malformed authorityKeyIdentifier");
    last = n;
    if (n === 0) keyId = Buffer.from(contents(der, field)).toString("hex");
  }
  return keyId;
}
