// A strict, allocation-light DER reader: locates fields inside certificates that OpenSSL (node:crypto) has
// already accepted as X.509, so that the engine reads them in microseconds instead of re-parsing the whole
// certificate through a schema library. Every read is bounds-checked and throws DerError, never reads past
// its element.

export class DerError extends Error {
  override name = "DerError";
}

/** One element: `tag` byte, contents in `buf[start, end)`, whole encoding from `headerStart`. */
export interface Tlv {
  readonly tag: number;
  readonly headerStart: number;
  readonly start: number;
  readonly end: number;
}

export const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  null: 0x05,
  oid: 0x06,
  utf8String: 0x0c,
  numericString: 0x12,
  printableString: 0x13,
  teletexString: 0x14,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  visibleString: 0x1a,
  universalString: 0x1c,
  bmpString: 0x1e,
  sequence: 0x30,
  set: 0x31,
} as const;

/** Context-specific tag number `n`, primitive or constructed. */
export const ctx = (n: number, constructed: boolean): number => (constructed ? 0xa0 : 0x80) | n;

/** The element at `pos`, which must end by `limit`. Only single-byte tags and definite, minimal lengths. */
export function readTlv(buf: Uint8Array, pos: number, limit: number = buf.length): Tlv {
  if (pos + 2 > limit) throw new DerError("truncated element header");
  const tag = buf[pos] ?? 0;
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-byte tags are not used in X.509");
  let len = buf[pos + 1] ?? 0;
  let start = pos + 2;
  if (len & 0x80) {
    const bytes = len & 0x7f;
    if (bytes === 0) throw new DerError("indefinite length is not DER");
    if (bytes > 4) throw new DerError("element too long");
    if (start + bytes > limit) throw new DerError("truncated length");
    len = 0;
    for (let i = 0; i < bytes; i++) len = len * 256 + (buf[start + i] ?? 0);
    if (len < 0x80 || (bytes > 1 && (buf[start] ?? 0) === 0)) throw new DerError("non-minimal length");
    start += bytes;
  }
  const end = start + len;
  if (end > limit) throw new DerError("truncated element");
  return { tag, headerStart: pos, start, end };
}

/** The elements inside a constructed element, in order. */
export function children(buf: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let pos = parent.start;
  while (pos < parent.end) {
    const tlv = readTlv(buf, pos, parent.end);
    out.push(tlv);
    pos = tlv.end;
  }
  return out;
}

export const contents = (buf: Uint8Array, tlv: Tlv): Uint8Array => buf.subarray(tlv.start, tlv.end);
export const encoding = (buf: Uint8Array, tlv: Tlv): Uint8Array => buf.subarray(tlv.headerStart, tlv.end);

export function decodeOid(buf: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== TAG.oid || tlv.end === tlv.start) throw new DerError("bad OBJECT IDENTIFIER");
  const parts: number[] = [];
  let value = 0;
  for (let i = tlv.start; i < tlv.end; i++) {
    const byte = buf[i] ?? 0;
    if (value === 0 && byte === 0x80) throw new DerError("non-minimal OID component");
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new DerError("OID component too large");
    if ((byte & 0x80) === 0) {
      if (parts.length === 0)
        parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else parts.push(value);
      value = 0;
    } else if (i === tlv.end - 1) throw new DerError("truncated OID");
  }
  return parts.join(".");
}

/** A small non-negative INTEGER (versions, pathLen, BaseDistance); the caller has checked the tag. */
export function decodeSmallInt(buf: Uint8Array, tlv: Tlv): number {
  const len = tlv.end - tlv.start;
  if (len === 0 || len > 6) throw new DerError("INTEGER out of range");
  const first = buf[tlv.start] ?? 0;
  if (first & 0x80) throw new DerError("negative INTEGER");
  let value = 0;
  for (let i = tlv.start; i < tlv.end; i++) value = value * 256 + (buf[i] ?? 0);
  return value;
}

export function decodeBoolean(buf: Uint8Array, tlv: Tlv): boolean {
  if (tlv.tag !== TAG.boolean || tlv.end - tlv.start !== 1) throw new DerError("bad BOOLEAN");
  const v = buf[tlv.start];
  if (v !== 0 && v !== 0xff) throw new DerError("BOOLEAN is not DER");
  return v === 0xff;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });
const UTF16BE = new TextDecoder("utf-16be", { fatal: true });

function ascii(bytes: Uint8Array, what: string): string {
  for (const b of bytes) if (b > 0x7f) throw new DerError(`${what} holds a non-ASCII byte`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** An IA5String-typed field whose tag was replaced (implicit tagging): ASCII only. */
export const decodeIa5 = (buf: Uint8Array, tlv: Tlv, what: string): string => ascii(contents(buf, tlv), what);

/** The text of a string-typed element, or undefined for a type that is not a character string. */
export function decodeString(buf: Uint8Array, tlv: Tlv): string | undefined {
  const bytes = contents(buf, tlv);
  try {
    switch (tlv.tag) {
      case TAG.utf8String:
        return UTF8.decode(bytes);
      case TAG.printableString:
      case TAG.ia5String:
      case TAG.visibleString:
      case TAG.numericString:
        return ascii(bytes, "string");
      case TAG.teletexString:
        // T.61 in theory, Latin-1 in practice (as OpenSSL and most libraries read it).
        return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
      case TAG.bmpString:
        return UTF16BE.decode(bytes);
      case TAG.universalString: {
        if (bytes.length % 4 !== 0) throw new DerError("bad UniversalString");
        let out = "";
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (let i = 0; i < bytes.length; i += 4) out += String.fromCodePoint(view.getUint32(i));
        return out;
      }
      default:
        return undefined;
    }
  } catch (err) {
    if (err instanceof DerError) throw err;
    throw new DerError(`undecodable string: ${(err as Error).message}`);
  }
}
