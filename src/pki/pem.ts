// PEM encoding and decoding of DER blocks, shared by keys, certificates and CRLs.

/** One PEM block with 64-character lines and a trailing newline (the layout OpenSSL writes). */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString("base64");
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, "$&\n")}-----END ${label}-----\n`;
}

/** The DER of every block with this label, in order; text outside the blocks is ignored. */
export function pemBlocks(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*?)-----END ${label}-----`, "g");
  return Array.from(text.matchAll(re), (m) => Buffer.from((m[1] ?? "").replace(/\s+/g, ""), "base64"));
}
