// GeneralName (RFC 5280 §4.2.1.6): decoded from subjectAltName entries and nameConstraints subtrees, with
// the IP address kept as bytes (address, or address + mask in a constraint) and the directoryName as RDNs.
import { children, ctx, DerError, decodeIa5, encoding, readTlv, TAG, type Tlv } from "./der.ts";
import { formatName, parseName, type Rdn } from "./dn.ts";

export type GeneralName =
  | { readonly kind: "dns" | "email" | "uri"; readonly value: string }
  | { readonly kind: "ip"; readonly value: string; readonly bytes: Uint8Array }
  | { readonly kind: "dn"; readonly value: string; readonly rdns: readonly Rdn[] }
  /** otherName, x400Address, ediPartyName, registeredID: carried, never interpreted. */
  | { readonly kind: "other"; readonly value: string; readonly tag: number };

/** Dotted IPv4, or IPv6 with the longest run of zero groups compressed; `/prefix` for address + mask. */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 8 || bytes.length === 32) {
    const half = bytes.length / 2;
    let prefix = 0;
    for (const b of bytes.subarray(half)) prefix += popcount(b);
    return `${formatIp(bytes.subarray(0, half))}/${prefix}`;
  }
  if (bytes.length === 4) return Array.from(bytes).join(".");
  if (bytes.length !== 16) return Buffer.from(bytes).toString("hex");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLength = 1; // a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

function popcount(byte: number): number {
  let n = 0;
  for (let b = byte; b; b &= b - 1) n++;
  return n;
}

/** One GeneralName element. `constraint`: an iPAddress holds address + mask (8 or 32 bytes). */
export function decodeGeneralName(buf: Uint8Array, tlv: Tlv, constraint: boolean): GeneralName {
  switch (tlv.tag) {
    case ctx(1, false):
      return { kind: "email", value: decodeIa5(buf, tlv, "rfc822Name") };
    case ctx(2, false):
      return { kind: "dns", value: decodeIa5(buf, tlv, "dNSName") };
    case ctx(6, false):
      return { kind: "uri", value: decodeIa5(buf, tlv, "uniformResourceIdentifier") };
    case ctx(7, false): {
      const bytes = buf.slice(tlv.start, tlv.end);
      const sizes = constraint ? [8, 32] : [4, 16];
      if (!sizes.includes(bytes.length)) throw new DerError(`iPAddress of ${bytes.length} bytes`);
      return { kind: "ip", value: formatIp(bytes), bytes };
    }
    case ctx(4, true): {
      // Name is a CHOICE, so its tag is explicit: the [4] wraps the Name SEQUENCE.
      const inner = readTlv(buf, tlv.start, tlv.end);
      if (inner.end !== tlv.end || inner.tag !== TAG.sequence) throw new DerError("bad directoryName");
      const rdns = parseName(encoding(buf, inner));
      return { kind: "dn", value: formatName(rdns), rdns };
    }
    default: {
      const n = tlv.tag & 0x1f;
      if ((tlv.tag & 0xc0) !== 0x80 || ![0, 3, 5, 8].includes(n)) {
        throw new DerError(`unknown GeneralName tag 0x${tlv.tag.toString(16)}`);
      }
      return { kind: "other", value: `[${n}]`, tag: n };
    }
  }
}

/** GeneralNames ::= SEQUENCE SIZE (1..MAX) OF GeneralName (the subjectAltName extension value). */
export function decodeGeneralNames(der: Uint8Array): GeneralName[] {
  const seq = readTlv(der, 0);
  if (seq.tag !== TAG.sequence || seq.end !== der.length)
    throw new DerError("GeneralNames is not one SEQUENCE");
  const names = children(der, seq).map((tlv) => decodeGeneralName(der, tlv, false));
  if (names.length === 0) throw new DerError("empty GeneralNames");
  return names;
}
