// The plugin interface. A plugin is a folder under src/plugins/ with its config schema (zod) and its
// handler; configured per route or per service, it is compiled once at load and at reload, and runs in
// named phases of the request path:
//   access    after routing and authentication, before the upstream: continue (optionally adding response
//             headers), deny with a reason code (the gateway's JSON), or answer itself (a CORS preflight);
//   response  headers added to the answer, upstream's or the gateway's own;
//   log       once the answer is out, with its status.
import type { z } from "zod";
import type { Logger } from "../gateway/log.ts";
import type { GatewayMetrics } from "../gateway/metrics.ts";
import type { ReasonCode } from "../identity/reasons.ts";
import type { DeviceIdentity } from "../identity/types.ts";
import type { GatewayRequest } from "../tls/listener.ts";

/** What a plugin sees of a request: routed, and authenticated when the route has a policy. */
export interface PluginRequest {
  readonly req: GatewayRequest;
  readonly route: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  /** The client's address (the direct peer, normalised). */
  readonly clientAddress: string;
  /** The device, when the route's policy allowed an identity; undefined on public routes. */
  readonly identity: DeviceIdentity | undefined;
}

export type AccessOutcome =
  /** Go on to the next plugin and the upstream; `headers` are added to the answer. */
  | { readonly kind: "continue"; readonly headers?: Readonly<Record<string, string>> }
  /** Refuse with the gateway's JSON (`message` and `reason` as every denial). */
  | {
      readonly kind: "deny";
      readonly reason: ReasonCode;
      readonly detail: string;
      readonly headers?: Readonly<Record<string, string>>;
    }
  /** Answer without the upstream (a CORS preflight). */
  | {
      readonly kind: "respond";
      readonly status: number;
      readonly headers: Readonly<Record<string, string>>;
    };

export interface Plugin {
  readonly name: string;
  access?(request: PluginRequest): AccessOutcome | undefined | Promise<AccessOutcome | undefined>;
  /** Headers for the answer (after `access` let the request go on). */
  response?(request: PluginRequest): Readonly<Record<string, string>> | undefined;
  log?(request: PluginRequest, status: number): void;
  /** Releases what the plugin holds (timers, connections) when its config is replaced. */
  close?(): Promise<void> | void;
}

/** What a plugin may use besides its config. */
export interface PluginEnv {
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** Where the plugin is configured, for metric labels and logs: `route:<name>` or `service:<name>`. */
  readonly scope: string;
}

export interface PluginFactory<S extends z.ZodType = z.ZodType> {
  readonly name: string;
  /** Lower runs first (IP restrictions before rate limits before size limits …). */
  readonly priority: number;
  readonly schema: S;
  create(config: z.output<S>, env: PluginEnv): Plugin;
}
