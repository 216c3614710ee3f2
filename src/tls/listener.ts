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
import { attachConnectionState, type ConnectionState, connectionStateOf } from "./connection-state.ts";
import { buildSniSelector, SESSION_TIMEOUT_S, type SniSelector } from "./secure-contexts.ts";

export type GatewayRequest = IncomingMessage | Http2ServerRequest;
export type GatewayResponse = ServerResponse | Http2ServerResponse;

export interface ListenerHooks {
  /** Judges a new TLS connection; undefined closes it before any HTTP byte is read. */
  admit(socket: TLSSocket, listener: CompiledListener): ConnectionState | undefined;
  request(req: GatewayRequest, res: GatewayResponse, listener: CompiledListener): void;
  /** Counts an open connection; the returned function is called once when it closes. */
  trackConnection(listener: CompiledListener, authenticated: boolean): () => void;
  /** A handshake that failed (handshake mode: bad or missing certificate). */
  handshakeFailed(error: Error, socket: TLSSocket, listener: CompiledListener): void;
}

interface Tracked {
  inFlight: number;
  /** Counted against maxUnauthenticatedConnections, with the short idle timeout. */
  limited: boolean;
}

export class ListenerServer {
  #listener: CompiledListener;
  #sni: SniSelector;
  readonly #server: Http2SecureServer;
  readonly #sockets = new Map<TLSSocket, Tracked>();
  readonly #sessions = new Set<Http2Session>();
  #unauthenticated = 0;
  #draining = false;

  constructor(listener: CompiledListener, hooks: ListenerHooks) {
    this.#listener = listener;
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
    this.#server.on("keylog", (_line: Buffer, socket: TLSSocket) => capturePeerChainEarly(socket));
    // Runs before the HTTP layer attaches, so a denied connection never gets an HTTP byte read.
    this.#server.prependListener("secureConnection", (socket: TLSSocket) => this.#admit(socket, hooks));
    this.#server.on("tlsClientError", (err: Error, socket: TLSSocket) =>
      hooks.handshakeFailed(err, socket, this.#listener),
    );
    this.#server.on("session", (session: Http2Session) => {
      this.#sessions.add(session);
      session.once("close", () => this.#sessions.delete(session));
      // An HTTP/2 session reads its socket natively, so idleness is measured on the session.
      const state = connectionStateOf(session.socket);
      const current = this.#listener;
      const limited = current.clientAuth === "application" && !state?.authenticated;
      session.setTimeout(
        limited ? current.limits.unauthenticatedIdleTimeout : current.limits.idleTimeout,
        () => session.close(),
      );
      if (this.#draining) session.close();
    });
    this.#server.on("request", (req: GatewayRequest, res: GatewayResponse) => {
      const socket = socketOf(req);
      const tracked = socket ? this.#sockets.get(socket) : undefined;
      if (tracked) {
        tracked.inFlight++;
        res.once("close", () => {
          tracked.inFlight--;
          if (this.#draining && tracked.inFlight === 0 && socket && req.httpVersionMajor === 1) socket.end();
        });
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
    const trustChanged =
      listener.clientAuth !== this.#listener.clientAuth ||
      listener.trustStores.map((s) => s.pem).join() !== this.#listener.trustStores.map((s) => s.pem).join();
    this.#server.setSecureContext(sni.defaultOptions);
    if (trustChanged) this.#server.setTicketKeys(sni.ticketKeys);
    // Server-level in Node (not per context); new connections honour the changed values.
    const flags = this.#server as unknown as { requestCert: boolean; rejectUnauthorized: boolean };
    flags.requestCert = listener.clientAuth !== "off";
    flags.rejectUnauthorized = listener.clientAuth === "handshake" && listener.sendCaNames;
    this.#sni = sni;
    this.#listener = listener;
  }

  #admit(socket: TLSSocket, hooks: ListenerHooks): void {
    const state = hooks.admit(socket, this.#listener);
    if (!state) {
      socket.destroy();
      return;
    }
    const { limits } = this.#listener;
    // Connections without a valid certificate (application mode) reach the HTTP parser: keep them few.
    const limited = this.#listener.clientAuth === "application" && !state.authenticated;
    if (limited && this.#unauthenticated >= limits.maxUnauthenticatedConnections) {
      socket.destroy();
      return;
    }
    attachConnectionState(socket, state);
    const tracked: Tracked = { inFlight: 0, limited };
    this.#sockets.set(socket, tracked);
    if (limited) this.#unauthenticated++;
    if (!isHttp2(socket)) {
      // Also after each answer: Node keeps a socket timeout set here across keep-alive exchanges.
      socket.setTimeout(limited ? limits.unauthenticatedIdleTimeout : limits.idleTimeout);
      socket.on("timeout", () => {
        if (tracked.inFlight === 0) socket.destroy();
      });
    }
    const untrack = hooks.trackConnection(this.#listener, state.authenticated);
    socket.once("close", () => {
      untrack();
      this.#sockets.delete(socket);
      if (tracked.limited) this.#unauthenticated--;
    });
  }

  get server(): Http2SecureServer {
    return this.#server;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo | null)?.port ?? this.#listener.port;
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(this.#listener.port, this.#listener.host, () => {
        this.#server.off("error", reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** The state of every open connection (admitted ones: each has one). */
  *connections(): Generator<ConnectionState> {
    for (const socket of this.#sockets.keys()) {
      const state = connectionStateOf(socket);
      if (state) yield state;
    }
  }

  /** Closes at once every open connection whose state matches (HTTP/1.1 keep-alive and HTTP/2 alike). */
  closeConnections(match: (state: ConnectionState) => boolean): number {
    let closed = 0;
    for (const socket of this.#sockets.keys()) {
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
    for (const [socket, tracked] of this.#sockets)
      if (tracked.inFlight === 0 && !isHttp2(socket)) socket.end();
    const timer = setTimeout(() => {
      for (const session of this.#sessions) session.destroy();
      for (const socket of this.#sockets.keys()) socket.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }
}

function isHttp2(socket: TLSSocket): boolean {
  return socket.alpnProtocol === "h2";
}

/** The TLS socket under a request: itself on HTTP/1.1, the session's socket on HTTP/2. */
export function socketOf(req: GatewayRequest): TLSSocket | undefined {
  if ("stream" in req && req.stream) return req.stream.session?.socket as TLSSocket | undefined;
  return req.socket as TLSSocket;
}
