// One listener: an HTTPS server speaking HTTP/2 and HTTP/1.1 (ALPN) with the listener's client-auth mode,
// SNI contexts, limits for connections without a valid certificate, and a graceful, bounded close.
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  createSecureServer,
  type Http2SecureServer,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
} from "node:http2";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import type { CompiledListener } from "../config/compile.ts";
import { capturePeerChainEarly } from "./connection-identity.ts";
import { ConnectionSlots, type Slot, type SlotLimit } from "./connection-slots.ts";
import { attachConnectionState, type ConnectionState, connectionStateOf } from "./connection-state.ts";
import { applyHandshakeDeadline } from "./handshake-deadline.ts";
import { acceptProxyProtocol, type ProxyProtocolReport } from "./proxy-protocol.ts";
import { buildSniSelector, SESSION_TIMEOUT_S, type SniSelector } from "./secure-contexts.ts";
import { applyListenerUpdate, listenOn } from "./tls-server.ts";

export type GatewayRequest = IncomingMessage | Http2ServerRequest;
export type GatewayResponse = ServerResponse | Http2ServerResponse;

export interface ListenerHooks {
  /** Judges a new TLS connection; undefined closes it before any HTTP byte is read. */
  admit(socket: TLSSocket, listener: CompiledListener): ConnectionState | undefined;
  request(req: GatewayRequest, res: GatewayResponse, listener: CompiledListener): void;
  /**
   * An HTTP/1.1 `Upgrade` request (WebSocket): the socket has left Node's HTTP parser and is answered or
   * tunnelled by the hook; `opened` once a tunnel is open. Without this hook such a connection is closed.
   */
  upgrade?(
    req: IncomingMessage,
    socket: TLSSocket,
    head: Buffer,
    listener: CompiledListener,
    opened: () => void,
  ): void;
  /** Counts an open connection by standing; the tracker follows its changes and its close. */
  trackConnection(listener: CompiledListener, authenticated: boolean): ConnectionTracker;
  /** A connection a limit closed: evicted (idle, to make room), refused (no room) or closed. */
  limitHit(
    listener: CompiledListener,
    limit: ConnectionLimit,
    action: "evicted" | "refused" | "closed",
  ): void;
  /** A handshake that failed (handshake mode: bad or missing certificate). */
  handshakeFailed(error: Error, socket: TLSSocket, listener: CompiledListener): void;
  /** A handshake given more time because this process was too busy to read it (handshake-deadline.ts). */
  handshakeExtended(listener: CompiledListener): void;
  /** A connection judged for its PROXY protocol header (listeners with `proxyProtocol`). */
  proxyProtocol: ProxyProtocolReport;
}

export type ConnectionLimit =
  | SlotLimit
  | "maxRefusedRequests"
  /** A handshake the gateway's own load had stretched, refused at handshakeTimeoutMax. */
  | "handshakeTimeoutMax"
  /** MQTT listeners: no judged CONNECT by `mqtt.connectTimeout`, or one over `mqtt.maxConnectBytes`. */
  | "connectTimeout"
  | "maxConnectBytes";

export interface ConnectionTracker {
  standing(authenticated: boolean): void;
  close(): void;
}

const kTracked = Symbol("portcullis.tracked");
type TrackedCarrier = { [kTracked]?: Tracked };

/** Read through a symbol: an HTTP/2 session's `socket` is a proxy of the TLS socket, never equal to it. */
function trackedOf(socket: object | undefined): Tracked | undefined {
  return socket ? (socket as TrackedCarrier)[kTracked] : undefined;
}

interface Tracked {
  readonly slot: Slot;
  readonly state: ConnectionState;
  readonly tracker: ConnectionTracker;
  /** Set when the connection speaks HTTP/2. */
  session: Http2Session | undefined;
  /** Set once an HTTP/1.1 `Upgrade` request took the connection (a WebSocket tunnel, or its refusal). */
  upgraded?: boolean;
}

/**
 * HTTP/1.1 idle timeout: close the connection unless a request is in flight (`this`: the socket). An upgraded
 * connection (WebSocket) is closed after the idle timeout without a byte either way (reads and writes reset it).
 */
function closeIfIdle(this: TLSSocket): void {
  const tracked = trackedOf(this);
  if (tracked?.upgraded || (tracked?.slot.inFlight ?? 0) === 0) this.destroy();
}

/** HTTP/2 idle timeout: GOAWAY (`this`: the session). */
function closeSession(this: Http2Session): void {
  this.close();
}

export class ListenerServer {
  #listener: CompiledListener;
  #sni: SniSelector;
  readonly #server: Http2SecureServer;
  readonly #sockets = new Set<TLSSocket>();
  readonly #sessions = new Set<Http2Session>();
  readonly #slots: ConnectionSlots;
  readonly #hooks: ListenerHooks;
  #draining = false;
  /** Listeners shared by every connection (called with it as `this`): an idle one holds no closure of its own. */
  readonly #onSocketClose: (this: TLSSocket) => void;
  readonly #onSessionClose: (this: Http2Session) => void;

  constructor(listener: CompiledListener, hooks: ListenerHooks) {
    this.#listener = listener;
    this.#hooks = hooks;
    const sockets = this.#sockets;
    const sessions = this.#sessions;
    const slots = new ConnectionSlots({
      limitHit: (limit, action) => hooks.limitHit(this.#listener, limit, action),
    });
    this.#slots = slots;
    this.#onSocketClose = function (this: TLSSocket) {
      const tracked = trackedOf(this);
      if (tracked) {
        tracked.tracker.close();
        slots.release(tracked.slot);
      }
      sockets.delete(this);
    };
    this.#onSessionClose = function (this: Http2Session) {
      sessions.delete(this);
    };
    this.#sni = buildSniSelector(listener);
    // Limits that Node reads once at creation; a reload that changes them needs a restart.
    const { limits } = listener;
    this.#server = createSecureServer({
      ...this.#sni.defaultOptions,
      SNICallback: (servername, cb) => this.#sni.SNICallback(servername, cb),
      ticketKeys: this.#sni.ticketKeys,
      allowHTTP1: true,
      requestCert: listener.clientAuth !== "off",
      rejectUnauthorized: listener.clientAuth === "handshake" && listener.sendCaNames,
      handshakeTimeout: limits.handshakeTimeout,
      sessionTimeout: SESSION_TIMEOUT_S,
      // Node 24 reads the HTTP/1.1 server's timeouts from http1Options (typed with fewer fields).
      http1Options: {
        headersTimeout: limits.headersTimeout,
        requestTimeout: 0,
        keepAliveTimeout: limits.idleTimeout,
        connectionsCheckingInterval: Math.min(limits.headersTimeout, 1_000),
      } as Record<string, number>,
      maxSessionMemory: 10,
      settings: { maxConcurrentStreams: 128 },
    });
    this.#server.maxConnections = limits.maxConnections;
    applyHandshakeDeadline(
      this.#server,
      handshakeDeadlineHooks(() => this.#listener, hooks),
    );
    acceptProxyProtocol(this.#server, () => this.#listener, hooks.proxyProtocol);
    this.#server.on("keylog", (_line: Buffer, socket: TLSSocket) => capturePeerChainEarly(socket));
    // Runs before the HTTP layer attaches, so a denied connection never gets an HTTP byte read.
    this.#server.prependListener("secureConnection", (socket: TLSSocket) => this.#admit(socket, hooks));
    this.#server.on("tlsClientError", (err: Error, socket: TLSSocket) =>
      hooks.handshakeFailed(err, socket, this.#listener),
    );
    this.#server.on("session", (session: Http2Session) => {
      this.#sessions.add(session);
      session.on("close", this.#onSessionClose);
      // An HTTP/2 session reads its socket natively, so idleness is measured on the session.
      const tracked = trackedOf(session.socket);
      if (tracked) {
        tracked.session = session;
        session.on("timeout", closeSession);
        this.#applyIdleTimeout(tracked);
      }
      if (this.#draining) session.close();
    });
    // With a listener here, Node hands every HTTP/1.1 `Upgrade` request over with its socket (none: a normal request).
    this.#server.on("upgrade", (req: IncomingMessage, socket: TLSSocket, head: Buffer) =>
      this.#upgrade(req, socket, head),
    );
    this.#server.on("request", (req: GatewayRequest, res: GatewayResponse) => {
      const socket = socketOf(req);
      const tracked = trackedOf(socket);
      if (tracked) {
        this.#slots.requestStarted(tracked.slot);
        // 'close' comes after Node's own 'finish' handler, which sets the keep-alive timeout on HTTP/1.1.
        res.once("close", () => this.#afterAnswer(tracked, req.httpVersionMajor === 1));
      }
      if (this.#draining && req.httpVersionMajor === 1) res.setHeader("connection", "close");
      hooks.request(req, res, this.#listener);
    });
  }

  get listener(): CompiledListener {
    return this.#listener;
  }

  /**
   * Swaps in a reloaded listener (same address): new server certificates, trust stores and client-auth
   * mode apply to new handshakes; open connections keep going. When trust changes, ticket keys are
   * rotated so that no session made under the old trust resumes.
   */
  prepareUpdate(listener: CompiledListener): () => void {
    // Building every secure context first is what can fail (a bad key): then nothing has changed yet.
    const sni = buildSniSelector(listener);
    return () => this.#commit(listener, sni);
  }

  #commit(listener: CompiledListener, sni: SniSelector): void {
    applyListenerUpdate(this.#server, this.#listener, listener, sni);
    this.#sni = sni;
    this.#listener = listener;
  }

  #admit(socket: TLSSocket, hooks: ListenerHooks): void {
    const state = hooks.admit(socket, this.#listener);
    if (!state) {
      socket.destroy();
      return;
    }
    const listener = this.#listener;
    // Connections without a valid certificate (application mode) reach the HTTP parser: keep them few.
    const slot = this.#slots.admit(
      socket,
      state.identity.leaf?.fingerprint,
      isLimited(listener, state),
      listener.limits,
    );
    if (!slot) {
      socket.destroy();
      return;
    }
    attachConnectionState(socket, state);
    const tracked: Tracked = {
      slot,
      state,
      tracker: hooks.trackConnection(listener, state.authenticated),
      session: undefined,
    };
    this.#sockets.add(socket);
    (socket as TrackedCarrier)[kTracked] = tracked;
    if (!isHttp2(socket)) {
      this.#applyIdleTimeout(tracked);
      socket.on("timeout", closeIfIdle);
    }
    socket.on("close", this.#onSocketClose);
  }

  /**
   * An upgrade request takes the connection for good: it counts as a request in flight until the socket
   * closes (never evicted as idle; draining leaves it its grace period), with the idle timeout on inactivity.
   */
  #upgrade(req: IncomingMessage, socket: TLSSocket, head: Buffer): void {
    // Node removed its own error listener from the socket along with the parser.
    socket.on("error", () => socket.destroy());
    const tracked = trackedOf(socket);
    const upgrade = this.#hooks.upgrade;
    if (!tracked || !upgrade || this.#draining) {
      socket.destroy();
      return;
    }
    // Nothing is read until a tunnel relays it (a refusal never reads what follows the request).
    socket.pause();
    this.#slots.requestStarted(tracked.slot);
    tracked.upgraded = true;
    this.#applyIdleTimeout(tracked);
    upgrade(req, socket, head, this.#listener, () => this.#tunnelOpened(tracked));
  }

  /** A tunnel is open: the connection's standing follows its allowed answer, and so does its idle timeout. */
  #tunnelOpened(tracked: Tracked): void {
    const { slot, state, tracker } = tracked;
    if (slot.released) return;
    const listener = this.#listener;
    const limited = isLimited(listener, state);
    if (limited !== slot.limited) {
      if (!this.#slots.setLimited(slot, limited, listener.limits)) {
        slot.socket.destroy();
        return;
      }
      tracker.standing(state.authenticated);
    }
    this.#applyIdleTimeout(tracked);
  }

  /**
   * After each answer: the connection's standing may have changed (a denial costs it, an allowed request
   * restores it), so its pool and idle timeout follow; too many refusals in a row close it.
   */
  #afterAnswer(tracked: Tracked, http1: boolean): void {
    const { slot, state, tracker } = tracked;
    this.#slots.requestEnded(slot);
    if (this.#draining && http1 && slot.inFlight === 0) slot.socket.end();
    if (slot.released) return;
    const listener = this.#listener;
    const { limits } = listener;
    if (state.refusedInARow >= limits.maxRefusedRequests) {
      this.#hooks.limitHit(listener, "maxRefusedRequests", "closed");
      this.#closeGracefully(tracked);
      return;
    }
    const limited = isLimited(listener, state);
    if (limited !== slot.limited) {
      if (!this.#slots.setLimited(slot, limited, limits)) {
        this.#closeGracefully(tracked);
        return;
      }
      tracker.standing(state.authenticated);
    }
    this.#applyIdleTimeout(tracked);
  }

  /** The idle timeout of the connection's standing, set again after each answer (Node resets it). */
  #applyIdleTimeout({ slot, session }: Tracked): void {
    const { limits } = this.#listener;
    const ms = slot.limited ? limits.unauthenticatedIdleTimeout : limits.idleTimeout;
    if (session) session.setTimeout(ms);
    else slot.socket.setTimeout(ms);
  }

  /** Ends the connection once what was answered is sent: HTTP/2 with GOAWAY, HTTP/1.1 with FIN. */
  #closeGracefully({ slot, session }: Tracked): void {
    if (session) session.close();
    else slot.socket.end();
  }

  get server(): Http2SecureServer {
    return this.#server;
  }

  get listening(): boolean {
    return this.#server.listening;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo | null)?.port ?? this.#listener.port;
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.#server, this.#listener);
  }

  /** How many connections are open (admitted ones, as `connections()` yields them). */
  get openConnections(): number {
    return this.#sockets.size;
  }

  /** The state of every open connection (admitted ones: each has one). */
  *connections(): Generator<ConnectionState> {
    for (const socket of this.#sockets) {
      const state = connectionStateOf(socket);
      if (state) yield state;
    }
  }

  /** Closes at once every open connection whose state matches (HTTP/1.1 keep-alive and HTTP/2 alike). */
  closeConnections(match: (state: ConnectionState) => boolean): number {
    let closed = 0;
    for (const socket of this.#sockets) {
      const state = connectionStateOf(socket);
      if (state && match(state)) {
        socket.destroy();
        closed++;
      }
    }
    return closed;
  }

  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then closes what is left. */
  async close(graceMs: number): Promise<void> {
    this.#draining = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const session of this.#sessions) session.close();
    for (const socket of this.#sockets)
      if ((trackedOf(socket)?.slot.inFlight ?? 0) === 0 && !isHttp2(socket)) socket.end();
    const timer = setTimeout(() => {
      for (const session of this.#sessions) session.destroy();
      for (const socket of this.#sockets) socket.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }
}

/** Whether the connection belongs in the unauthenticated pool (never on a listener without client auth). */
function isLimited(listener: CompiledListener, state: ConnectionState): boolean {
  return listener.clientAuth !== "off" && !state.authenticated;
}

function isHttp2(socket: TLSSocket): boolean {
  return socket.alpnProtocol === "h2";
}

/** The TLS socket under a request: itself on HTTP/1.1, the session's socket on HTTP/2. */
export function socketOf(req: GatewayRequest): TLSSocket | undefined {
  if ("stream" in req && req.stream) return req.stream.session?.socket as TLSSocket | undefined;
  return req.socket as TLSSocket;
}

/** The handshake deadline's hooks for a listener's server (HTTP and MQTT alike). */
export function handshakeDeadlineHooks(
  current: () => CompiledListener,
  hooks: Pick<ListenerHooks, "handshakeExtended" | "limitHit">,
) {
  return {
    limits: () => current().limits,
    extended: () => hooks.handshakeExtended(current()),
    refusedAtMax: () => hooks.limitHit(current(), "handshakeTimeoutMax", "closed"),
  };
}
