// Compiles an MQTT listener's `mqtt` options: the broker address, the device policy (as a route's auth),
// and the identity and topic rules; an http listener may not have them, an mqtt listener must.
import type { TrustStore } from "../identity/types.ts";
import type { Problems } from "./compile-context.ts";
import { compileAuthPolicy } from "./compile-policy.ts";
import type { CompiledMqtt } from "./compiled.ts";
import type { FieldPath } from "./errors.ts";
import type { ListenerConfig } from "./schema.ts";

const DEFAULT_MQTT_PORT = 1883;

export function compileMqtt(
  spec: ListenerConfig,
  at: FieldPath,
  generation: number,
  storeRef: (name: string, path: FieldPath) => TrustStore | undefined,
  problems: Problems,
): CompiledMqtt | undefined {
  if (spec.protocol === "http") {
    if (spec.mqtt) problems.add([...at, "mqtt"], "`mqtt` is for listeners with `protocol: mqtt`");
    return undefined;
  }
  if (spec.diagnostics) problems.add([...at, "diagnostics"], "diagnostics are served on http listeners only");
  const options = spec.mqtt;
  if (!options) {
    problems.add(
      [...at, "mqtt"],
      "an mqtt listener needs `mqtt`: the broker, the auth policy and the topic rules",
    );
    return undefined;
  }
  const broker = new URL(options.broker);
  if (broker.pathname !== "" && broker.pathname !== "/") {
    problems.add([...at, "mqtt", "broker"], "expected mqtt://host:port, without a path");
  }
  const policy = compileAuthPolicy(
    options.auth,
    `mqtt:${spec.name}#${generation}`,
    [...at, "mqtt", "auth"],
    storeRef,
    problems,
  );
  if (spec.clientAuth === "off") {
    problems.add(
      [...at, "clientAuth"],
      "an mqtt listener authenticates devices by certificate: use `handshake` or `application`",
    );
  }
  return Object.freeze({
    broker: { host: broker.hostname.replace(/^\[|\]$/g, ""), port: Number(broker.port || DEFAULT_MQTT_PORT) },
    policy,
    clientId: options.clientId,
    username: options.username,
    topics: { publish: [...options.topics.publish], subscribe: [...options.topics.subscribe] },
    connectTimeoutMs: options.connectTimeout,
    maxConnectBytes: options.maxConnectBytes,
    maxPacketBytes: options.maxPacketBytes,
    brokerConnectTimeoutMs: options.brokerConnectTimeout,
  });
}
