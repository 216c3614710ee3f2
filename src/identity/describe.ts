// How certificates are named in human-readable deny details and errors: by subject, or fingerprint when empty.
import type { Certificate } from "./certificate.ts";

/** Longest subject shown whole; a longer one (a client can send kilobytes of DN) is cut and tagged. */
export const MAX_LABEL_SUBJECT = 96;

/**
 * A subject for human output: as it is, or cut after MAX_LABEL_SUBJECT characters and followed by the
 * fingerprint prefix, so that a shortened subject still names one certificate.
 */
export function shortSubject(subject: string, fingerprintHex: string): string {
  if (subject.length <= MAX_LABEL_SUBJECT) return subject;
  return `${subject.slice(0, MAX_LABEL_SUBJECT - 16)}… (sha256:${fingerprintHex.slice(0, 16)}…)`;
}

/** `"CN=device-001"` (quoted, shortened), or `"sha256:ab12…"` for an empty subject. */
export function labelOf(subject: string, fingerprintHex: string): string {
  if (subject === "") return `"sha256:${fingerprintHex.slice(0, 16)}…"`;
  return `"${shortSubject(subject, fingerprintHex)}"`;
}

export function certificateLabel(cert: Certificate): string {
  return labelOf(cert.subject, cert.fingerprint);
}
