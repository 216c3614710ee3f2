// Test helper: a tiny DER encoder, to mint what certificate libraries refuse to produce (v1 CAs, SHA-1 and
// MD5 signatures, odd curves, nameConstraints of every type, broken encodings).

export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  let header: number[];
  if (n < 0x80) header = [tag, n];
  else if (n < 0x100) header = [tag, 0x81, n];
  else if (n < 0x10000) header = [tag, 0x82, n >> 8, n & 0xff];
  else header = [tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from(header), body]);
}

export const seq = (...parts: Uint8Array[]): Buffer => tlv(0x30, ...parts);
export const set = (...parts: Uint8Array[]): Buffer => tlv(0x31, ...parts);
export const nul = (): Buffer => Buffer.from([0x05, 0x00]);
export const octets = (bytes: Uint8Array): Buffer => tlv(0x04, bytes);
/** BIT STRING with no unused bits. */
export const bits = (bytes: Uint8Array): Buffer => tlv(0x03, Buffer.from([0]), bytes);
export const utf8 = (text: string): Buffer => tlv(0x0c, Buffer.from(text, "utf8"));
/** Context-specific [n], constructed (explicit tagging or SEQUENCE-like contents) or primitive. */
export const tagged = (n: number, constructed: boolean, ...parts: Uint8Array[]): Buffer =>
  tlv((constructed ? 0xa0 : 0x80) | n, ...parts);

export function int(value: number | Uint8Array): Buffer {
  let bytes: number[];
  if (typeof value === "number") {
    bytes = [];
    let v = value;
    do {
      bytes.unshift(v & 0xff);
      v = Math.floor(v / 256);
    } while (v > 0);
  } else bytes = [...value];
  if ((bytes[0] ?? 0) & 0x80) bytes.unshift(0);
  return tlv(0x02, Buffer.from(bytes));
}

export function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split(".").map(Number);
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const chunk = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 §4.1.2.5). */
export function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/[-:T]/g, "").slice(0, 14);
  return date.getUTCFullYear() < 2050
    ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`, "latin1"))
    : tlv(0x18, Buffer.from(`${iso}Z`, "latin1"));
}

/** IPv4 or IPv6 text to bytes ("::" compression allowed). */
export function ipBytes(text: string): Buffer {
  if (text.includes(".") && !text.includes(":")) return Buffer.from(text.split(".").map(Number));
  const [head = "", tail] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  return Buffer.from(groups.flatMap((g) => [parseInt(g, 16) >> 8, parseInt(g, 16) & 0xff]));
}

/** "10.0.0.0/8" or "2001:db8::/32" as address + mask bytes (a nameConstraints iPAddress). */
export function cidrBytes(cidr: string): Buffer {
  const [address = "", prefix = "0"] = cidr.split("/");
  const addr = ipBytes(address);
  const mask = Buffer.alloc(addr.length);
  for (let bit = 0; bit < Number(prefix); bit++) mask[bit >> 3] = (mask[bit >> 3] ?? 0) | (0x80 >> (bit & 7));
  return Buffer.concat([addr, mask]);
}
