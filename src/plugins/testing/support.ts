// Shared by the plugins' unit tests: a PluginRequest without a socket, and a plugin env with its own metrics.

import { createLogger } from "../../gateway/log.ts";
import { GatewayMetrics } from "../../gateway/metrics.ts";
import type { DeviceIdentity } from "../../identity/types.ts";
import type { GatewayRequest } from "../../tls/listener.ts";
import type { PluginEnv, PluginRequest } from "../plugin.ts";

export function fakeRequest(options: {
  method?: string;
  headers?: Record<string, string>;
  clientAddress?: string;
  deviceId?: string;
  groups?: readonly string[];
  identity?: boolean;
}): PluginRequest {
  const identity =
    options.identity === false || (options.deviceId === undefined && options.groups === undefined)
      ? undefined
      : ({
          deviceId: options.deviceId,
          groups: options.groups,
          trustStore: "devices",
        } as unknown as DeviceIdentity);
  return {
    req: { headers: options.headers ?? {}, method: options.method ?? "GET" } as unknown as GatewayRequest,
    route: "r",
    method: options.method ?? "GET",
    host: "h",
    path: "/",
    clientAddress: options.clientAddress ?? "127.0.0.1",
    identity,
  };
}

export function fakeEnv(scope = "route:r"): PluginEnv {
  return { metrics: new GatewayMetrics({ defaultMetrics: false }), logger: createLogger("silent"), scope };
}
