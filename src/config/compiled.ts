// The compiled config: frozen runtime objects, types only. `compile.ts` builds them from a validated config.

import type { DenialSampling } from "../gateway/denial-log.ts";
import type { Certificate } from "../identity/certificate.ts";
import type { ChainLimits } from "../identity/limits.ts";
import type { AuthPolicy, TrustStore } from "../identity/types.ts";
import type { IdentityHeaderOptions } from "../proxy/identity-headers.ts";
import type { HeaderPatterns } from "../proxy/request-headers.ts";
import type { TrustedProxies } from "../proxy/trusted-proxies.ts";
import type { UpstreamOptions } from "../proxy/upstream.ts";
import type { RouteTable } from "../routing/route-table.ts";
import type { CompiledEnrollment } from "./compile-enrollment.ts";
import type { ClientAuthMode, Config, ListenerConfig } from "./schema.ts";

export interface ServerCertificate {
  /** Normalised SNI names and `*.` patterns this certificate serves. */
  readonly names: readonly string[];
  /** Leaf followed by the chain, PEM. */
  readonly certPem: string;
  readonly keyPem: string;
  readonly leaf: Certificate;
}

/** An MQTT listener's bridge: the broker, the device policy, identity and topic rules, limits. */
export interface CompiledMqtt {
  readonly broker: { readonly host: string; readonly port: number };
  readonly policy: AuthPolicy;
  readonly clientId: "replace" | "refuse";
  readonly username: "replace" | "refuse" | "keep";
  /** Allow-lists with `{deviceId}` / `{group}` placeholders, as configured. */
  readonly topics: { readonly publish: readonly string[]; readonly subscribe: readonly string[] };
  readonly connectTimeoutMs: number;
  readonly maxConnectBytes: number;
  readonly maxPacketBytes: number;
  readonly brokerConnectTimeoutMs: number;
}

export interface CompiledListener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly protocol: "http" | "mqtt";
  /** Set on (and only on) an mqtt listener. */
  readonly mqtt?: CompiledMqtt;
  readonly clientAuth: ClientAuthMode;
  readonly sendCaNames: boolean;
  readonly hideReason: boolean;
  /** The first one is the default. */
  readonly certificates: readonly ServerCertificate[];
  readonly trustStores: readonly TrustStore[];
  /** Accepts a chain from any of the listener's trust stores: the handshake-mode verdict. */
  readonly policy: AuthPolicy;
  readonly limits: ListenerConfig["limits"];
  /** Path of the installer diagnostics endpoint; undefined when off. */
  readonly diagnosticsPath: string | undefined;
  /** Peers whose X-Forwarded-For and Via are extended rather than replaced; absent means none. */
  readonly trustedProxies?: TrustedProxies;
  /** PROXY protocol before TLS, from these sources only; absent means off. */
  readonly proxyProtocol?: { readonly trustedSources: TrustedProxies };
}

export interface CompiledConfig {
  readonly file: string;
  readonly generation: number;
  /** Every file the config read (certificates, keys, CA and CRL files): a change of one triggers a reload. */
  readonly files: readonly string[];
  readonly listeners: readonly CompiledListener[];
  readonly trustStores: readonly TrustStore[];
  /** What a client may present and what one uncached decision may cost. */
  readonly chainLimits: ChainLimits;
  readonly services: readonly UpstreamOptions[];
  /** Routes with a `timeout` of their own: milliseconds by route name (in place of the service's readTimeout). */
  readonly routeTimeouts: ReadonlyMap<string, number>;
  readonly routes: RouteTable;
  /** EST enrollment (`/.well-known/est/`); undefined when off. */
  readonly enrollment: CompiledEnrollment | undefined;
  readonly identityHeaders: IdentityHeaderOptions;
  /** Client headers never forwarded: the built-in list plus the config's stripHeaders. */
  readonly stripHeaders: HeaderPatterns;
  readonly admin: CompiledAdmin | undefined;
  readonly store: Config["store"] & { readonly url: string };
  readonly logLevel: Config["log"]["level"];
  readonly denialSampling: DenialSampling;
  /** `log.access`: one log line per answered request. */
  readonly accessLog: boolean;
}

export interface CompiledAdmin {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  readonly decisionsKept: number;
  /** GET /healthz and /readyz without the token. */
  readonly publicHealth: boolean;
  /** Admin over TLS; `ca` (PEM of the admin trust stores) set when a client certificate is required. */
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string | undefined } | undefined;
  /** The web console and its sessions (durations in milliseconds). */
  readonly console: CompiledConsole;
}

export interface CompiledConsole {
  readonly enabled: boolean;
  readonly sessionTtl: number;
  readonly sessionIdleTimeout: number;
  readonly maxSessions: number;
  readonly maxEventStreams: number;
}
