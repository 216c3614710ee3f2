// Compiles a named trust store from PEM text, failing closed: any doubtful input stops start-up or a reload.
import {
  DEFAULT_CURVES,
  DEFAULT_MAX_RSA_BITS,
  DEFAULT_RSA_EXPONENTS,
  KNOWN_CURVES,
} from "./algorithm-policy.ts";
import { type Certificate, toPem } from "./certificate.ts";
import { certificateLabel } from "./describe.ts";
import { PemError, readPemCertificates } from "./pem.ts";
import { checkProfile, PROFILES, type Profile } from "./profile.ts";
import type { ReasonCode } from "./reasons.ts";
import { REVOCATION_OFF, type RevocationSettings } from "./revocation/types.ts";
import type { Purpose, TrustStore } from "./types.ts";

export class TrustStoreError extends Error {
  override name = "TrustStoreError";
  /**
   * Set when a certificate of the store is at fault (it does not parse, is not a CA, breaks the profile):
   * the verdict `portcullis verify` reports. Unset for a wrong option or a text without any certificate.
   */
  readonly reason: ReasonCode | undefined;

  constructor(message: string, reason?: ReasonCode) {
    super(message);
    this.reason = reason;
  }
}

export interface TrustStoreOptions {
  /** Most certificates in a path, leaf and anchor included. Default 8. */
  readonly maxDepth?: number;
  /** Required extendedKeyUsage of leaves. Default "client". */
  readonly purpose?: Purpose;
  /** Default 0. */
  readonly notBeforeGraceMs?: number;
  /** Default "strict". */
  readonly profile?: Profile;
  /** Default 2048. */
  readonly minRsaBits?: number;
  /** Default 8192. */
  readonly maxRsaBits?: number;
  /** Default [65537]. */
  readonly rsaPublicExponents?: readonly number[];
  /** Default P-256, P-384, P-521. */
  readonly curves?: readonly string[];
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
  const fail = (message: string, reason?: ReasonCode): never => {
    throw new TrustStoreError(`trust store "${name}": ${message}`, reason);
  };
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  const purpose = options.purpose ?? "client";
  if (!Number.isInteger(maxDepth) || maxDepth < 2) {
    fail(`maxDepth must be an integer of at least 2 (leaf and anchor), got ${maxDepth}`);
  }
  if (!PURPOSES.includes(purpose)) fail(`purpose must be one of ${PURPOSES.join(", ")}, got "${purpose}"`);
  const profile = options.profile ?? "strict";
  if (!PROFILES.includes(profile)) fail(`profile must be one of ${PROFILES.join(", ")}, got "${profile}"`);
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
  const maxRsaBits = options.maxRsaBits ?? DEFAULT_MAX_RSA_BITS;
  if (!Number.isInteger(maxRsaBits) || maxRsaBits < minRsaBits || maxRsaBits > 16384) {
    fail(`maxRsaBits must be an integer from minRsaBits (${minRsaBits}) to 16384, got ${maxRsaBits}`);
  }
  const rsaPublicExponents = [...(options.rsaPublicExponents ?? DEFAULT_RSA_EXPONENTS)];
  for (const e of rsaPublicExponents) {
    // Small odd values only: the cost of a verification grows with the exponent's length.
    if (!Number.isInteger(e) || e < 3 || e % 2 === 0 || e > 0xffffffff) {
      fail(`rsaPublicExponents must be odd integers from 3 to 4294967295, got ${e}`);
    }
  }
  if (rsaPublicExponents.length === 0) fail("rsaPublicExponents must not be empty");
  const curves = [...(options.curves ?? DEFAULT_CURVES)];
  for (const curve of curves) {
    if (!(KNOWN_CURVES as readonly string[]).includes(curve)) {
      fail(`curves must be among ${KNOWN_CURVES.join(", ")}, got "${curve}"`);
    }
  }

  let certs: Certificate[] = [];
  try {
    certs = readPemCertificates(pemText);
  } catch (err) {
    if (err instanceof PemError) fail(err.message, err.certificateProblem ? "bad_certificate" : undefined);
    throw err;
  }
  if (certs.length === 0) fail("no certificate found in the PEM text");

  const unique = new Map<string, Certificate>();
  for (const cert of certs) {
    if (!cert.isCA)
      fail(
        `certificate ${certificateLabel(cert)} is not a CA (basicConstraints CA:TRUE absent)`,
        "untrusted_issuer",
      );
    // A CA whose key may not sign certificates can never be an issuer: the file is wrong, say so now.
    if (cert.keyUsage && !cert.keyUsage.has("keyCertSign")) {
      fail(`CA certificate ${certificateLabel(cert)} has keyUsage without keyCertSign`, "untrusted_issuer");
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
  // A store certificate that breaks the profile would fail every path through it: refuse the store now
  // (fail closed, with the certificate named) rather than deny every device later.
  for (const [role, list] of [
    ["anchor", anchors],
    ["intermediate", intermediates],
  ] as const) {
    for (const cert of list) {
      const problem = checkProfile(cert, role, profile);
      if (problem) fail(problem.detail, problem.reason);
    }
  }
  return Object.freeze({
    name,
    anchors: Object.freeze(anchors),
    intermediates: Object.freeze(intermediates),
    maxDepth,
    purpose,
    pem: all.map(toPem).join(""),
    notBeforeGraceMs,
    profile,
    minRsaBits,
    maxRsaBits,
    rsaPublicExponents: Object.freeze(rsaPublicExponents),
    curves: Object.freeze(curves),
    revocation: options.revocation ?? REVOCATION_OFF,
    autoRegister: options.autoRegister ?? "off",
  });
}
