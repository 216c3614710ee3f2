// How certificates are named in human-readable deny details and errors: by subject, or fingerprint when empty.
import type { Certificate } from "./certificate.ts";

/** `"CN=device-001"` (quoted), or `"sha256:ab12…"` for a certificate with an empty subject. */
export function certificateLabel(cert: Certificate): string {
  return cert.subject === "" ? `"sha256:${cert.fingerprint.slice(0, 16)}…"` : `"${cert.subject}"`;
}
