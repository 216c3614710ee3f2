// Path building: finds candidate issuers (trust store + presented chain) and walks them depth-first with
// backtracking, so that cross-signed and re-keyed CAs are found. What makes one link or one whole path
// acceptable is supplied by the caller (path-validation.ts), so new RFC 5280 checks need no change here.
import type { Certificate } from "./certificate.ts";
import { certificateLabel } from "./describe.ts";
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

/**
 * Most links one search may examine. Untrusted input can offer many same-named CAs that chain among
 * themselves (each level multiplies the paths); like Go's crypto/x509 we bound the work instead of
 * trusting that no client does that.
 */
export const MAX_LINK_CHECKS = 100;

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

/**
 * Certificates whose subject is `cert`'s issuer name: the store's anchors, then its intermediates, then
 * the presented ones. A presented certificate with the DER of a store certificate is that store
 * certificate (so a client sending the root gets the root treated as the anchor, never as untrusted).
 */
export function candidateIssuers(
  cert: Certificate,
  untrusted: readonly Certificate[],
  store: TrustStore,
): readonly Candidate[] {
  const index = storeIndex(store);
  const fromStore = index.bySubject.get(nameKey(cert.issuerDer)) ?? NONE;
  let out: Candidate[] | undefined;
  for (const u of untrusted) {
    if (!u.subjectDer.equals(cert.issuerDer) || index.fingerprints.has(u.fingerprint)) continue;
    if (out?.some((c) => c.cert.fingerprint === u.fingerprint)) continue;
    out ??= fromStore.slice();
    out.push({ cert: u, anchor: false });
  }
  return out ?? fromStore;
}

// A path must not pass the same CA twice. Keyed by name + key rather than by DER, so that re-issued
// copies of one CA (same name and key, other validity) cannot make long circular paths either.
const loopKey = (cert: Certificate): string => `${nameKey(cert.subjectDer)}|${cert.spkiSha256}`;

/** How specific a failure is: a failed complete path beats a failed link beats finding no issuer. */
const RANK = { noIssuer: 0, link: 1, complete: 2 } as const;

/**
 * Depth-first search from the leaf up to an anchor of `store`, trying every candidate issuer in turn.
 * Returns the first path whose links and whole pass `checks`, else the most specific failure met.
 */
export function searchPath(
  leaf: Certificate,
  untrusted: readonly Certificate[],
  store: TrustStore,
  checks: PathChecks,
): SearchResult {
  const path: Certificate[] = [];
  const onPath = new Set<string>([loopKey(leaf)]);
  let budget = MAX_LINK_CHECKS;
  let best: PathFailure | undefined;
  let bestRank = -1;
  const record = (rank: number, failure: PathFailure) => {
    if (rank > bestRank) {
      best = failure;
      bestRank = rank;
    }
  };

  // true: found (path holds it); false: this branch failed; undefined: budget exhausted, stop everything.
  const extend = (child: Certificate): boolean | undefined => {
    const candidates = candidateIssuers(child, untrusted, store);
    let looped = false;
    for (const candidate of candidates) {
      const issuer = candidate.cert;
      const key = loopKey(issuer);
      if (onPath.has(key)) {
        looped = true;
        continue;
      }
      // path holds the issuers so far; + the leaf + this candidate.
      if (path.length + 2 > store.maxDepth) {
        record(RANK.link, {
          reason: "chain_too_long",
          detail: `chain of ${certificateLabel(leaf)} needs more than ${store.maxDepth} certificates`,
        });
        continue;
      }
      if (--budget < 0) return undefined;
      const linkFailure = checks.link(child, issuer, path, candidate.anchor);
      if (linkFailure) {
        record(RANK.link, linkFailure);
        continue;
      }
      path.push(issuer);
      onPath.add(key);
      if (candidate.anchor) {
        const pathFailure = checks.complete(path);
        if (!pathFailure) return true;
        record(RANK.complete, pathFailure);
      } else {
        const found = extend(issuer);
        if (found !== false) return found;
      }
      path.pop();
      onPath.delete(key);
    }
    if (candidates.length === 0 || looped) {
      record(RANK.noIssuer, {
        reason: "untrusted_issuer",
        detail:
          candidates.length === 0
            ? `no issuer "${child.issuer}" of ${certificateLabel(child)} in the presented chain or the trust store`
            : `issuers of ${certificateLabel(child)} loop back into the chain without reaching a trust anchor`,
      });
    }
    return false;
  };

  const found = extend(leaf);
  if (found === true) return { ok: true, path };
  if (found === undefined && bestRank <= RANK.noIssuer) {
    // Giving up says more than whichever dead end came first.
    best = {
      reason: "untrusted_issuer",
      detail: `gave up building a path for ${certificateLabel(leaf)} after ${MAX_LINK_CHECKS} candidate issuers`,
    };
  }
  return {
    ok: false,
    failure: best ?? {
      reason: "untrusted_issuer",
      detail: `no path from ${certificateLabel(leaf)} to a trust anchor`,
    },
  };
}
