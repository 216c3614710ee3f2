// Compiles a named trust store from PEM text, failing closed: any doubtful input stops start-up or a reload.
import { type Certificate, toPem } from "./certificate.ts";
import { certificateLabel } from "./describe.ts";
import { PemError, readPemCertificates } from "./pem.ts";
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
export const MAX_NOT_BEFORE_GRACE_MS = 3_600_000;
const PURPOSES: readonly Purpose[] = ["client", "server", "any"];

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
  const notBeforeGraceMs = options.notBeforeGraceMs ?? 0;
  // Bounded: a clock-skew allowance, not a way to accept certificates issued for the future.
  if (!(notBeforeGraceMs >= 0 && notBeforeGraceMs <= MAX_NOT_BEFORE_GRACE_MS)) {
    fail(
      `notBeforeGraceMs must be between 0 and ${MAX_NOT_BEFORE_GRACE_MS} (1 hour), got ${notBeforeGraceMs}`,
    );
  }
  const minRsaBits = options.minRsaBits ?? 2048;
  if (!Number.isInteger(minRsaBits) || minRsaBits < 1024) {
    fail(`minRsaBits must be an integer of at least 1024, got ${minRsaBits}`);
  }

  let certs: Certificate[] = [];
  try {
    certs = readPemCertificates(pemText);
  } catch (err) {
    if (err instanceof PemError) fail(err.message);
    throw err;
  }
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
    notBeforeGraceMs,
    minRsaBits,
    revocation: options.revocation ?? REVOCATION_OFF,
    autoRegister: options.autoRegister ?? "off",
  });
}
