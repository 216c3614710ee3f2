// A small LRU with TTL for Decisions, keyed by chain fingerprint + policy id (never by subject DN: two
// certificates with one DN are two identities). Map insertion order is the recency order.
import type { AuthPolicy, ConnectionIdentity, Decision } from "./types.ts";

export interface DecisionCacheOptions {
  readonly maxEntries: number;
  readonly ttlMs: number;
}

interface Entry {
  decision: Decision;
  expires: number;
}

/** The cache key of a verdict: `${chainFingerprint}|${policy.id}`. */
export function decisionCacheKey(identity: ConnectionIdentity, policy: AuthPolicy): string {
  return `${identity.chainFingerprint}|${policy.id}`;
}

const ms = (now: Date | number): number => (typeof now === "number" ? now : now.getTime());

export class DecisionCache {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;
  readonly #ttlMs: number;

  constructor(options: DecisionCacheOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${options.maxEntries}`);
    }
    if (!(options.ttlMs > 0)) throw new RangeError(`ttlMs must be positive, got ${options.ttlMs}`);
    this.#maxEntries = options.maxEntries;
    this.#ttlMs = options.ttlMs;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached decision, or undefined when absent or stale. `now` as a Date or epoch milliseconds. */
  get(key: string, now: Date | number): Decision | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    const t = ms(now);
    // An allow is also dropped once outside its validity window, so that a caller that forgets
    // recheckValidity still never serves an expired certificate from here.
    if (
      t > entry.expires ||
      (entry.decision.allow &&
        (t > entry.decision.notAfter.getTime() || t < entry.decision.notBefore.getTime()))
    ) {
      this.#entries.delete(key);
      return undefined;
    }
    // Move to the most-recent end; the entry object is reused, nothing is allocated.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    return entry.decision;
  }

  set(key: string, decision: Decision, now: Date | number): void {
    const expires = ms(now) + this.#ttlMs;
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      this.#entries.delete(key);
      entry.decision = decision;
      entry.expires = expires;
      this.#entries.set(key, entry);
      return;
    }
    this.#entries.set(key, { decision, expires });
    if (this.#entries.size > this.#maxEntries) {
      // The first key in insertion order is the least recently used one.
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Drops every decision, e.g. when trust stores or policies are reloaded. */
  clear(): void {
    this.#entries.clear();
  }
}
