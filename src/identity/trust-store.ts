// Compiles a named trust store from PEM text, failing closed: any doubtful input stops start-up or a reload.
import { type Certificate, CertificateParseError, parseCertificate, toPem } from "./certificate.ts";
import { certificateLabel } from "./describe.ts";
import { REVOCATION_OFF, type RevocationSettings } from "./revocation/types.ts";
import type { Purpose, TrustStore } from "./types.ts";

export class TrustStoreError extends Error {
  override name = "TrustStoreError";
}

export interface TrustStoreOptions {
  /** Most certificates in a path, leaf and anchor included. Default 8. */
  readonly maxDepth?: number;
  /** Required extendedKeyUsage of leaves. Default "client". */
  readonly purpose?: Purpose;
  /** Default 0. */
  readonly notBeforeGraceMs?: number;
  /** Default 2048. */
  readonly minRsaBits?: number;
  /** Default: off. */
  readonly revocation?: RevocationSettings;
  /** Default "off". */
  readonly autoRegister?: "off" | "pending" | "active";
}

export const DEFAULT_MAX_DEPTH = 8;
const PURPOSES: readonly Purpose[] = ["client", "server", "any"];

// Any labelled PEM block; the label is checked below so that, e.g., a "TRUSTED CERTIFICATE" block is an
// error instead of a silently missing CA.
const PEM_BLOCK = /-----BEGIN ([^-\r\n]*)-----([\s\S]*?)-----END ([^-\r\n]*)-----/g;
const BASE64 = /^[A-Za-z0-9+/=\s]*$/;

function readBlocks(fail: (message: string) => never, pemText: string): Certificate[] {
  const certs: Certificate[] = [];
  let blocks = 0;
  for (const match of pemText.matchAll(PEM_BLOCK)) {
    blocks++;
    const [, label = "", body = "", endLabel = ""] = match;
    const where = `PEM block #${blocks}`;
    if (label !== endLabel) fail(`${where} opens as "${label}" but closes as "${endLabel}"`);
    if (label !== "CERTIFICATE") fail(`${where} is a "${label}", not a CERTIFICATE`);
    if (!BASE64.test(body)) fail(`${where} is not valid base64`);
    try {
      certs.push(parseCertificate(Buffer.from(body.replace(/\s+/g, ""), "base64")));
    } catch (err) {
      if (err instanceof CertificateParseError) fail(`${where} does not parse: ${err.message}`);
      throw err;
    }
  }
  // A BEGIN without its END would otherwise be skipped: a truncated file must not shrink the store.
  const begins = pemText.match(/-----BEGIN /g)?.length ?? 0;
  if (begins !== blocks) fail(`${begins - blocks} PEM block(s) are not terminated by an END line`);
  return certs;
}

export function compileTrustStore(
  name: string,
  pemText: string,
  options: TrustStoreOptions = {},
): TrustStore {
  const fail = (message: string): never => {
    throw new TrustStoreError(`trust store "${name}": ${message}`);
  };
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const purpose = options.purpose ?? "client";
  if (!Number.isInteger(maxDepth) || maxDepth < 2) {
    fail(`maxDepth must be an integer of at least 2 (leaf and anchor), got ${maxDepth}`);
  }
  if (!PURPOSES.includes(purpose)) fail(`purpose must be one of ${PURPOSES.join(", ")}, got "${purpose}"`);

  const certs = readBlocks(fail, pemText);
  if (certs.length === 0) fail("no certificate found in the PEM text");

  const unique = new Map<string, Certificate>();
  for (const cert of certs) {
    if (!cert.isCA)
      fail(`certificate ${certificateLabel(cert)} is not a CA (basicConstraints CA:TRUE absent)`);
    // A CA whose key may not sign certificates can never be an issuer: the file is wrong, say so now.
    if (cert.keyUsage && !cert.keyUsage.has("keyCertSign")) {
      fail(`CA certificate ${certificateLabel(cert)} has keyUsage without keyCertSign`);
    }
    unique.set(cert.fingerprint, cert);
  }

  const all = [...unique.values()];
  let anchors = all.filter((c) => c.selfIssued);
  let intermediates = all.filter((c) => !c.selfIssued);
  // Partial-chain trust: a store that holds no self-issued CA (e.g. only a device-issuing intermediate,
  // to trust that CA and not its siblings under the same root) anchors at the CAs it does hold, as
  // OpenSSL's X509_V_FLAG_PARTIAL_CHAIN does. Paths then end at those certificates; what is above them
  // is never consulted.
  if (anchors.length === 0) {
    anchors = intermediates;
    intermediates = [];
  }
  return Object.freeze({
    name,
    anchors: Object.freeze(anchors),
    intermediates: Object.freeze(intermediates),
    maxDepth,
    purpose,
    pem: all.map(toPem).join(""),
    notBeforeGraceMs: options.notBeforeGraceMs ?? 0,
    minRsaBits: options.minRsaBits ?? 2048,
    revocation: options.revocation ?? REVOCATION_OFF,
    autoRegister: options.autoRegister ?? "off",
  });
}
