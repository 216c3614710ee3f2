// WebSocket over HTTP/1.1. An `Upgrade: websocket` request leaves Node's HTTP parser (listener.ts) and goes
// through the same pipeline as any request (request-handler.ts), answered on its own socket through a
// ServerResponse of its own: a refusal is a normal JSON answer, after which the connection closes. Once
// allowed, the upgrade is asked of an upstream target over a new connection; on its 101 the head is passed on
// and bytes are relayed both ways with backpressure, any other answer is passed back as a normal response.
// The gateway never reads WebSocket frames: what it relays is the upgraded byte stream.
import {
  type ClientRequest,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  ServerResponse,
} from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "../gateway/log.ts";
import type { GatewayMetrics } from "../gateway/metrics.ts";
import { LATENCY_HEADER, msHeader, sendDeny, sendJson, UPSTREAM_MESSAGES } from "../gateway/respond.ts";
import { buildUpstreamHeaders, hopByHopNames } from "./request-headers.ts";
import type { ForwardRequest, Upstream } from "./upstream.ts";
import { UPSTREAM_LATENCY_HEADER } from "./upstream.ts";

/** An upgrade request on its way through the pipeline: its socket, what was read past its head, and hooks. */
export interface UpgradeContext {
  readonly socket: Duplex;
  /** Bytes the client sent after the request's head, read along with it (usually none). */
  readonly head: Buffer;
  /** The tunnel is open (101 sent): the listener updates the connection's standing and idle timeout. */
  readonly opened: () => void;
  /** Set by the tunnel: what runs once its 101 is out, instead of closing the connection. */
  relay?: () => void;
}

const upgrades = new WeakMap<object, UpgradeContext>();

/** The upgrade a request belongs to, when it came in as an HTTP/1.1 `Upgrade` request. */
export function upgradeOf(req: object): UpgradeContext | undefined {
  return upgrades.get(req);
}

/** The tokens of an Upgrade header, lower case. */
function upgradeTokens(value: string | undefined): string[] {
  return (value ?? "").split(",").map((t) => t.trim().toLowerCase());
}

/** RFC 6455 §4.1: a GET whose Upgrade names websocket (a version like `websocket/13` is not a thing; exact token). */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  return req.method === "GET" && upgradeTokens(req.headers.upgrade).includes("websocket");
}

/**
 * A response written straight on the upgrade request's socket, as Node's HTTP server would (status line,
 * headers, Date, `Connection: close`). Any answer but a tunnel's 101 closes the connection once it is sent.
 */
export function upgradeResponse(req: IncomingMessage, upgrade: UpgradeContext): ServerResponse {
  upgrades.set(req, upgrade);
  const { socket } = upgrade;
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Parameters<ServerResponse["assignSocket"]>[0]);
  res.once("finish", () => {
    res.detachSocket(socket as Parameters<ServerResponse["detachSocket"]>[0]);
    if (upgrade.relay) upgrade.relay();
    else closeAfterWrites(socket);
  });
  return res;
}

/** Ends the connection once what was written is out (a net.Socket's destroySoon; end() for other streams). */
function closeAfterWrites(socket: Duplex): void {
  const { destroySoon } = socket as Duplex & { destroySoon?: () => void };
  if (destroySoon) destroySoon.call(socket);
  else socket.end();
}

/** Where a tunnel reports: the route it serves, the metrics gauge and the log. */
export interface TunnelObservers {
  readonly route: string;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

/** The upstream's answer headers minus this hop's framing (a 101 keeps its Upgrade and Connection). */
function answerHeaders(
  res: IncomingMessage,
  switching: boolean,
  forward: ForwardRequest,
  dispatchedAt: number,
): OutgoingHttpHeaders {
  const hopByHop = switching ? new Set(["content-length", "transfer-encoding", "keep-alive"]) : undefined;
  const drop = hopByHop ?? hopByHopNames(res.headers.connection);
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined && !drop.has(name)) out[name] = value;
  }
  if (forward.responseHeaders) Object.assign(out, forward.responseHeaders);
  out[LATENCY_HEADER] = msHeader(dispatchedAt - forward.startedAt);
  out[UPSTREAM_LATENCY_HEADER] = msHeader(performance.now() - dispatchedAt);
  return out;
}

class TunnelTimeout extends Error {
  readonly code = "PORTCULLIS_TUNNEL_TIMEOUT";
}

/**
 * The allowed upgrade, to a target of `upstream` picked as forward() picks one: the client's request with the
 * filtered, identity and forwarding headers, on a connection of its own. Never throws: a failure before an
 * answer is a 502 (504 on a timeout), once the tunnel is open it closes both sides.
 */
export function openTunnel(
  upstream: Upstream,
  forward: ForwardRequest,
  upgrade: UpgradeContext,
  observers: TunnelObservers,
): void {
  const { req, startedAt } = forward;
  const res = forward.res as ServerResponse;
  const client = upgrade.socket;
  const target = upstream.tunnelTarget(forward.deviceId ?? forward.clientAddress);
  if (!target) {
    sendDeny(res, "no_healthy_upstream", startedAt);
    return;
  }
  const headers = buildUpstreamHeaders(req.headers, {
    clientAddress: forward.clientAddress,
    host: forward.host,
    listenerPort: req.socket?.localPort,
    preserveHost: target.preserveHost,
    trustedPeer: forward.trustedPeer ?? false,
    strip: forward.stripHeaders,
    httpVersion: req.httpVersion,
    upgrade: (req.headers.upgrade as string | undefined) ?? "websocket",
  });
  for (const name in forward.identityHeaders) headers[name] = forward.identityHeaders[name] as string;

  const { url, tls } = target;
  const secure = url.protocol === "https:";
  const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  const dispatchedAt = performance.now();
  let outgoing: ClientRequest;
  try {
    outgoing = (secure ? httpsRequest : httpRequest)({
      host: hostname,
      port: Number(url.port) || (secure ? 443 : 80),
      method: "GET",
      path: forward.path,
      headers,
      agent: false,
      ...(secure
        ? {
            // As undici does: SNI and verification for the target's own name, never the client's Host.
            servername: tls.serverName ?? (isIP(hostname) ? "" : hostname),
            ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
            ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
            ...(tls.key !== undefined ? { key: tls.key } : {}),
            rejectUnauthorized: tls.rejectUnauthorized ?? true,
          }
        : {}),
    });
  } catch (err) {
    observers.logger.error({ err, route: observers.route }, "websocket upstream request failure");
    sendJson(res, 502, { message: UPSTREAM_MESSAGES.badGateway }, startedAt);
    return;
  }

  let answered = false;
  // Connect timeout, then the answer's (a route's own timeout, else the service's readTimeout).
  let timer: NodeJS.Timeout | undefined = setTimeout(
    () => outgoing.destroy(new TunnelTimeout("connect timeout")),
    target.connectTimeoutMs,
  );
  const readTimeoutMs = forward.readTimeoutMs ?? target.readTimeoutMs;
  outgoing.once("socket", (socket) => {
    socket.once(secure ? "secureConnect" : "connect", () => {
      clearTimeout(timer);
      timer = answered
        ? undefined
        : setTimeout(() => outgoing.destroy(new TunnelTimeout("answer timeout")), readTimeoutMs);
    });
  });
  const settle = (status: number | undefined) => {
    answered = true;
    clearTimeout(timer);
    timer = undefined;
    client.off("close", onClientClose);
    target.outcome(status);
  };
  // The client gone before the upstream answered: give up the upstream request too.
  const onClientClose = () => {
    clearTimeout(timer);
    outgoing.destroy();
  };
  client.once("close", onClientClose);

  outgoing.on("upgrade", (answer: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    settle(101);
    if (client.destroyed) {
      socket.destroy();
      return;
    }
    // Until the 101 is out and the relay starts, a client gone takes the target's connection with it.
    const onClientGone = () => socket.destroy();
    client.once("close", onClientGone);
    upgrade.relay = () => {
      client.off("close", onClientGone);
      relay(client, socket, head, upgrade, observers);
    };
    try {
      res.writeHead(101, answerHeaders(answer, true, forward, dispatchedAt));
      res.end();
    } catch {
      // Headers Node refuses to write: nothing is out yet, so a 502 still is.
      upgrade.relay = undefined;
      client.off("close", onClientGone);
      socket.destroy();
      sendJson(res, 502, { message: UPSTREAM_MESSAGES.badGateway }, startedAt);
    }
  });
  outgoing.on("response", (answer: IncomingMessage) => {
    // No upgrade: the upstream's answer goes back as it is, then the connection closes.
    settle(answer.statusCode);
    answer.on("error", () => client.destroy());
    client.once("close", () => answer.destroy());
    try {
      res.writeHead(answer.statusCode ?? 502, answerHeaders(answer, false, forward, dispatchedAt));
    } catch {
      answer.destroy();
      sendJson(res, 502, { message: UPSTREAM_MESSAGES.badGateway }, startedAt);
      return;
    }
    answer.pipe(res);
  });
  outgoing.on("error", (err: Error) => {
    if (answered) {
      client.destroy();
      return;
    }
    settle(undefined);
    if (client.destroyed) return;
    const timeout = err instanceof TunnelTimeout;
    if (!timeout) observers.logger.warn({ err, route: observers.route }, "websocket upstream failure");
    sendJson(
      res,
      timeout ? 504 : 502,
      { message: timeout ? UPSTREAM_MESSAGES.timeout : UPSTREAM_MESSAGES.badGateway },
      startedAt,
    );
  });
  outgoing.end();
}

/**
 * The open tunnel: bytes both ways with backpressure (pipe), a FIN passed on, and either side's close or
 * error closing the other. Idleness is the client socket's timeout (listener.ts), which reads and writes reset.
 */
function relay(
  client: Duplex,
  upstream: Duplex,
  upstreamHead: Buffer,
  upgrade: UpgradeContext,
  observers: TunnelObservers,
): void {
  const labels = { route: observers.route };
  observers.metrics.websocketConnections.inc(labels);
  let open = true;
  const close = () => {
    if (open) {
      open = false;
      observers.metrics.websocketConnections.dec(labels);
    }
    client.destroy();
    upstream.destroy();
  };
  client.on("error", close);
  upstream.on("error", close);
  client.once("close", close);
  upstream.once("close", close);
  if (client.destroyed || upstream.destroyed) {
    close();
    return;
  }
  (upstream as Duplex & { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
  if (upstreamHead.length > 0) client.write(upstreamHead);
  if (upgrade.head.length > 0) upstream.write(upgrade.head);
  client.pipe(upstream);
  upstream.pipe(client);
  upgrade.opened();
}
