// The request path: SNI/Host binding (421) → path normalisation → route → auth policy (401/403) →
// identity headers → upstream. Each step answers with the gateway's own JSON when it stops a request.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { CompiledConfig, CompiledListener } from "../config/compile.ts";
import { EST_PREFIX } from "../enrollment/est-http.ts";
import type { EstDeps, EstService } from "../enrollment/est-service.ts";
import type { ReasonCode } from "../identity/reasons.ts";
import type { DeviceIdentity } from "../identity/types.ts";
import type { PluginRequest } from "../plugins/plugin.ts";
import type { RoutePlugins } from "../plugins/route-plugins.ts";
import { type Combined, responseHeaders, runAccess } from "../plugins/run.ts";
import { identityHeadersFor } from "../proxy/identity-headers.ts";
import { nextTraceContext, type TraceContext } from "../proxy/trace-context.ts";
import { normalizePeerAddress } from "../proxy/trusted-proxies.ts";
import type { ForwardRequest, Upstream } from "../proxy/upstream.ts";
import { isWebSocketUpgrade, openTunnel, upgradeOf, upgradeResponse } from "../proxy/websocket.ts";
import { normalizeName } from "../routing/names.ts";
import { ambiguousPathRefusal, normalizeRequestPath, type RequestPath } from "../routing/request-path.ts";
import type { CompiledRoute } from "../routing/route-table.ts";
import { sniAllowsHost } from "../routing/sni-binding.ts";
import { type ConnectionState, connectionStateOf, noteAnswer } from "../tls/connection-state.ts";
import type { GatewayRequest, GatewayResponse } from "../tls/listener.ts";
import { socketOf } from "../tls/listener.ts";
import { logAccess, nextRequestNumber, requestId } from "./access-log.ts";
import { type AuthorizeDeps, authorize, noteDecision, type Verdict } from "./authorize.ts";
import { diagnosticsReport } from "./diagnostics.ts";
import { elapsedMs, LATENCY_HEADER, sendDeny, sendJson, UPSTREAM_MESSAGES } from "./respond.ts";

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

export interface RequestHandlerDeps extends AuthorizeDeps {
  readonly config: CompiledConfig;
  readonly upstreams: ReadonlyMap<string, Upstream>;
  /** The plugin instances of this config's routes. */
  readonly plugins: RoutePlugins;
  /** The EST server, when the config enrolls devices. */
  readonly est: { readonly service: EstService; readonly deps: EstDeps } | undefined;
}

/**
 * The request's host: `:authority` on HTTP/2 (which must agree with a `host` header if both are sent), the
 * one Host header on HTTP/1.1. Several Host headers are refused (RFC 9112 §3.2): Node would keep the first,
 * another hop might read the last.
 */
function requestHost(req: GatewayRequest): string | undefined | null {
  const authority = req.headers[":authority"];
  const host = req.headers.host;
  if (typeof authority === "string") {
    if (typeof host === "string" && normalizeName(host) !== normalizeName(authority)) return null;
    return normalizeName(authority);
  }
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]?.length === 4 && req.rawHeaders[i]?.toLowerCase() === "host") hosts++;
  }
  return hosts > 1 ? null : normalizeName(host);
}

/** The path for a log line: the normalised one when known, else what was sent, without its query. */
function rawPath(req: GatewayRequest): string | undefined {
  const url = req.url;
  if (url === undefined) return undefined;
  const q = url.indexOf("?");
  return (q === -1 ? url : url.slice(0, q)).slice(0, 1024);
}

/** What an early answer's access log line needs of its request. */
interface EarlyAnswer {
  readonly deps: RequestHandlerDeps;
  readonly req: GatewayRequest;
  readonly res: GatewayResponse;
  readonly listener: CompiledListener;
  readonly state: ConnectionState | undefined;
  readonly startedAt: number;
  readonly requestNumber: number;
}

/** The access log line of an answer the gateway gave itself before a route's policy ran (when log.access is on). */
function accessRefused(
  a: EarlyAnswer,
  bytes: number,
  host: string | undefined | null,
  path: string | undefined,
  reason?: "sni_host_mismatch",
): void {
  if (!a.deps.config.accessLog) return;
  logAccess(a.deps.logger, {
    listener: a.listener.name,
    state: a.state,
    peerPort: socketOf(a.req)?.remotePort,
    host,
    method: a.req.method,
    path,
    route: undefined,
    status: a.res.statusCode,
    reason,
    deviceId: undefined,
    bytes,
    startedAt: a.startedAt,
    requestNumber: a.requestNumber,
  });
}

export function handleRequest(
  deps: RequestHandlerDeps,
  req: GatewayRequest,
  res: GatewayResponse,
  listener: CompiledListener,
): void {
  const startedAt = performance.now();
  const requestNumber = nextRequestNumber();
  const { logger } = deps;
  const socket = socketOf(req);
  const state = connectionStateOf(socket);
  const early: EarlyAnswer = { deps, req, res, listener, state, startedAt, requestNumber };
  if (!state) {
    // Every admitted connection has a state; without one, nothing may be decided.
    const bytes = sendJson(res, 500, { message: "An unexpected error occurred" }, startedAt);
    accessRefused(early, bytes, undefined, rawPath(req));
    return;
  }
  const host = requestHost(req);
  if (!host) {
    noteAnswer(state, "refused");
    const bytes = sendJson(
      res,
      400,
      { message: UPSTREAM_MESSAGES.badRequest, detail: "missing or invalid host" },
      startedAt,
    );
    accessRefused(early, bytes, host, rawPath(req));
    return;
  }
  if (!sniAllowsHost(state.identity.sni, host)) {
    const detail = `connection made for ${state.identity.sni ?? "no SNI"}, request for ${host}`;
    const record = noteDecision(
      deps,
      state,
      { allow: false, reason: "sni_host_mismatch", detail },
      { listener: listener.name, host, now: new Date() },
    );
    const path = rawPath(req);
    deps.denials.log(state.source, "request denied", {
      ...record,
      peer: state.peer,
      peerPort: socket?.remotePort,
      method: req.method,
      path,
      requestId: requestId(requestNumber),
    });
    noteAnswer(state, "refused");
    const bytes = sendDeny(res, "sni_host_mismatch", startedAt, listener.hideReason);
    accessRefused(early, bytes, host, path, "sni_host_mismatch");
    return;
  }
  const target = normalizeRequestPath(req.url);
  if (!target) {
    noteAnswer(state, "refused");
    const bytes = sendJson(
      res,
      400,
      { message: UPSTREAM_MESSAGES.badRequest, detail: "invalid request target" },
      startedAt,
    );
    accessRefused(early, bytes, host, rawPath(req));
    return;
  }
  if (target.path === listener.diagnosticsPath) {
    sendDiagnostics(deps, req, res, { listener, state, host, target, startedAt });
    return;
  }
  if (deps.est && target.path.startsWith(EST_PREFIX) && deps.est.service.serves(listener.name)) {
    serveEst(deps.est, { ...early, state }, host, target.path);
    return;
  }
  const method = req.method ?? "GET";
  const match = deps.config.routes.find(host, method, target.path);
  if (!match) {
    noteAnswer(state, "refused");
    const bytes = sendJson(res, 404, { message: UPSTREAM_MESSAGES.notFound }, startedAt);
    accessRefused(early, bytes, host, target.path);
    return;
  }
  const { route } = match;
  // Routed on the gateway's reading; a path an upstream could read otherwise goes on only where the route allows it.
  const ambiguous = ambiguousPathRefusal(
    target,
    route,
    (path) => deps.config.routes.find(host, method, path)?.route,
  );
  if (ambiguous !== undefined) {
    noteAnswer(state, "refused");
    const bytes = sendJson(res, 400, { message: UPSTREAM_MESSAGES.badRequest, detail: ambiguous }, startedAt);
    accessRefused(early, bytes, host, target.path);
    return;
  }
  // What the access log line needs once the answer is out: the verdict's reason or device, and the bytes.
  let reason: ReasonCode | undefined;
  let deviceId: string | undefined;
  let sent: { bytes?: number } | undefined;
  res.once("finish", () => {
    deps.metrics.observeRequest(route.name, res.statusCode, (performance.now() - startedAt) / 1000);
    if (!deps.config.accessLog) return;
    logAccess(logger, {
      listener: listener.name,
      state,
      peerPort: socket?.remotePort,
      host,
      method,
      path: target.path,
      route: route.name,
      status: res.statusCode,
      reason,
      deviceId,
      bytes: sent?.bytes,
      startedAt,
      requestNumber,
      traceId: to.trace.traceId,
    });
  });
  const to: ProxyTarget = {
    route: route.name,
    service: route.service,
    host,
    target,
    startedAt,
    trace: nextTraceContext(req.headers),
  };
  const done = (answered: { bytes?: number }, refused?: ReasonCode) => {
    sent = answered;
    if (refused !== undefined) reason = refused;
  };
  if (!route.policy) {
    noteAnswer(state, "passed");
    throughPlugins(deps, req, res, listener, to, route, undefined, done);
    return;
  }
  const verdict = authorize(
    deps,
    state,
    route.policy,
    {
      listener,
      route: route.name,
      host,
      method,
      path: target.path,
      peerPort: socket?.remotePort,
      requestNumber,
    },
    new Date(),
  );
  const proceed = (v: Verdict) => {
    // A report-only denial passes without an identity: it neither grants nor costs standing.
    noteAnswer(state, !v.allow ? "denied" : v.identity ? "allowed" : "passed");
    if (!v.allow) {
      reason = v.reason;
      sent = { bytes: sendDeny(res, v.reason, startedAt, listener.hideReason) };
      return;
    }
    deviceId = v.identity?.deviceId;
    throughPlugins(deps, req, res, listener, to, route, v.identity, done);
  };
  if (verdict instanceof Promise) {
    verdict.then(proceed, (err: unknown) => {
      logger.error({ err, route: route.name }, "authorization failure");
      sendJson(res, 500, { message: "An unexpected error occurred" }, startedAt);
    });
  } else {
    proceed(verdict);
  }
}

/**
 * An HTTP/1.1 `Upgrade` request (listener.ts), answered on its own socket: a WebSocket upgrade goes through
 * handleRequest like any request and, once allowed, into a tunnel (websocket.ts); any other upgrade is refused.
 * Every answer but the tunnel's 101 closes the connection.
 */
export function handleUpgrade(
  deps: RequestHandlerDeps,
  req: IncomingMessage,
  socket: TLSSocket,
  head: Buffer,
  listener: CompiledListener,
  opened: () => void,
): void {
  const res = upgradeResponse(req, { socket, head, opened });
  if (!isWebSocketUpgrade(req)) {
    const detail = "only WebSocket upgrades (GET with Upgrade: websocket) are supported";
    sendJson(res, 400, { message: UPSTREAM_MESSAGES.badRequest, detail }, performance.now());
    return;
  }
  handleRequest(deps, req, res, listener);
}

/** `/.well-known/est/…` on a listener that serves enrollment: answered by the EST server, never proxied. */
function serveEst(
  est: NonNullable<RequestHandlerDeps["est"]>,
  a: EarlyAnswer & { readonly state: ConnectionState },
  host: string,
  path: string,
): void {
  const { deps, req, res, listener, state, startedAt } = a;
  const ctx = { listener, state, host, path, bodyTimeoutMs: listener.limits.headersTimeout, startedAt };
  est.service.handle(est.deps, req, res, ctx).then(
    (outcome) => {
      deps.metrics.observeRequest(outcome.route, res.statusCode, (performance.now() - startedAt) / 1000);
      if (!deps.config.accessLog) return;
      logAccess(deps.logger, {
        listener: listener.name,
        state,
        peerPort: socketOf(req)?.remotePort,
        host,
        method: req.method,
        path,
        route: outcome.route,
        status: res.statusCode,
        reason: outcome.reason,
        deviceId: outcome.deviceId,
        bytes: outcome.bytes,
        startedAt,
        requestNumber: a.requestNumber,
      });
    },
    (err: unknown) => {
      deps.logger.error({ err }, "enrollment failure");
      sendJson(res, 500, { message: "An unexpected error occurred" }, startedAt);
    },
  );
}

interface ProxyTarget {
  readonly route: string;
  readonly service: string;
  readonly host: string;
  readonly target: RequestPath;
  readonly startedAt: number;
  /** W3C trace context for the upstream (trace-context.ts): the client's trace continued, or a new one. */
  readonly trace: TraceContext;
}

/**
 * The route's plugins (access phase), then the upstream with the headers they add; a plugin's refusal is the
 * gateway's JSON with its reason code. Without plugins, straight to the upstream.
 */
function throughPlugins(
  deps: RequestHandlerDeps,
  req: GatewayRequest,
  res: GatewayResponse,
  listener: CompiledListener,
  to: ProxyTarget,
  route: CompiledRoute,
  identity: DeviceIdentity | undefined,
  done: (sent: { bytes?: number }, reason?: ReasonCode) => void,
): void {
  const plugins = deps.plugins.for(route);
  if (plugins.length === 0) {
    done(proxy(deps, req, res, listener, to, identity, undefined));
    return;
  }
  const request: PluginRequest = {
    req,
    route: to.route,
    method: req.method ?? "GET",
    host: to.host,
    path: to.target.path,
    clientAddress: normalizePeerAddress(socketOf(req)?.remoteAddress),
    identity,
  };
  res.once("finish", () => {
    for (const plugin of plugins) plugin.log?.(request, res.statusCode);
  });
  const go = (outcome: Combined) => {
    if (outcome.kind === "deny") {
      done(
        { bytes: sendDeny(res, outcome.reason, to.startedAt, listener.hideReason, outcome.headers) },
        outcome.reason,
      );
      return;
    }
    if (outcome.kind === "respond") {
      (res as ServerResponse).writeHead(outcome.status, {
        ...outcome.headers,
        "content-length": "0",
        [LATENCY_HEADER]: elapsedMs(to.startedAt),
      });
      res.end();
      done({ bytes: 0 });
      return;
    }
    done(proxy(deps, req, res, listener, to, identity, responseHeaders(plugins, request, outcome.headers)));
  };
  const outcome = runAccess(plugins, request);
  if (outcome instanceof Promise) {
    outcome.then(go, (err: unknown) => {
      deps.logger.error({ err, route: to.route }, "plugin failure");
      done({ bytes: sendJson(res, 500, { message: "An unexpected error occurred" }, to.startedAt) });
    });
  } else {
    go(outcome);
  }
}

function proxy(
  deps: RequestHandlerDeps,
  req: GatewayRequest,
  res: GatewayResponse,
  listener: CompiledListener,
  to: ProxyTarget,
  identity: DeviceIdentity | undefined,
  responseHeaders: Readonly<Record<string, string>> | undefined,
): { bytes?: number } {
  const upstream = deps.upstreams.get(to.service);
  if (!upstream) {
    return { bytes: sendJson(res, 503, { message: UPSTREAM_MESSAGES.unavailable }, to.startedAt) };
  }
  const identityHeaders = identity ? identityHeadersFor(identity, deps.config.identityHeaders) : NO_HEADERS;
  const clientAddress = normalizePeerAddress(socketOf(req)?.remoteAddress);
  const forward: ForwardRequest = {
    req,
    res,
    method: req.method ?? "GET",
    path: to.target.query === "" ? to.target.path : `${to.target.path}?${to.target.query}`,
    host: to.host,
    clientAddress,
    deviceId: identity?.deviceId,
    readTimeoutMs: deps.config.routeTimeouts.get(to.route),
    trustedPeer: listener.trustedProxies?.has(clientAddress) ?? false,
    stripHeaders: deps.config.stripHeaders,
    identityHeaders,
    trace: to.trace,
    ...(responseHeaders ? { responseHeaders } : {}),
    startedAt: to.startedAt,
    // The response body bytes, counted only when the access log will write them.
    bytes: deps.config.accessLog ? 0 : undefined,
  };
  try {
    const upgrade = upgradeOf(req);
    if (upgrade)
      openTunnel(upstream, forward, upgrade, {
        route: to.route,
        metrics: deps.metrics,
        logger: deps.logger,
      });
    else upstream.forward(forward);
  } catch (err) {
    deps.logger.error({ err, route: to.route }, "proxy failure");
    return { bytes: sendJson(res, 502, { message: UPSTREAM_MESSAGES.badGateway }, to.startedAt) };
  }
  return forward;
}

/**
 * The installer diagnostics endpoint: what this connection presented and how the listener's policy (and,
 * with `?path=/x`, the policy of the route serving that path on this host) judges it. Details stay out
 * when the listener hides reasons.
 */
function sendDiagnostics(
  deps: RequestHandlerDeps,
  req: GatewayRequest,
  res: GatewayResponse,
  ctx: {
    listener: CompiledListener;
    state: ConnectionState;
    host: string;
    target: RequestPath;
    startedAt: number;
  },
): void {
  const now = new Date();
  const { listener, state } = ctx;
  const policies = listener.clientAuth === "off" ? [] : [listener.policy];
  const asked = new URLSearchParams(ctx.target.query).get("path");
  const route = asked?.startsWith("/") ? deps.config.routes.find(ctx.host, "GET", asked)?.route : undefined;
  if (route?.policy) policies.push(route.policy);
  const socket = socketOf(req);
  const report = diagnosticsReport({
    identity: state.identity,
    listener,
    decisions: policies.map((policy) => ({
      policy: policy.id,
      decision: deps.authenticator.decide(state.identity, policy, now),
    })),
    socket: {
      protocol: socket?.getProtocol() ?? null,
      cipher: socket?.getCipher()?.name,
      alpn: socket?.alpnProtocol ?? undefined,
      authorized: socket?.authorized ?? false,
      authorizationError: socket?.authorizationError ? String(socket.authorizationError) : undefined,
    },
    now,
    hideReasons: listener.hideReason,
  });
  sendJson(res, 200, report, ctx.startedAt);
}
