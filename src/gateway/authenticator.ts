// Turns a connection and a route's auth policy into a Decision: computed once per connection and chain
// (then from a shared LRU keyed by chain fingerprint, never by subject DN), with the validity period
// re-checked on every request so that a long-lived connection cannot outlive its certificate. Revocation
// data a chain needs (OCSP answers, CRLs from distribution points) is fetched first; any change of
// revocation data bumps the epoch, so no verdict reached under older data is served again.
import { recheckValidity } from "../identity/decide.ts";
import { DecisionCache, decisionCacheKey } from "../identity/decision-cache.ts";
import { type Evaluation, evaluateDetailed } from "../identity/evaluate.ts";
import { type ChainLimits, DEFAULT_CHAIN_LIMITS } from "../identity/limits.ts";
import type { AuthPolicy, ConnectionIdentity, Decision, TrustStore } from "../identity/types.ts";
import type { RevocationService } from "../revocation/revocation-service.ts";
import type { ConnectionState } from "../tls/connection-state.ts";
import type { Logger } from "./log.ts";
import type { GatewayMetrics } from "./metrics.ts";

export interface AuthenticatorDeps {
  readonly revocation: RevocationService | undefined;
  /** What a client may present and what one decision may cost; the defaults when omitted. */
  readonly limits?: ChainLimits;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
}

export class Authenticator {
  readonly #stores: readonly TrustStore[];
  readonly #cache = new DecisionCache({ maxEntries: 50_000, ttlMs: 60_000 });
  readonly #deps: AuthenticatorDeps;
  #epoch = 0;
  /** Connections whose use of notBeforeGrace was logged (once per connection). */
  readonly #graceLogged = new WeakSet<ConnectionState>();
  readonly #unsubscribe: () => void;

  constructor(stores: readonly TrustStore[], deps: AuthenticatorDeps) {
    this.#stores = stores;
    this.#deps = deps;
    this.#unsubscribe =
      deps.revocation?.onChange(() => {
        this.#epoch++;
        this.#cache.clear();
      }) ?? (() => {});
  }

  get limits(): ChainLimits {
    return this.#deps.limits ?? DEFAULT_CHAIN_LIMITS;
  }

  /** Bumped whenever revocation data changes: connection verdicts of an older epoch are recomputed. */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * The verdict with the revocation data loaded right now, never waiting for a fetch (handshake-time
   * admission, diagnostics): an unknown status there is decided again, with fresh data, per request.
   */
  decide(identity: ConnectionIdentity, policy: AuthPolicy, now: Date): Decision {
    // Provisional: a soft-mode unknown here is often just data not fetched yet, so it is neither
    // reported (no false alarm) nor cached (the request path fetches, decides and reports it).
    return recheckValidity(this.#cached(identity, policy, now, false), now);
  }

  /** The verdict for a request on this connection: memoised per connection, policy and epoch. */
  decideForConnection(state: ConnectionState, policy: AuthPolicy, now: Date): Decision | Promise<Decision> {
    const memo = state.decisions.get(policy.id);
    if (memo && memo.epoch === this.#epoch)
      return this.#served(state, recheckValidity(memo.decision, now), now);
    const { leaf } = state.identity;
    const revocation = this.#deps.revocation;
    const remember = (): Decision => {
      const epoch = this.#epoch;
      const decision = this.#cached(state.identity, policy, now, true);
      state.decisions.set(policy.id, { decision, epoch });
      return this.#served(state, recheckValidity(decision, now), now);
    };
    if (!leaf || !revocation || !policy.trustStores.some((s) => s.revocation.mode !== "off"))
      return remember();
    return revocation.prepareChain(leaf, state.identity.presented, policy.trustStores, now).then(remember);
  }

  /**
   * A verdict served on a request: a use of notBeforeGrace (the leaf's notBefore still ahead now) is
   * counted on every request and logged once per connection.
   */
  #served(state: ConnectionState, decision: Decision, now: Date): Decision {
    if (decision.allow && decision.graceUsedMs !== undefined && now < decision.identity.leaf.notBefore) {
      const store = decision.identity.trustStore;
      this.#deps.metrics.notBeforeGraceUses.inc({ store });
      if (!this.#graceLogged.has(state)) {
        this.#graceLogged.add(state);
        this.#deps.logger.warn(
          {
            fingerprint: decision.identity.leaf.fingerprint,
            graceUsedMs: decision.identity.leaf.notBefore.getTime() - now.getTime(),
            store,
          },
          "certificate accepted before its notBefore (notBeforeGrace)",
        );
      }
    }
    return decision;
  }

  /** `report`: log and count soft-mode revocation failures (else such a verdict is not cached). */
  #cached(identity: ConnectionIdentity, policy: AuthPolicy, now: Date, report: boolean): Decision {
    if (identity.leaf === undefined) return this.#evaluate(identity, policy, now, report).decision;
    const key = decisionCacheKey(identity, policy);
    let decision = this.#cache.get(key, now);
    if (decision === undefined) {
      const result = this.#evaluate(identity, policy, now, report);
      decision = result.decision;
      if (report || result.softFailures.length === 0) this.#cache.set(key, decision, now);
    }
    return decision;
  }

  #evaluate(identity: ConnectionIdentity, policy: AuthPolicy, now: Date, report: boolean): Evaluation {
    const result = evaluateDetailed(identity, policy, this.#stores, now, {
      revocation: this.#deps.revocation?.view(),
      limits: this.limits,
    });
    const { decision } = result;
    if (!decision.allow && decision.limit !== undefined) {
      this.#deps.metrics.chainLimitHits.inc({ limit: decision.limit });
    }
    if (!report) return result;
    for (const failure of result.softFailures) {
      this.#deps.metrics.revocationSoftFailures.inc({ store: failure.store });
      this.#deps.logger.warn(
        { store: failure.store, detail: failure.detail, fingerprint: identity.leaf?.fingerprint },
        "revocation status unknown, allowed (soft mode)",
      );
    }
    return result;
  }

  close(): void {
    this.#unsubscribe();
    this.#cache.clear();
  }
}
