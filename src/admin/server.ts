// The admin listener: its own HTTP(S) server (loopback by default), every call behind the bearer token
// (and, with TLS and `requestCert`, a client certificate from the admin trust stores), JSON in and out.
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { sendJson } from "../gateway/respond.ts";
import { bearerTokenMatches } from "./auth.ts";
import { AdminMetrics } from "./console/admin-metrics.ts";
import { registerConsoleRoutes } from "./console/console-routes.ts";
import { DecisionSummary } from "./console/decision-summary.ts";
import { DecisionStreams } from "./console/event-stream.ts";
import { defaultConsoleDir } from "./console/package-root.ts";
import { ConsoleSessions, isSessionPath, unauthorized } from "./console/session.ts";
import { DEFAULT_SESSION_LIMITS } from "./console/session-store.ts";
import { ConsoleFiles, isStaticPath } from "./console/static-files.ts";
import { registerDeviceRoutes } from "./devices-routes.ts";
import { registerEnrollmentRoutes } from "./enrollment-routes.ts";
import { HttpError, toHttpError } from "./errors.ts";
import { registerExpiringRoute } from "./expiring-route.ts";
import { registerImportRoute } from "./import.ts";
import type { AdminOptions } from "./options.ts";
import { AdminRouter } from "./router.ts";
import { HEALTH_PATHS, registerSystemRoutes } from "./system-routes.ts";

export type { AdminOptions, AdminStatus, AdminTls, ReadinessCheck, ReloadStatus } from "./options.ts";

const SERVER_TIMEOUTS = { headersTimeout: 10_000, requestTimeout: 300_000 };

/** What the admin listener keeps besides the router: the console's sessions, streams, summary and metrics. */
export interface AdminParts {
  readonly metrics: AdminMetrics;
  readonly summary: DecisionSummary;
  readonly streams: DecisionStreams;
  /** Undefined when the console is off (admin.console.enabled false). */
  readonly sessions: ConsoleSessions | undefined;
}

function adminParts(options: AdminOptions): AdminParts {
  const settings = options.console ?? {};
  const metrics = new AdminMetrics();
  const streams = new DecisionStreams({
    decisions: options.decisions,
    maxStreams: settings.maxEventStreams,
    heartbeatMs: settings.heartbeatMs,
    metrics,
  });
  return {
    metrics,
    summary: new DecisionSummary(options.decisions),
    streams,
    sessions:
      settings.enabled === false
        ? undefined
        : new ConsoleSessions({
            token: options.token,
            secure: options.tls !== undefined,
            ended: () => streams.endUnauthorized(),
            limits: {
              ttlMs: settings.sessionTtl ?? DEFAULT_SESSION_LIMITS.ttlMs,
              idleMs: settings.sessionIdleTimeout ?? DEFAULT_SESSION_LIMITS.idleMs,
              maxSessions: settings.maxSessions ?? DEFAULT_SESSION_LIMITS.maxSessions,
            },
          }),
  };
}

/** The admin API's routes, registered on one router (also what the OpenAPI test walks). */
export function adminRouter(options: AdminOptions, parts: AdminParts = adminParts(options)): AdminRouter {
  const router = new AdminRouter();
  registerSystemRoutes(router, options, () => parts.metrics.text());
  registerExpiringRoute(router, options); // before /devices/{id}, which it takes precedence over
  registerConsoleRoutes(router, options, parts);
  registerDeviceRoutes(router, options);
  if (options.enrollmentStore) registerEnrollmentRoutes(router, options.enrollmentStore, options);
  registerImportRoute(router, options);
  parts.sessions?.register(router);
  return router;
}

function createServer(
  options: AdminOptions,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
): Server {
  if (!options.tls) return createHttpServer(SERVER_TIMEOUTS, handle);
  const { cert, key, ca, requestCert = ca !== undefined } = options.tls;
  if (requestCert && ca === undefined)
    throw new Error("admin TLS: requestCert needs the admin trust stores (ca)");
  return createHttpsServer(
    {
      ...SERVER_TIMEOUTS,
      cert,
      key,
      ca,
      requestCert,
      rejectUnauthorized: requestCert,
      minVersion: "TLSv1.2",
    },
    handle,
  );
}

/** A body left unread (refused before reading it) is not drained: the connection is closed instead. */
function closeIfUnread(req: IncomingMessage): Record<string, string> {
  const hasBody =
    req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
  return hasBody && !req.readableEnded ? { connection: "close" } : {};
}

export class AdminServer {
  readonly #server: Server;
  readonly #options: AdminOptions;
  readonly #router: AdminRouter;
  readonly #requireClientCert: boolean;
  readonly #parts: AdminParts;
  readonly #files: ConsoleFiles | undefined;

  constructor(options: AdminOptions) {
    this.#options = options;
    this.#parts = adminParts(options);
    this.#router = adminRouter(options, this.#parts);
    this.#files = this.#parts.sessions
      ? new ConsoleFiles(options.console?.dir ?? defaultConsoleDir())
      : undefined;
    this.#requireClientCert = options.tls ? (options.tls.requestCert ?? options.tls.ca !== undefined) : false;
    this.#server = createServer(options, (req, res) => {
      void this.#handle(req, res);
    });
  }

  get router(): AdminRouter {
    return this.#router;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = performance.now();
    try {
      const url = new URL(req.url ?? "/", "http://admin.invalid");
      // Probes answer without the token (they reveal only ok / not ready), unless configured otherwise;
      // a client certificate, when the admin listener asks for one, is still required.
      const probe = (this.#options.publicHealth ?? true) && HEALTH_PATHS.has(url.pathname);
      // The console's files hold no data and its login takes the token in the body: no bearer needed.
      if (this.#files && isStaticPath(url.pathname)) {
        this.#authorizeClientCert(req);
        await this.#files.serve(req.method ?? "GET", url.pathname, res, startedAt);
        return;
      }
      const session = this.#parts.sessions !== undefined && isSessionPath(url.pathname);
      if (probe || session) this.#authorizeClientCert(req);
      else this.#authorize(req);
      const match = this.#router.match(req.method ?? "GET", url.pathname);
      if (match.kind === "not-found") throw new HttpError(404, "Not found");
      if (match.kind === "wrong-method") {
        throw new HttpError(405, "Method not allowed", { headers: { allow: match.allow.join(", ") } });
      }
      await match.handler({ req, res, params: match.params, query: url.searchParams, startedAt });
    } catch (err) {
      // The client went away mid-body (e.g. an import cancelled): nobody is left to answer.
      if (res.destroyed) return;
      const httpError = toHttpError(err);
      if (httpError) {
        sendJson(res, httpError.status, httpError.body, startedAt, {
          ...closeIfUnread(req),
          ...httpError.headers,
        });
        return;
      }
      this.#options.logger?.error(
        { err, method: req.method, path: req.url?.split("?")[0] },
        "admin API error",
      );
      sendJson(res, 500, { message: "Internal server error" }, startedAt);
    }
  }

  #authorizeClientCert(req: IncomingMessage): void {
    // The handshake already refused unverified clients; this guards against a TLS option slipping.
    if (this.#requireClientCert && !(req.socket as TLSSocket).authorized) {
      throw new HttpError(401, "A client certificate from the admin trust stores is required", {
        headers: { connection: "close" },
      });
    }
  }

  /** The bearer token, or a session cookie (with, on a change, its CSRF token and the own origin). */
  #authorize(req: IncomingMessage): void {
    this.#authorizeClientCert(req);
    if (bearerTokenMatches(req, this.#options.token)) return;
    if (this.#parts.sessions?.authorize(req)) return;
    throw unauthorized();
  }

  listen(host = this.#options.host, port = this.#options.port): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    this.#parts.streams.closeAll();
    this.#parts.summary.close();
    this.#parts.sessions?.store.clear();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
