// Strict reading of PEM certificate files (trust stores, `portcullis verify` inputs): every block must be
// a terminated, base64 CERTIFICATE block that parses, so that a damaged file is an error rather than a
// silently shorter list of certificates.
import { type Certificate, CertificateParseError, parseCertificate } from "./certificate.ts";

export class PemError extends Error {
  override name = "PemError";
  /**
   * True when a CERTIFICATE block is damaged (bad base64, does not parse, not terminated): a problem of a
   * certificate, which `portcullis verify` reports as a `bad_certificate` verdict. False for a file that
   * holds some other kind of PEM block.
   */
  readonly certificateProblem: boolean;

  constructor(message: string, certificateProblem: boolean) {
    super(message);
    this.certificateProblem = certificateProblem;
  }
}

// Any labelled PEM block; the label is checked below so that, e.g., a "TRUSTED CERTIFICATE" block is an
// error instead of a silently missing CA.
const PEM_BLOCK = /-----BEGIN ([^-\r\n]*)-----([\s\S]*?)-----END ([^-\r\n]*)-----/g;
const BASE64 = /^[A-Za-z0-9+/=\s]*$/;

/** Every certificate of `pemText`, in order; throws PemError naming the first bad block. */
export function readPemCertificates(pemText: string): Certificate[] {
  const certs: Certificate[] = [];
  let blocks = 0;
  for (const match of pemText.matchAll(PEM_BLOCK)) {
    blocks++;
    const [, label = "", body = "", endLabel = ""] = match;
    const where = `PEM block #${blocks}`;
    if (label !== endLabel)
      throw new PemError(`${where} opens as "${label}" but closes as "${endLabel}"`, true);
    if (label !== "CERTIFICATE") throw new PemError(`${where} is a "${label}", not a CERTIFICATE`, false);
    if (!BASE64.test(body)) throw new PemError(`${where} is not valid base64`, true);
    try {
      certs.push(parseCertificate(Buffer.from(body.replace(/\s+/g, ""), "base64")));
    } catch (err) {
      if (err instanceof CertificateParseError)
        throw new PemError(`${where} does not parse: ${err.message}`, true);
      throw err;
    }
  }
  // A BEGIN without its END would otherwise be skipped: a truncated file must not shrink the list.
  const begins = pemText.match(/-----BEGIN /g)?.length ?? 0;
  if (begins !== blocks)
    throw new PemError(`${begins - blocks} PEM block(s) are not terminated by an END line`, true);
  return certs;
}
