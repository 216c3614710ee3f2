// Distinguished names: decoded from DER into RDNs, printed as RFC 4514 strings (the `subject` every policy,
// log and XFCC header reads), and compared as RFC 5280 §7.1 says for directoryName name constraints.
import { children, DerError, decodeOid, decodeString, encoding, readTlv, TAG } from "./der.ts";

export interface Attribute {
  readonly oid: string;
  /** The text of a character-string value; undefined for any other ASN.1 type. */
  readonly value: string | undefined;
  /** DER of the value, for the `#hex` form and binary comparison. */
  readonly raw: Uint8Array;
}

/** One RelativeDistinguishedName: usually a single attribute. */
export type Rdn = readonly Attribute[];

export const OID_COMMON_NAME = "2.5.4.3";
export const OID_EMAIL_ADDRESS = "1.2.840.113549.1.9.1";

// The short names @peculiar/x509 prints (kept so that subject strings stay what they always were), with
// emailAddress spelled out as OpenSSL does; any other type is printed as its dotted OID (RFC 4514 §2.3).
const SHORT_NAMES: Readonly<Record<string, string>> = {
  "2.5.4.3": "CN",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.6": "C",
  "0.9.2342.19200300.100.1.25": "DC",
  [OID_EMAIL_ADDRESS]: "emailAddress",
  "2.5.4.42": "G",
  "2.5.4.43": "I",
  "2.5.4.4": "SN",
  "2.5.4.12": "T",
};

/** The RDNs of a DER-encoded Name (the whole SEQUENCE), in encoding order (most general first). */
export function parseName(der: Uint8Array): Rdn[] {
  const name = readTlv(der, 0);
  if (name.tag !== TAG.sequence || name.end !== der.length) throw new DerError("Name is not one SEQUENCE");
  return children(der, name).map((set) => {
    if (set.tag !== TAG.set) throw new DerError("RDN is not a SET");
    const attrs = children(der, set).map((atv) => {
      const [type, value, extra] = atv.tag === TAG.sequence ? children(der, atv) : [];
      if (!type || !value || extra) throw new DerError("bad AttributeTypeAndValue");
      return { oid: decodeOid(der, type), value: decodeString(der, value), raw: encoding(der, value) };
    });
    if (attrs.length === 0) throw new DerError("empty RDN");
    return attrs;
  });
}

/** RFC 4514 §2.4 escaping of one attribute value. */
function escapeDnValue(value: string): string {
  let out = value.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
  if (out.startsWith("#") || out.startsWith(" ")) out = `\\${out}`;
  if (out.endsWith(" ") && out.length > 1) out = `${out.slice(0, -1)}\\ `;
  return out;
}

function formatAttribute(attr: Attribute): string {
  const type = SHORT_NAMES[attr.oid] ?? attr.oid;
  const value =
    attr.value === undefined ? `#${Buffer.from(attr.raw).toString("hex")}` : escapeDnValue(attr.value);
  return `${type}=${value}`;
}

/**
 * RFC 4514 string: RDNs in reverse order of the encoding (most specific first), comma-separated; the
 * attributes of a multi-valued RDN joined by "+", grouped by type in order of first appearance.
 */
export function formatName(rdns: readonly Rdn[]): string {
  const out: string[] = [];
  for (let i = rdns.length - 1; i >= 0; i--) {
    const rdn = rdns[i] ?? [];
    const sorted = rdn.length === 1 ? rdn : groupByType(rdn);
    out.push(sorted.map(formatAttribute).join("+"));
  }
  return out.join(",");
}

function groupByType(rdn: Rdn): Attribute[] {
  const groups = new Map<string, Attribute[]>();
  for (const attr of rdn) {
    const list = groups.get(attr.oid);
    if (list) list.push(attr);
    else groups.set(attr.oid, [attr]);
  }
  return [...groups.values()].flat();
}

/** The first value of an attribute type, in encoding order. */
export function firstValue(rdns: readonly Rdn[], oid: string): string | undefined {
  for (const rdn of rdns) for (const attr of rdn) if (attr.oid === oid) return attr.value;
  return undefined;
}

/** Every value of an attribute type, in encoding order. */
export function valuesOf(rdns: readonly Rdn[], oid: string): string[] {
  const out: string[] = [];
  for (const rdn of rdns)
    for (const attr of rdn) if (attr.oid === oid && attr.value !== undefined) out.push(attr.value);
  return out;
}

/**
 * RFC 5280 §7.1 (after RFC 4518, simplified): string values compare case-insensitively with leading and
 * trailing spaces dropped and inner runs of spaces collapsed; other values compare byte for byte.
 */
function sameAttribute(a: Attribute, b: Attribute): boolean {
  if (a.oid !== b.oid) return false;
  if (a.value !== undefined && b.value !== undefined) return prepare(a.value) === prepare(b.value);
  return Buffer.from(a.raw).equals(b.raw);
}

const prepare = (value: string): string => value.trim().replace(/ +/g, " ").normalize("NFKC").toLowerCase();

/** Two RDNs hold the same set of attributes. */
export function sameRdn(a: Rdn, b: Rdn): boolean {
  return a.length === b.length && a.every((x) => b.some((y) => sameAttribute(x, y)));
}
