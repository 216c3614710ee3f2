// The request path: SNI/Host binding (421) → path normalisation → route → auth policy (401/403) →
// identity headers → upstream. Each step answers with the gateway's own JSON when it stops a request.
import type { CompiledConfig, CompiledListener } from "../config/compile.ts";
import type { ReasonCode } from "../identity/reasons.ts";
import type { DeviceIdentity } from "../identity/types.ts";
import { buildIdentityHeaders } from "../proxy/identity-headers.ts";
import type { Upstream } from "../proxy/upstream.ts";
import { normalizeName } from "../routing/names.ts";
import { normalizeRequestPath } from "../routing/request-path.ts";
import { sniAllowsHost } from "../routing/sni-binding.ts";
import { connectionStateOf } from "../tls/connection-state.ts";
import type { GatewayRequest, GatewayResponse } from "../tls/listener.ts";
import { socketOf } from "../tls/listener.ts";
import type { Authenticator } from "./authenticator.ts";
import type { Logger } from "./log.ts";
import { sendDeny, sendJson, UPSTREAM_MESSAGES } from "./respond.ts";

export interface RequestHandlerDeps {
  readonly config: CompiledConfig;
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly authenticator: Authenticator;
  readonly logger: Logger;
}

/** The request's host: `:authority` on HTTP/2 (which must agree with a `host` header if both are sent). */
function requestHost(req: GatewayRequest): string | undefined | null {
  const authority = req.headers[":authority"];
  const host = req.headers.host;
  if (typeof authority === "string") {
    if (typeof host === "string" && normalizeName(host) !== normalizeName(authority)) return null;
    return normalizeName(authority);
  }
  return normalizeName(host);
}

export function handleRequest(
  deps: RequestHandlerDeps,
  req: GatewayRequest,
  res: GatewayResponse,
  listener: CompiledListener,
): void {
  const startedAt = performance.now();
  const { logger } = deps;
  const socket = socketOf(req);
  const state = connectionStateOf(socket);
  if (!state) {
    // Every admitted connection has a state; without one, nothing may be decided.
    sendJson(res, 500, { message: "An unexpected error occurred" }, startedAt);
    return;
  }
  const host = requestHost(req);
  if (!host) {
    sendJson(
      res,
      400,
      { message: UPSTREAM_MESSAGES.badRequest, detail: "missing or invalid host" },
      startedAt,
    );
    return;
  }
  const deny = (reason: ReasonCode, fields: Record<string, unknown>) => {
    logger.info(
      { reason, listener: listener.name, sni: state.identity.sni, host, ...fields },
      "request denied",
    );
    sendDeny(res, reason, startedAt, listener.hideReason);
  };
  if (!sniAllowsHost(state.identity.sni, host)) {
    deny("sni_host_mismatch", { path: req.url });
    return;
  }
  const target = normalizeRequestPath(req.url);
  if (!target) {
    sendJson(
      res,
      400,
      { message: UPSTREAM_MESSAGES.badRequest, detail: "invalid request target" },
      startedAt,
    );
    return;
  }
  const method = req.method ?? "GET";
  const match = deps.config.routes.find(host, method, target.path);
  if (!match) {
    sendJson(res, 404, { message: UPSTREAM_MESSAGES.notFound }, startedAt);
    return;
  }
  const { route } = match;
  let identity: DeviceIdentity | undefined;
  if (route.policy) {
    const decision = deps.authenticator.decideForConnection(state, route.policy, new Date());
    if (!decision.allow) {
      deny(decision.reason, {
        route: route.name,
        detail: decision.detail,
        fingerprint: state.identity.leaf?.fingerprint,
        subject: state.identity.leaf?.subject,
      });
      return;
    }
    identity = decision.identity;
  }
  const upstream = deps.upstreams.get(route.service);
  if (!upstream) {
    sendJson(res, 503, { message: UPSTREAM_MESSAGES.unavailable }, startedAt);
    return;
  }
  const identityHeaders = identity ? buildIdentityHeaders(identity, deps.config.identityHeaders) : {};
  upstream
    .forward({
      req,
      res,
      method,
      path: target.query === "" ? target.path : `${target.path}?${target.query}`,
      host,
      clientAddress: socket?.remoteAddress ?? "",
      identityHeaders,
      startedAt,
    })
    .catch((err: unknown) => {
      logger.error({ err, route: route.name }, "proxy failure");
      sendJson(res, 502, { message: UPSTREAM_MESSAGES.badGateway }, startedAt);
    });
}
