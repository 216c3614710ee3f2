// How certificates are named in human-readable deny details and errors: by subject, or fingerprint when empty.
import type { Certificate } from "./certificate.ts";

/** Longest subject quoted whole; a longer one (a client can send kilobytes of DN) is cut and tagged. */
export const MAX_LABEL_SUBJECT = 96;

/**
 * `"CN=device-001"` (quoted); `"sha256:ab12…"` for an empty subject; a subject longer than
 * MAX_LABEL_SUBJECT is cut and followed by the fingerprint prefix, so the label still names one certificate.
 */
export function labelOf(subject: string, fingerprintHex: string): string {
  const short = fingerprintHex.slice(0, 16);
  if (subject === "") return `"sha256:${short}…"`;
  if (subject.length <= MAX_LABEL_SUBJECT) return `"${subject}"`;
  return `"${subject.slice(0, MAX_LABEL_SUBJECT - 16)}…" (sha256:${short}…)`;
}

export function certificateLabel(cert: Certificate): string {
  return labelOf(cert.subject, cert.fingerprint);
}
