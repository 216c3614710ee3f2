// Turns a connection and a route's auth policy into a Decision: computed once per connection and chain
// (then from a shared LRU keyed by chain fingerprint, never by subject DN), with the validity period
// re-checked on every request so that a long-lived connection cannot outlive its certificate.

import { recheckValidity } from "../identity/decide.ts";
import { DecisionCache } from "../identity/decision-cache.ts";
import { evaluate } from "../identity/evaluate.ts";
import type { AuthPolicy, ConnectionIdentity, Decision, TrustStore } from "../identity/types.ts";
import type { ConnectionState } from "../tls/connection-state.ts";

export class Authenticator {
  readonly #stores: readonly TrustStore[];
  readonly #cache: DecisionCache;

  constructor(
    stores: readonly TrustStore[],
    cache = new DecisionCache({ maxEntries: 50_000, ttlMs: 60_000 }),
  ) {
    this.#stores = stores;
    this.#cache = cache;
  }

  /** The verdict on a connection's identity for a policy, at `now`. */
  decide(identity: ConnectionIdentity, policy: AuthPolicy, now: Date): Decision {
    return recheckValidity(this.#cached(identity, policy, now), now);
  }

  /** As `decide`, memoised on the connection for the policy. */
  decideForConnection(state: ConnectionState, policy: AuthPolicy, now: Date): Decision {
    let decision = state.decisions.get(policy.id);
    if (decision === undefined) {
      decision = this.#cached(state.identity, policy, now);
      state.decisions.set(policy.id, decision);
    }
    return recheckValidity(decision, now);
  }

  #cached(identity: ConnectionIdentity, policy: AuthPolicy, now: Date): Decision {
    if (identity.leaf === undefined) return evaluate(identity, policy, this.#stores, now);
    const key = `${identity.chainFingerprint}|${policy.id}`;
    let decision = this.#cache.get(key, now.getTime());
    if (decision === undefined) {
      decision = evaluate(identity, policy, this.#stores, now);
      this.#cache.set(key, decision, now.getTime());
    }
    return decision;
  }

  clear(): void {
    this.#cache.clear();
  }
}
