// The verdict on a connection's certificate for one route's auth policy, and its cheap per-request re-check.
import { type Certificate, chainFingerprint } from "./certificate.ts";
import { certificateLabel } from "./describe.ts";
import {
  type ChainLimit,
  type ChainLimits,
  DEFAULT_CHAIN_LIMITS,
  presentedOverLimits,
  WorkBudget,
} from "./limits.ts";
import { isStoreCertificate } from "./path-building.ts";
import { type PathResult, verifyChain } from "./path-validation.ts";
import { wholeSecond } from "./time.ts";
import type { AuthPolicy, ConnectionIdentity, Decision, DeviceIdentity, TrustStore } from "./types.ts";

type Deny = Extract<Decision, { allow: false }>;
type Failure = Extract<PathResult, { ok: false }>;

const DEVICE_URN = "urn:device:";

/** The ConnectionIdentity of a chain that did not arrive over TLS (`portcullis verify`, benchmarks). */
export function offlineIdentity(
  leaf: Certificate,
  presented: readonly Certificate[],
  listener: string,
): ConnectionIdentity {
  return {
    leaf,
    presented,
    chainFingerprint: chainFingerprint([leaf, ...presented]),
    sni: undefined,
    listener,
    resumed: false,
  };
}

/** The device id of a SAN URI `urn:device:<id>` (scheme and NID are case-insensitive, RFC 8141). */
export function deviceIdOf(leaf: Certificate): string | undefined {
  for (const uri of leaf.sanUris) {
    if (uri.length > DEVICE_URN.length && uri.slice(0, DEVICE_URN.length).toLowerCase() === DEVICE_URN) {
      return uri.slice(DEVICE_URN.length);
    }
  }
  return undefined;
}

function allow(leaf: Certificate, result: Extract<PathResult, { ok: true }>, store: TrustStore): Decision {
  const { path, graceUsedMs } = result;
  // The window in which this decision holds: a leaf let in by notBeforeGrace stays in during the grace.
  let notBefore =
    graceUsedMs === undefined ? leaf.notBefore : new Date(leaf.notBefore.getTime() - store.notBeforeGraceMs);
  let notAfter = leaf.notAfter;
  for (const cert of path) {
    if (cert.notBefore > notBefore) notBefore = cert.notBefore;
    if (cert.notAfter < notAfter) notAfter = cert.notAfter;
  }
  const identity: DeviceIdentity = { leaf, path, trustStore: store.name, deviceId: deviceIdOf(leaf) };
  return graceUsedMs === undefined
    ? { allow: true, identity, notBefore, notAfter }
    : { allow: true, identity, notBefore, notAfter, graceUsedMs };
}

const deny = (reason: Deny["reason"], detail: string): Deny => ({ allow: false, reason, detail });
const tooComplex = (limit: ChainLimit, detail: string): Deny => ({
  allow: false,
  reason: "chain_too_complex",
  detail,
  limit,
});

/**
 * Allows when the presented chain validates against one of the policy's trust stores (in order) at
 * `now`. Otherwise denies with the most specific reason; a chain that only a store of another route
 * accepts is `ca_not_allowed_for_route` (403: the device is genuine, just not welcome here). The work is
 * bounded by `limits`: a chain over them, or a search that spends the budget, is `chain_too_complex`.
 */
export function decide(
  identity: ConnectionIdentity,
  policy: AuthPolicy,
  knownStores: readonly TrustStore[],
  now: Date,
  limits: ChainLimits = DEFAULT_CHAIN_LIMITS,
): Decision {
  if (identity.overLimits !== undefined)
    return tooComplex(identity.overLimits.limit, identity.overLimits.detail);
  // A certificate we could not parse is refused even if a leaf came out of it: the engine would
  // otherwise decide on a chain other than the one the client sent.
  if (identity.parseError !== undefined) {
    return deny("bad_certificate", `client certificate could not be parsed: ${identity.parseError}`);
  }
  const leaf = identity.leaf;
  if (leaf === undefined) return deny("no_certificate", "the client sent no certificate");
  const fromStore = (cert: Certificate) =>
    [...policy.trustStores, ...knownStores].some((store) => isStoreCertificate(store, cert));
  const over = presentedOverLimits(leaf, identity.presented, limits, fromStore);
  if (over) return tooComplex(over.limit, over.detail);

  const budget = new WorkBudget(limits);
  let failure: Failure | undefined;
  let failedStore: TrustStore | undefined;
  for (const store of policy.trustStores) {
    const result = verifyChain(leaf, identity.presented, store, now, budget);
    if (result.ok) return allow(leaf, result, store);
    if (budget.spent)
      return tooComplex(budget.spent.limit, `${budget.spent.detail} (trust store "${store.name}")`);
    // Anything beats untrusted_issuer; otherwise the first store, the policy's preferred one, speaks.
    if (
      failure === undefined ||
      (failure.reason === "untrusted_issuer" && result.reason !== "untrusted_issuer")
    ) {
      failure = result;
      failedStore = store;
    }
  }

  // A chain that is valid elsewhere in the gateway is a genuine device at the wrong route: say so (403)
  // rather than call its perfectly good issuer untrusted. Only when no store of the route knows the issuer:
  // a chain the route's own store judged (not yet valid, expired, …) gets that store's verdict, even if
  // another store (say, one with notBeforeGrace) would accept it.
  const routeKnowsIssuer = failure !== undefined && failure.reason !== "untrusted_issuer";
  for (const store of routeKnowsIssuer ? [] : knownStores) {
    if (policy.trustStores.some((s) => s === store || s.name === store.name)) continue;
    if (verifyChain(leaf, identity.presented, store, now, budget).ok) {
      return deny(
        "ca_not_allowed_for_route",
        `certificate ${certificateLabel(leaf)} is issued under trust store "${store.name}", which policy "${policy.id}" does not accept`,
      );
    }
    if (budget.spent)
      return tooComplex(budget.spent.limit, `${budget.spent.detail} (trust store "${store.name}")`);
  }

  if (failure === undefined || failedStore === undefined) {
    return deny("untrusted_issuer", `policy "${policy.id}" accepts no trust store`);
  }
  return deny(failure.reason, `${failure.detail} (trust store "${failedStore.name}")`);
}

/**
 * Re-checks an allow decision's validity window at `now`, for cached decisions and long-lived
 * connections. Returns the very same object when nothing changed: this runs on every request.
 */
export function recheckValidity(decision: Decision, now: Date): Decision {
  if (!decision.allow) return decision;
  const t = wholeSecond(now.getTime());
  if (t >= decision.notBefore.getTime() && t <= decision.notAfter.getTime()) return decision;
  const { leaf, path, trustStore } = decision.identity;
  const where = ` (trust store "${trustStore}")`;
  if (t < decision.notBefore.getTime()) {
    const cert = [leaf, ...path].find((c) => c.notBefore.getTime() === decision.notBefore.getTime());
    // No certificate starts exactly then: the window was widened by the leaf's notBeforeGrace.
    const when = cert
      ? cert.notBefore.toISOString()
      : `${leaf.notBefore.toISOString()} (less notBeforeGrace)`;
    return deny(
      "certificate_not_yet_valid",
      `certificate ${certificateLabel(cert ?? leaf)} is not valid before ${when}${where}`,
    );
  }
  const cert = [leaf, ...path].find((c) => c.notAfter.getTime() === decision.notAfter.getTime()) ?? leaf;
  return deny(
    "certificate_expired",
    `certificate ${certificateLabel(cert)} expired at ${decision.notAfter.toISOString()}${where}`,
  );
}
