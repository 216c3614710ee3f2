// Small byte-level helpers shared by the CRL and OCSP code: serial numbers, PEM blocks, hashes of names and keys.
import { createHash } from "node:crypto";
import type { Certificate } from "../certificate.ts";

/**
 * The canonical form of a serial number: lower-case hex without leading zeros. node:crypto prints serials
 * byte-wise ("05"), DER INTEGERs carry a sign byte ("0080ab"): both must meet on one key.
 */
export function canonicalSerial(hex: string): string {
  const stripped = hex.toLowerCase().replace(/^0+/, "");
  return stripped === "" ? "0" : stripped;
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

export function sha1(bytes: Uint8Array): Buffer {
  return createHash("sha1").update(bytes).digest();
}

/**
 * The subject key identifier a CA would put in its AKI: its SKI extension, else SHA-1 of its key (RFC 5280
 * method 1). Read from the certificate's own bytes: a key that does not decode still has an identifier.
 */
export function keyIdentifierOf(cert: Certificate): string {
  return cert.subjectKeyId ?? sha1(cert.subjectPublicKeyBits).toString("hex");
}

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

const PEM_BLOCK = /-----BEGIN ([^-\r\n]*)-----([\s\S]*?)-----END ([^-\r\n]*)-----/g;
const BASE64 = /^[A-Za-z0-9+/=\s]*$/;

/**
 * Every PEM block of a text, failing on anything doubtful (mismatched labels, bad base64, a BEGIN without
 * END): a truncated file must fail, not quietly hold fewer CRLs.
 */
export function readPemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const match of text.matchAll(PEM_BLOCK)) {
    const [, label = "", body = "", endLabel = ""] = match;
    const where = `PEM block #${blocks.length + 1}`;
    if (label !== endLabel) throw new Error(`${where} opens as "${label}" but closes as "${endLabel}"`);
    if (!BASE64.test(body)) throw new Error(`${where} is not valid base64`);
    blocks.push({ label, der: Buffer.from(body.replace(/\s+/g, ""), "base64") });
  }
  const begins = text.match(/-----BEGIN /g)?.length ?? 0;
  if (begins !== blocks.length) {
    throw new Error(`${begins - blocks.length} PEM block(s) are not terminated by an END line`);
  }
  return blocks;
}
