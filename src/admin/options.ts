// What the admin listener is given by the gateway: where to listen, the token, and the live parts it
// exposes (device store, decision log, metrics, status).
import type { DecisionLog } from "../gateway/decision-log.ts";
import type { SeenCertificate } from "../gateway/fleet-expiry.ts";
import type { Logger } from "../gateway/log.ts";
/** Prometheus text: one gateway's metrics, or (under --workers) every worker's, aggregated by the primary. */
export interface MetricsSource {
  text(): Promise<string>;
  readonly contentType: string;
}

import type { CompiledEnrollment } from "../config/compile-enrollment.ts";
import type { EnrollmentStore } from "../registry/enrollment-types.ts";
import type { DeviceStore } from "../registry/types.ts";
import type { TrustSource } from "./console/trust.ts";

export interface AdminStatus {
  readonly status: "ok" | "draining";
  readonly version: string;
  readonly uptimeSeconds: number;
  readonly listeners: readonly { name: string; address: string; port: number; clientAuth: string }[];
  readonly lastReload?: ReloadStatus;
  /** Open device connections on every listener (under --workers, the sum of the workers'). */
  readonly connections?: { readonly open: number };
}

/** The web console (`admin.console`); durations in milliseconds. Every field has a default. */
export interface AdminConsoleOptions {
  /** false: no /console/* and no session cookies (the bearer token still works). Default true. */
  readonly enabled?: boolean;
  /** Absolute session lifetime; default 12 h. */
  readonly sessionTtl?: number;
  /** Idle timeout of a session; default 30 min. */
  readonly sessionIdleTimeout?: number;
  /** Sessions at once (oldest evicted); default 64. */
  readonly maxSessions?: number;
  /** Concurrent GET /decisions/stream; default 16. */
  readonly maxEventStreams?: number;
  /** Heartbeat of the decision streams; default 15 s (tests use less). */
  readonly heartbeatMs?: number;
  /** Where the built console is; default dist/console/ of the package. */
  readonly dir?: string;
}

/** When the gateway last loaded its config again (absent until the first reload). */
export interface ReloadStatus {
  readonly result: "ok" | "error";
  /** ISO 8601. */
  readonly at: string;
  /** Why the new config was rejected (the old one kept serving). */
  readonly error?: string;
}

/** One readiness check for GET /readyz: `config`, `listeners`, `store`. */
export interface ReadinessCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail?: string;
}

export interface AdminTls {
  /** PEM of the admin server certificate (chain) and its key. */
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** PEM of the admin trust stores' CA certificates; needed by `requestCert`. */
  readonly ca?: string | Buffer;
  /**
   * Require a client certificate issued under `ca`, refused at the handshake (on top of the token). Defaults
   * to true when `ca` is given: admin trust stores are configured to be used.
   */
  readonly requestCert?: boolean;
}

export interface AdminOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  readonly status: () => AdminStatus;
  /**
   * Readiness checks for GET /readyz besides the store's (which the admin server adds): config loaded,
   * listeners bound. None: ready as soon as the admin listener answers.
   */
  readonly readiness?: () => readonly ReadinessCheck[];
  /** GET /healthz and GET /readyz answer without the bearer token (`admin.publicHealth`; default true). */
  readonly publicHealth?: boolean;
  readonly store: DeviceStore;
  /** Enrollment tokens and issued certificates (the same store, as the gateway opens it); absent: no such routes. */
  readonly enrollmentStore?: EnrollmentStore;
  /** The enrollment profiles of the config now serving (token lifetimes); undefined when enrollment is off. */
  readonly enrollment?: () => CompiledEnrollment | undefined;
  readonly decisions: DecisionLog;
  readonly metrics: MetricsSource;
  /** The certificates this node saw devices present (GET /fleet/expiring); none under --workers' primary. */
  readonly fleet?: { current(now: number): readonly SeenCertificate[] };
  readonly tls?: AdminTls;
  /** The web console and its sessions. */
  readonly console?: AdminConsoleOptions;
  /** The trust stores and revocation data GET /trust shows; absent: none. */
  readonly trust?: () => TrustSource | Promise<TrustSource>;
  /** Unexpected errors (answered 500) are logged here; requests and tokens never are. */
  readonly logger?: Logger;
  /** Cap of a JSON body; 1 MiB by default. */
  readonly maxJsonBytes?: number;
  /** Cap of a POST /devices/import body; 256 MiB by default. */
  readonly maxImportBytes?: number;
}
