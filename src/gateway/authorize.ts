// The auth policy step of the request path: the identity engine's verdict on the connection's chain, then
// the registry (when the policy asks for it), then enforcement (or report-only), recorded in the decision
// log, the metrics and the log. Synchronous when everything is cached; a Promise only when a lookup waits.
import type { CompiledListener } from "../config/compile.ts";
import type { ReasonCode } from "../identity/reasons.ts";
import type { AuthPolicy, Decision, DeviceIdentity } from "../identity/types.ts";
import type { ConnectionState } from "../tls/connection-state.ts";
import { requestId } from "./access-log.ts";
import type { Authenticator } from "./authenticator.ts";
import {
  type DecisionContext,
  type DecisionLog,
  type DecisionOutcome,
  type DecisionRecord,
  toDecisionRecord,
} from "./decision-log.ts";
import type { DenialLog } from "./denial-log.ts";
import type { Logger } from "./log.ts";
import type { GatewayMetrics } from "./metrics.ts";

/** What the request path does with a request: pass (with the identity, if any) or deny. */
export type Verdict =
  | { readonly allow: true; readonly identity: DeviceIdentity | undefined }
  | { readonly allow: false; readonly reason: ReasonCode; readonly detail: string };

/** The registry's say on an identity the engine accepted (see registry-gate.ts). */
export type RegistryOutcome =
  | { readonly allow: true; readonly deviceId: string | undefined; readonly groups: readonly string[] }
  | { readonly allow: false; readonly reason: ReasonCode; readonly detail: string };

export interface RegistryGate {
  check(identity: DeviceIdentity, policy: AuthPolicy, now: Date): RegistryOutcome | Promise<RegistryOutcome>;
}

export interface AuthorizeDeps {
  readonly authenticator: Authenticator;
  readonly registry: RegistryGate | undefined;
  readonly decisions: DecisionLog;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  readonly denials: DenialLog;
}

export interface AuthorizeContext {
  readonly listener: CompiledListener;
  readonly route: string;
  readonly host: string;
  /** For the refusal's log line: the request and the client's port (its address is on the connection). */
  readonly method?: string;
  readonly path?: string;
  readonly peerPort?: number;
  readonly requestNumber?: number;
}

export function authorize(
  deps: AuthorizeDeps,
  state: ConnectionState,
  policy: AuthPolicy,
  ctx: AuthorizeContext,
  now: Date,
): Verdict | Promise<Verdict> {
  const decision = deps.authenticator.decideForConnection(state, policy, now);
  return decision instanceof Promise
    ? decision.then((d) => afterEngine(deps, state, policy, ctx, now, d))
    : afterEngine(deps, state, policy, ctx, now, decision);
}

function afterEngine(
  deps: AuthorizeDeps,
  state: ConnectionState,
  policy: AuthPolicy,
  ctx: AuthorizeContext,
  now: Date,
  decision: Decision,
): Verdict | Promise<Verdict> {
  if (!decision.allow) return conclude(deps, state, policy, ctx, now, decision);
  const identity = decision.identity;
  if (!deps.registry || (policy.registry ?? "off") === "off") {
    return conclude(deps, state, policy, ctx, now, { allow: true, identity });
  }
  const outcome = deps.registry.check(identity, policy, now);
  const withRegistry = (r: RegistryOutcome): Verdict => {
    if (!r.allow) return conclude(deps, state, policy, ctx, now, r);
    if (r.deviceId !== undefined) state.deviceId = r.deviceId;
    return conclude(deps, state, policy, ctx, now, { allow: true, identity: withDevice(state, identity, r) });
  };
  return outcome instanceof Promise ? outcome.then(withRegistry) : withRegistry(outcome);
}

/**
 * The engine's identity with the registry's device id and groups; the same object for as long as neither
 * changes on this connection, so that what is derived from it (identity headers) is computed once.
 */
function withDevice(
  state: ConnectionState,
  identity: DeviceIdentity,
  r: { readonly deviceId: string | undefined; readonly groups: readonly string[] },
): DeviceIdentity {
  if (r.deviceId === identity.deviceId && r.groups.length === 0) return identity;
  const last = state.withDevice;
  if (last?.base === identity && last.deviceId === r.deviceId && last.groups === r.groups) return last.merged;
  const merged: DeviceIdentity = { ...identity, deviceId: r.deviceId ?? identity.deviceId, groups: r.groups };
  state.withDevice = { base: identity, deviceId: r.deviceId, groups: r.groups, merged };
  return merged;
}

/** Records the verdict and applies the policy's enforcement: report-only lets a denial pass, without identity. */
function conclude(
  deps: AuthorizeDeps,
  state: ConnectionState,
  policy: AuthPolicy,
  ctx: AuthorizeContext,
  now: Date,
  verdict: Verdict,
): Verdict {
  const reportOnly = policy.enforce === "report-only";
  const outcome: DecisionOutcome =
    verdict.allow && verdict.identity
      ? { allow: true, identity: verdict.identity }
      : (verdict as DecisionOutcome);
  const record = noteDecision(deps, state, outcome, {
    listener: ctx.listener.name,
    route: ctx.route,
    host: ctx.host,
    enforce: policy.enforce,
    now,
  });
  if (verdict.allow) {
    // The fleet's certificate expiry: one map read per request, a write every few seconds per device.
    const admitted = verdict.identity;
    if (admitted?.deviceId !== undefined)
      deps.metrics.fleet.seen(admitted.deviceId, admitted.leaf, now.getTime());
    return verdict;
  }
  deps.denials.log(state.source, reportOnly ? "request would be denied (report-only)" : "request denied", {
    ...record,
    peer: state.peer,
    peerPort: ctx.peerPort,
    method: ctx.method,
    path: ctx.path,
    requestId: ctx.requestNumber === undefined ? undefined : requestId(ctx.requestNumber),
  });
  return reportOnly ? { allow: true, identity: undefined } : verdict;
}

/** Records a decision on a connection in the decision log and the metrics; returns the record (for the log). */
export function noteDecision(
  deps: Pick<AuthorizeDeps, "decisions" | "metrics">,
  state: ConnectionState,
  outcome: DecisionOutcome,
  ctx: Omit<DecisionContext, "sni" | "resumed" | "leaf">,
): DecisionRecord {
  const { identity } = state;
  const record = toDecisionRecord(outcome, {
    ...ctx,
    sni: identity.sni,
    resumed: identity.resumed,
    leaf: identity.leaf,
  });
  deps.decisions.record(record);
  deps.metrics.recordDecision(record);
  return record;
}
