// The engine's verdicts told to people: per-certificate summaries and the per-trust-store attempts that
// `portcullis verify` prints (as text or JSON) next to the verdict of evaluate(), which it does not redo.
import type { Certificate } from "./certificate.ts";
import { certificateLabel, shortSubject } from "./describe.ts";
import { type ChainLimits, DEFAULT_CHAIN_LIMITS, WorkBudget } from "./limits.ts";
import { verifyChain } from "./path-validation.ts";
import type { ReasonCode } from "./reasons.ts";
import type { Decision, TrustStore } from "./types.ts";

export interface CertificateSummary {
  readonly subject: string;
  readonly issuer: string;
  readonly fingerprint: string;
  readonly notBefore: string;
  readonly notAfter: string;
}

export const summarize = (cert: Certificate): CertificateSummary => ({
  subject: cert.subject,
  issuer: cert.issuer,
  fingerprint: cert.fingerprint,
  notBefore: cert.notBefore.toISOString(),
  notAfter: cert.notAfter.toISOString(),
});

/** What one trust store made of the chain: the path it validated, or why not. */
export type StoreAttempt =
  | {
      readonly store: string;
      readonly ok: true;
      /** Leaf first, anchor last. */
      readonly path: readonly CertificateSummary[];
      readonly graceUsedMs?: number;
    }
  | { readonly store: string; readonly ok: false; readonly reason: ReasonCode; readonly detail: string };

/**
 * verifyChain against each store in turn (cheap: signature results are memoised per certificate), each
 * within a budget of `limits`.
 */
export function attemptStores(
  leaf: Certificate,
  presented: readonly Certificate[],
  stores: readonly TrustStore[],
  now: Date,
  limits: ChainLimits = DEFAULT_CHAIN_LIMITS,
): StoreAttempt[] {
  return stores.map((store): StoreAttempt => {
    const result = verifyChain(leaf, presented, store, now, new WorkBudget(limits));
    if (!result.ok) return { store: store.name, ok: false, reason: result.reason, detail: result.detail };
    const path = [leaf, ...result.path].map(summarize);
    return result.graceUsedMs === undefined
      ? { store: store.name, ok: true, path }
      : { store: store.name, ok: true, path, graceUsedMs: result.graceUsedMs };
  });
}

/** The validated path of an allow (leaf first, anchor last); empty for a denial. */
export const decisionPath = (decision: Decision): CertificateSummary[] =>
  decision.allow ? [decision.identity.leaf, ...decision.identity.path].map(summarize) : [];

/** One sentence for a decision: who was accepted through which store, or the deny detail. */
export function decisionSentence(decision: Decision): string {
  if (!decision.allow) return decision.detail;
  const { leaf, path, trustStore } = decision.identity;
  const anchor = path[path.length - 1];
  const via = anchor ? ` up to trust anchor ${certificateLabel(anchor)}` : "";
  const grace =
    decision.graceUsedMs === undefined
      ? ""
      : `; its notBefore is ${Math.ceil(decision.graceUsedMs / 1000)}s ahead, within the trust store's notBeforeGrace`;
  return `certificate ${certificateLabel(leaf)} is valid through trust store "${trustStore}"${via}${grace}`;
}

/** Text lines for a path: index, subject, validity, fingerprint prefix; the anchor marked. */
export function pathLines(path: readonly CertificateSummary[]): string[] {
  return path.map((cert, i) => {
    const role = i === 0 ? "leaf" : i === path.length - 1 ? "anchor" : "CA";
    const subject = cert.subject ? shortSubject(cert.subject, cert.fingerprint) : "(empty subject)";
    return `  ${i} ${role.padEnd(6)} ${subject}  [${cert.notBefore} .. ${cert.notAfter}] sha256:${cert.fingerprint.slice(0, 16)}`;
  });
}

/** Text lines for each trust store's attempt. */
export function attemptLines(attempts: readonly StoreAttempt[]): string[] {
  return attempts.flatMap((a) =>
    a.ok
      ? [`  trust store "${a.store}": path built`, ...pathLines(a.path).map((l) => `  ${l}`)]
      : [`  trust store "${a.store}": no valid path: ${a.reason}: ${a.detail}`],
  );
}

/** Which rule made `decision`, given the per-store attempts. */
export function decidedBy(decision: Decision, attempts: readonly StoreAttempt[]): string {
  if (decision.allow) return `path validation in trust store "${decision.identity.trustStore}"`;
  if (decision.reason === "ca_not_allowed_for_route")
    return "the chain is valid only under another route's trust store";
  if (decision.reason === "certificate_revoked" || decision.reason === "revocation_unknown")
    return "revocation";
  if (attempts.some((a) => a.ok)) return "the route's certificate matchers";
  return "path validation (the most specific failure across the route's trust stores)";
}
