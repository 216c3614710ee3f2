// A small LRU with TTL for Decisions, keyed by chain fingerprint + policy id (never by subject DN: two
// certificates with one DN are two identities). A hit costs well under a microsecond (see lru.ts).
import { Lru } from "./lru.ts";
import { wholeSecond } from "./time.ts";
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
  readonly #entries: Lru<Entry>;
  readonly #ttlMs: number;

  constructor(options: DecisionCacheOptions) {
    if (!Number.isInteger(options.maxEntries) || options.maxEntries < 1) {
      throw new RangeError(`maxEntries must be a positive integer, got ${options.maxEntries}`);
    }
    if (!(options.ttlMs > 0)) throw new RangeError(`ttlMs must be positive, got ${options.ttlMs}`);
    this.#entries = new Lru(options.maxEntries);
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
    // An allow is also dropped once outside its validity window (compared by whole second, as
    // certificate times are), so that a caller that forgets recheckValidity still never serves an
    // expired certificate from here.
    const second = wholeSecond(t);
    if (
      t > entry.expires ||
      (entry.decision.allow &&
        (second > entry.decision.notAfter.getTime() || second < entry.decision.notBefore.getTime()))
    ) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.decision;
  }

  set(key: string, decision: Decision, now: Date | number): void {
    this.#entries.set(key, { decision, expires: ms(now) + this.#ttlMs });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  /** Drops every decision, e.g. when trust stores or policies are reloaded. */
  clear(): void {
    this.#entries.clear();
  }
}
