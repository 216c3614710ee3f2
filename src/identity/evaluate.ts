// The whole verdict of the identity engine on a chain for one auth policy: path validation (decide), the
// trust store's revocation rule on the validated path, then the policy's certificate matchers. The gateway
// and `portcullis verify --config` both use this, so they cannot disagree.
import { decide } from "./decide.ts";
import type { ChainLimits } from "./limits.ts";
import { checkRevocation } from "./revocation/check.ts";
import type { RevocationView } from "./revocation/types.ts";
import type { AuthPolicy, ConnectionIdentity, Decision, TrustStore } from "./types.ts";

export interface Evaluation {
  readonly decision: Decision;
  /** Revocation statuses that soft mode let through: to be logged and counted, by trust store. */
  readonly softFailures: readonly { readonly store: string; readonly detail: string }[];
}

const NONE: Evaluation["softFailures"] = Object.freeze([]);

export interface EvaluateOptions {
  /** Revocation data; a store that asks for revocation checks is unknown (soft/strict) without it. */
  readonly revocation?: RevocationView;
  /** Chain limits and work budget; the defaults when omitted. */
  readonly limits?: ChainLimits;
}

/** The verdict alone. */
export function evaluate(
  identity: ConnectionIdentity,
  policy: AuthPolicy,
  knownStores: readonly TrustStore[],
  now: Date,
  options: EvaluateOptions = {},
): Decision {
  return evaluateDetailed(identity, policy, knownStores, now, options).decision;
}

/** The verdict, and what soft-mode revocation let through. */
export function evaluateDetailed(
  identity: ConnectionIdentity,
  policy: AuthPolicy,
  knownStores: readonly TrustStore[],
  now: Date,
  { revocation, limits }: EvaluateOptions = {},
): Evaluation {
  const decision = decide(identity, policy, knownStores, now, limits);
  if (!decision.allow) return { decision, softFailures: NONE };
  let softFailures = NONE;
  const store = policy.trustStores.find((s) => s.name === decision.identity.trustStore);
  if (store && store.revocation.mode !== "off") {
    if (!revocation) {
      // A store that asks for revocation checks must never pass silently without revocation data.
      const denied = store.revocation.mode === "strict";
      if (denied) {
        return {
          decision: { allow: false, reason: "revocation_unknown", detail: "no revocation data is loaded" },
          softFailures: NONE,
        };
      }
      softFailures = [{ store: store.name, detail: "no revocation data is loaded" }];
    } else {
      const check = checkRevocation(decision.identity.leaf, decision.identity.path, store, revocation, now);
      if (!check.ok)
        return { decision: { allow: false, reason: check.reason, detail: check.detail }, softFailures: NONE };
      if (check.softFailures.length > 0)
        softFailures = check.softFailures.map((detail) => ({ store: store.name, detail }));
    }
  }
  if (policy.match) {
    const mismatch = policy.match(decision.identity.leaf, decision.identity.path);
    if (mismatch)
      return { decision: { allow: false, reason: mismatch.reason, detail: mismatch.detail }, softFailures };
  }
  return { decision, softFailures };
}
