// Path building: finds candidate issuers (trust store + presented chain) and walks them depth-first with
// backtracking, so that cross-signed and re-keyed CAs are found. What makes one link or one whole path
// acceptable is supplied by the caller (path-validation.ts), so new RFC 5280 checks need no change here.
import type { Certificate } from "./certificate.ts";
import { certificateLabel } from "./describe.ts";
import type { WorkBudget } from "./limits.ts";
import type { ReasonCode } from "./reasons.ts";
import type { TrustStore } from "./types.ts";

export interface PathFailure {
  readonly reason: ReasonCode;
  readonly detail: string;
}

/** A possible issuer; `anchor` ends the path there. */
export interface Candidate {
  readonly cert: Certificate;
  readonly anchor: boolean;
}

export interface PathChecks {
  /**
   * Is `issuer` acceptable as the issuer of `child`? `below` holds the issuers already on the path, leaf's
   * first; `anchor` says that `issuer` is a trust anchor of the store (the path would end there).
   */
  link(
    child: Certificate,
    issuer: Certificate,
    below: readonly Certificate[],
    anchor: boolean,
  ): PathFailure | undefined;
  /** Checks a complete path (leaf's issuer … anchor) as a whole, once every link passed. */
  complete(path: readonly Certificate[]): PathFailure | undefined;
}

export type SearchResult =
  | { readonly ok: true; readonly path: Certificate[] }
  | { readonly ok: false; readonly failure: PathFailure };

interface StoreIndex {
  /** Candidates by subject Name DER: anchors first, then intermediates, in store order. */
  readonly bySubject: ReadonlyMap<string, readonly Candidate[]>;
  readonly fingerprints: ReadonlySet<string>;
}

// Indexed lazily per store object: stores are immutable once compiled, and a WeakMap keeps the
// TrustStore shape plain data while the hot path does one Map lookup per level instead of a scan.
const indexes = new WeakMap<TrustStore, StoreIndex>();
const NONE: readonly Candidate[] = [];

/** Name DER as a Map key: exact byte equality, as RFC 5280 name chaining by binary comparison. */
const nameKey = (der: Buffer): string => der.toString("latin1");

function storeIndex(store: TrustStore): StoreIndex {
  let index = indexes.get(store);
  if (index) return index;
  const bySubject = new Map<string, Candidate[]>();
  const fingerprints = new Set<string>();
  const add = (cert: Certificate, anchor: boolean) => {
    if (fingerprints.has(cert.fingerprint)) return;
    fingerprints.add(cert.fingerprint);
    const key = nameKey(cert.subjectDer);
    const list = bySubject.get(key);
    if (list) list.push({ cert, anchor });
    else bySubject.set(key, [{ cert, anchor }]);
  };
  for (const cert of store.anchors) add(cert, true);
  for (const cert of store.intermediates) add(cert, false);
  index = { bySubject, fingerprints };
  indexes.set(store, index);
  return index;
}

/** Whether `cert` is one of `store`'s own certificates (the operator's, not the client's). */
export const isStoreCertificate = (store: TrustStore, cert: Certificate): boolean =>
  storeIndex(store).fingerprints.has(cert.fingerprint);

/**
 * Whether `candidate`'s key identifier rules it out as the issuer of `cert`: both identifiers present and
 * different (as OpenSSL's check_issued). A same-named CA with another key is not this certificate's issuer,
 * and is dropped before any signature is tried on it.
 */
const keyIdMismatch = (cert: Certificate, candidate: Certificate): boolean =>
  cert.authorityKeyId !== undefined &&
  candidate.subjectKeyId !== undefined &&
  cert.authorityKeyId !== candidate.subjectKeyId;

/**
 * Certificates whose subject is `cert`'s issuer name and whose key identifier does not rule them out: the
 * store's anchors, then its intermediates, then the presented ones; those whose subjectKeyIdentifier
 * matches `cert`'s authorityKeyIdentifier before those without one. A presented certificate with the DER
 * of a store certificate is that store certificate (so a client sending the root gets the root treated as
 * the anchor, never as untrusted). `ruledOut` counts the same-named certificates dropped by key identifier.
 */
export function candidateIssuers(
  cert: Certificate,
  untrusted: readonly Certificate[],
  store: TrustStore,
): { readonly candidates: readonly Candidate[]; readonly ruledOut: number } {
  const index = storeIndex(store);
  const fromStore = index.bySubject.get(nameKey(cert.issuerDer)) ?? NONE;
  const matched: Candidate[] = [];
  const unmatched: Candidate[] = [];
  let ruledOut = 0;
  const consider = (candidate: Candidate) => {
    if (keyIdMismatch(cert, candidate.cert)) ruledOut++;
    else if (cert.authorityKeyId !== undefined && candidate.cert.subjectKeyId === cert.authorityKeyId)
      matched.push(candidate);
    else unmatched.push(candidate);
  };
  for (const candidate of fromStore) consider(candidate);
  const seen = new Set<string>();
  for (const u of untrusted) {
    if (!u.subjectDer.equals(cert.issuerDer) || index.fingerprints.has(u.fingerprint)) continue;
    if (seen.has(u.fingerprint)) continue;
    seen.add(u.fingerprint);
    consider({ cert: u, anchor: false });
  }
  return { candidates: matched.length === 0 ? unmatched : [...matched, ...unmatched], ruledOut };
}

// A path must not pass the same CA twice. Keyed by name + key rather than by DER, so that re-issued
// copies of one CA (same name and key, other validity) cannot make long circular paths either.
const loopKey = (cert: Certificate): string => `${nameKey(cert.subjectDer)}|${cert.spkiSha256}`;

/**
 * How specific a failure is: a path that is complete but fails as a whole beats one that links up but is
 * too long, which beats a failed link, which beats finding no issuer at all.
 */
const RANK = { noIssuer: 0, link: 1, depth: 2, complete: 3 } as const;

/**
 * Certificates that count toward `maxDepth`: the leaf, each intermediate that is not self-issued (RFC 5280
 * §6.1.4 (l): a self-issued CA certificate, e.g. a key rollover, adds no level) and the anchor.
 */
function depthOf(path: readonly Certificate[], anchor: boolean): number {
  let depth = 1; // the leaf
  for (let i = 0; i < path.length; i++) {
    const last = i === path.length - 1;
    if ((last && anchor) || !path[i]?.selfIssued) depth++;
  }
  return anchor ? depth : depth + 1; // a path that has not reached its anchor still needs one
}

/**
 * Depth-first search from the leaf up to an anchor of `store`, trying every candidate issuer in turn,
 * each link checked by `checks` (which spend the decision's budget: a spent budget throws BudgetSpent out
 * of here). Returns the first path whose links and whole pass, else the most specific failure met.
 */
export function searchPath(
  leaf: Certificate,
  untrusted: readonly Certificate[],
  store: TrustStore,
  checks: PathChecks,
  budget: WorkBudget,
): SearchResult {
  const path: Certificate[] = [];
  const onPath = new Set<string>([loopKey(leaf)]);
  let best: PathFailure | undefined;
  let bestRank = -1;
  const record = (rank: number, failure: PathFailure) => {
    if (rank > bestRank) {
      best = failure;
      bestRank = rank;
    }
  };

  // true: found (path holds it); false: this branch failed.
  const extend = (child: Certificate): boolean => {
    const { candidates, ruledOut } = candidateIssuers(child, untrusted, store);
    let looped = false;
    for (const candidate of candidates) {
      const issuer = candidate.cert;
      const key = loopKey(issuer);
      if (onPath.has(key)) {
        looped = true;
        continue;
      }
      budget.link();
      const linkFailure = checks.link(child, issuer, path, candidate.anchor);
      if (linkFailure) {
        record(RANK.link, linkFailure);
        continue;
      }
      path.push(issuer);
      // Checked once the link holds, so that a chain that is genuine but too long says so.
      if (depthOf(path, candidate.anchor) > store.maxDepth) {
        record(RANK.depth, {
          reason: "chain_too_long",
          detail: `chain of ${certificateLabel(leaf)} needs more than ${store.maxDepth} certificates (maxDepth; self-issued CAs not counted)`,
        });
        path.pop();
        continue;
      }
      onPath.add(key);
      if (candidate.anchor) {
        const pathFailure = checks.complete(path);
        if (!pathFailure) return true;
        record(RANK.complete, pathFailure);
      } else if (extend(issuer)) {
        return true;
      }
      path.pop();
      onPath.delete(key);
    }
    if (candidates.length === 0 || looped) {
      record(RANK.noIssuer, {
        reason: "untrusted_issuer",
        detail:
          candidates.length > 0
            ? `issuers of ${certificateLabel(child)} loop back into the chain without reaching a trust anchor`
            : ruledOut > 0
              ? `no issuer "${child.issuer}" of ${certificateLabel(child)} whose subjectKeyIdentifier matches its authorityKeyIdentifier, in the presented chain or the trust store`
              : `no issuer "${child.issuer}" of ${certificateLabel(child)} in the presented chain or the trust store`,
      });
    }
    return false;
  };

  if (extend(leaf)) return { ok: true, path };
  return {
    ok: false,
    failure: best ?? {
      reason: "untrusted_issuer",
      detail: `no path from ${certificateLabel(leaf)} to a trust anchor`,
    },
  };
}
