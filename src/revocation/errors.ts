// Errors of the revocation service: a configuration that must stop start-up, and one source that failed.

/** A revocation input (a CRL file) is broken at start: the gateway refuses to start (fail closed). */
export class RevocationConfigError extends Error {
  override name = "RevocationConfigError";
}

/** One CRL file, URL or OCSP lookup failed; the message names the source and the cause. */
export class RevocationSourceError extends Error {
  override name = "RevocationSourceError";
}
