// The whole verdict of the identity engine on a chain for one auth policy: path validation (decide), then
// the policy's certificate matchers. The gateway and `portcullis verify --config` both use this, so they
// cannot disagree.
import { decide } from "./decide.ts";
import type { AuthPolicy, ConnectionIdentity, Decision, TrustStore } from "./types.ts";

export function evaluate(
  identity: ConnectionIdentity,
  policy: AuthPolicy,
  knownStores: readonly TrustStore[],
  now: Date,
): Decision {
  const decision = decide(identity, policy, knownStores, now);
  if (!decision.allow || !policy.match) return decision;
  const mismatch = policy.match(decision.identity.leaf, decision.identity.path);
  return mismatch ? { allow: false, reason: mismatch.reason, detail: mismatch.detail } : decision;
}
