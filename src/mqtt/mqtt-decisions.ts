// How an MQTT listener's sessions are judged and recorded with the gateway's own machinery: the CONNECT goes
// through authorize() (engine, registry, report-only, decision log, sampled refusal log) as route
// `mqtt:<listener>`; later refusals (topics, client ids, a verdict that changed) are decisions of that route too.
import type { CompiledListener } from "../config/compile.ts";
import { type AuthorizeDeps, authorize, noteDecision } from "../gateway/authorize.ts";
import type { ReasonCode } from "../identity/reasons.ts";
import type { ConnectionState } from "../tls/connection-state.ts";
import type { MqttSessionDeps } from "./mqtt-session.ts";

/** The decision route of an MQTT listener: `mqtt:<listener name>`. */
export function mqttRoute(listener: CompiledListener): string {
  return `mqtt:${listener.name}`;
}

function policyOf(listener: CompiledListener) {
  const policy = listener.mqtt?.policy;
  if (!policy) throw new Error(`listener "${listener.name}" is not an mqtt listener`);
  return policy;
}

/** The session dependencies, reading the runtime (which a reload swaps) at each call. */
export function mqttSessionDeps(
  runtime: () => AuthorizeDeps,
): Omit<MqttSessionDeps, "authenticated" | "connectLimitHit"> {
  return {
    get logger() {
      return runtime().logger;
    },
    authorize(state: ConnectionState, listener: CompiledListener) {
      return authorize(
        runtime(),
        state,
        policyOf(listener),
        {
          listener,
          route: mqttRoute(listener),
          host: state.identity.sni ?? listener.host,
          method: "CONNECT",
        },
        new Date(),
      );
    },
    recheck(state: ConnectionState, listener: CompiledListener) {
      return runtime().authenticator.decideForConnection(state, policyOf(listener), new Date());
    },
    refused(state: ConnectionState, listener: CompiledListener, reason: ReasonCode, detail: string) {
      const deps = runtime();
      const record = noteDecision(
        deps,
        state,
        { allow: false, reason, detail },
        {
          listener: listener.name,
          route: mqttRoute(listener),
          ...(state.deviceId !== undefined ? { deviceId: state.deviceId } : {}),
          now: new Date(),
        },
      );
      deps.denials.log(state.source, "request denied", { ...record, peer: state.peer, protocol: "mqtt" });
    },
  };
}
