// Bounds on what a client may present and on the work one uncached decision may cost, so that no chain a
// client sends (however many same-named issuers, names or constraints it holds) can stall the event loop.
// A limit that is exceeded, or a budget that is spent, denies with `chain_too_complex`.
import type { Certificate } from "./certificate.ts";
import { certificateLabel } from "./describe.ts";
import type { PathFailure } from "./path-building.ts";

export interface ChainLimits {
  /** Certificates a client may present, the leaf included. */
  readonly maxCertificates: number;
  /** Their total DER size, in bytes. */
  readonly maxBytes: number;
  /** subjectAltName entries, and nameConstraints subtrees, of any one presented certificate. */
  readonly maxNamesPerCertificate: number;
  /** Signature verifications one decision may perform (results already known are free). */
  readonly maxSignatureChecks: number;
  /** Name-constraint comparisons (names × subtrees) one decision may perform. */
  readonly maxNameChecks: number;
}

export const DEFAULT_CHAIN_LIMITS: ChainLimits = Object.freeze({
  maxCertificates: 10,
  maxBytes: 32_768,
  maxNamesPerCertificate: 64,
  maxSignatureChecks: 32,
  maxNameChecks: 16_384,
});

/**
 * Candidate issuers examined per signature check allowed: path building steps whose signature result is
 * already known cost no cryptography, but their number must be bounded too (backtracking over many
 * same-named issuers).
 */
export const LINKS_PER_SIGNATURE_CHECK = 8;

export type ChainLimit = keyof ChainLimits;

/** Thrown (inside the engine only) when a budget is spent; verifyChain turns it into a denial. */
export class BudgetSpent extends Error {
  override name = "BudgetSpent";
  readonly limit: ChainLimit;
  readonly detail: string;

  constructor(limit: ChainLimit, detail: string) {
    super(detail);
    this.limit = limit;
    this.detail = detail;
  }
}

/** The work one decision may still do; shared by every trust store the decision tries. */
export class WorkBudget {
  readonly limits: ChainLimits;
  #signatures: number;
  #links: number;
  #names: number;
  /** Set once a budget is spent: every later step of the same decision stops at once. */
  spent: BudgetSpent | undefined;

  constructor(limits: ChainLimits = DEFAULT_CHAIN_LIMITS) {
    this.limits = limits;
    this.#signatures = limits.maxSignatureChecks;
    this.#links = limits.maxSignatureChecks * LINKS_PER_SIGNATURE_CHECK;
    this.#names = limits.maxNameChecks;
  }

  #stop(limit: ChainLimit, detail: string): never {
    this.spent ??= new BudgetSpent(limit, detail);
    throw this.spent;
  }

  /** Before a signature verification. */
  signature(): void {
    if (this.spent) throw this.spent;
    if (--this.#signatures < 0) {
      this.#stop(
        "maxSignatureChecks",
        `gave up after ${this.limits.maxSignatureChecks} signature checks (chainLimits.maxSignatureChecks)`,
      );
    }
  }

  /** Before a candidate issuer is examined. */
  link(): void {
    if (this.spent) throw this.spent;
    if (--this.#links < 0) {
      this.#stop(
        "maxSignatureChecks",
        `gave up after examining ${this.limits.maxSignatureChecks * LINKS_PER_SIGNATURE_CHECK} candidate issuers (${LINKS_PER_SIGNATURE_CHECK} × chainLimits.maxSignatureChecks)`,
      );
    }
  }

  /** Before `n` name-constraint comparisons. */
  names(n: number): void {
    if (this.spent) throw this.spent;
    this.#names -= n;
    if (this.#names < 0) {
      this.#stop(
        "maxNameChecks",
        `gave up after ${this.limits.maxNameChecks} name-constraint comparisons (chainLimits.maxNameChecks)`,
      );
    }
  }
}

/**
 * A presented chain that is over the limits before any work is done on it: why, or undefined. Names are
 * counted in what the client chose, not in `fromStore` certificates (the peer chain also carries the
 * trust store CAs it chained to, whose name constraints are the operator's).
 */
export function presentedOverLimits(
  leaf: Certificate,
  presented: readonly Certificate[],
  limits: ChainLimits,
  fromStore: (cert: Certificate) => boolean = () => false,
): (PathFailure & { readonly limit: ChainLimit }) | undefined {
  const count = 1 + presented.length;
  const counted = countOverLimits(count, leaf.der.length + sumBytes(presented), limits);
  if (counted) return counted;
  for (const cert of [leaf, ...presented]) {
    if (fromStore(cert)) continue;
    const names =
      cert.subjectAltNames.length +
      (cert.nameConstraints
        ? cert.nameConstraints.permitted.length + cert.nameConstraints.excluded.length
        : 0);
    if (names > limits.maxNamesPerCertificate) {
      return {
        limit: "maxNamesPerCertificate",
        reason: "chain_too_complex",
        detail: `certificate ${certificateLabel(cert)} carries ${names} names and name constraints, more than chainLimits.maxNamesPerCertificate (${limits.maxNamesPerCertificate})`,
      };
    }
  }
  return undefined;
}

const sumBytes = (certs: readonly Certificate[]): number => certs.reduce((n, c) => n + c.der.length, 0);

/** The count and size limits alone, on a chain not parsed yet (the TLS layer checks them before parsing). */
export function countOverLimits(
  count: number,
  bytes: number,
  limits: ChainLimits,
): (PathFailure & { readonly limit: ChainLimit }) | undefined {
  if (count > limits.maxCertificates) {
    return {
      limit: "maxCertificates",
      reason: "chain_too_complex",
      detail: `the client presented ${count} certificates, more than chainLimits.maxCertificates (${limits.maxCertificates})`,
    };
  }
  if (bytes > limits.maxBytes) {
    return {
      limit: "maxBytes",
      reason: "chain_too_complex",
      detail: `the client presented ${bytes} bytes of certificates, more than chainLimits.maxBytes (${limits.maxBytes})`,
    };
  }
  return undefined;
}
