// An MQTT listener: MQTT over TLS with the listener's client-auth mode and SNI contexts, the same admission
// (handshake-mode verdicts) and the same limits for connections without a valid certificate as HTTP
// listeners, one MqttSession per admitted connection, and a graceful, bounded close.
import type { AddressInfo } from "node:net";
import { createServer, type Server, type TLSSocket } from "node:tls";
import type { CompiledListener } from "../config/compile.ts";
import { capturePeerChainEarly } from "../tls/connection-identity.ts";
import { ConnectionSlots } from "../tls/connection-slots.ts";
import { attachConnectionState, type ConnectionState, noteAnswer } from "../tls/connection-state.ts";
import { applyHandshakeDeadline } from "../tls/handshake-deadline.ts";
import { handshakeDeadlineHooks, type ListenerHooks } from "../tls/listener.ts";
import { acceptProxyProtocol } from "../tls/proxy-protocol.ts";
import { buildSniSelector, SESSION_TIMEOUT_S, type SniSelector } from "../tls/secure-contexts.ts";
import { applyListenerUpdate, listenOn } from "../tls/tls-server.ts";
import { V5 } from "./answers.ts";
import { MqttSession, type MqttSessionDeps } from "./mqtt-session.ts";

export type MqttListenerHooks = Omit<ListenerHooks, "request"> &
  Omit<MqttSessionDeps, "authenticated" | "connectLimitHit">;

/** ALPN of MQTT over TLS (IANA); clients that send none are served too. */
const ALPN = ["mqtt"];

export class MqttListenerServer {
  #listener: CompiledListener;
  #sni: SniSelector;
  readonly #server: Server;
  readonly #sessions = new Set<MqttSession>();
  readonly #slots: ConnectionSlots;
  readonly #hooks: MqttListenerHooks;
  #draining = false;

  constructor(listener: CompiledListener, hooks: MqttListenerHooks) {
    this.#listener = listener;
    this.#hooks = hooks;
    this.#slots = new ConnectionSlots({
      limitHit: (limit, action) => hooks.limitHit(this.#listener, limit, action),
    });
    this.#sni = buildSniSelector(listener);
    this.#server = createServer({
      ...this.#sni.defaultOptions,
      SNICallback: (servername, cb) => this.#sni.SNICallback(servername, cb),
      ticketKeys: this.#sni.ticketKeys,
      ALPNProtocols: ALPN,
      requestCert: listener.clientAuth !== "off",
      rejectUnauthorized: listener.clientAuth === "handshake" && listener.sendCaNames,
      handshakeTimeout: listener.limits.handshakeTimeout,
      sessionTimeout: SESSION_TIMEOUT_S,
    });
    this.#server.maxConnections = listener.limits.maxConnections;
    applyHandshakeDeadline(
      this.#server,
      handshakeDeadlineHooks(() => this.#listener, hooks),
    );
    acceptProxyProtocol(this.#server, () => this.#listener, hooks.proxyProtocol);
    this.#server.on("keylog", (_line: Buffer, socket: TLSSocket) => capturePeerChainEarly(socket));
    this.#server.on("secureConnection", (socket: TLSSocket) => this.#admit(socket));
    this.#server.on("tlsClientError", (err: Error, socket: TLSSocket) =>
      hooks.handshakeFailed(err, socket, this.#listener),
    );
  }

  get listener(): CompiledListener {
    return this.#listener;
  }

  get listening(): boolean {
    return this.#server.listening;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo | null)?.port ?? this.#listener.port;
  }

  /** New certificates, trust and MQTT rules for new connections; open sessions keep what they started with. */
  prepareUpdate(listener: CompiledListener): () => void {
    const sni = buildSniSelector(listener);
    return () => {
      applyListenerUpdate(this.#server, this.#listener, listener, sni);
      this.#sni = sni;
      this.#listener = listener;
    };
  }

  #admit(socket: TLSSocket): void {
    if (this.#draining) {
      socket.destroy();
      return;
    }
    const listener = this.#listener;
    const state = this.#hooks.admit(socket, listener);
    if (!state) {
      socket.destroy();
      return;
    }
    // Until its CONNECT is allowed every connection counts as unauthenticated: it has sent nothing yet.
    state.authenticated = false;
    const slot = this.#slots.admit(socket, state.identity.leaf?.fingerprint, true, listener.limits);
    if (!slot) {
      socket.destroy();
      return;
    }
    attachConnectionState(socket, state);
    const tracker = this.#hooks.trackConnection(listener, false);
    const session = new MqttSession(socket, state, listener, {
      ...this.#hooks,
      connectLimitHit: (limit) => this.#hooks.limitHit(this.#listener, limit, "closed"),
      authenticated: (s) => {
        noteAnswer(s, "allowed");
        if (!this.#slots.setLimited(slot, false, listener.limits)) {
          session.close();
          return;
        }
        tracker.standing(true);
      },
    });
    this.#sessions.add(session);
    socket.on("close", () => {
      this.#sessions.delete(session);
      tracker.close();
      this.#slots.release(slot);
    });
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.#server, this.#listener);
  }

  /** How many sessions are open. */
  get openConnections(): number {
    return this.#sessions.size;
  }

  *connections(): Generator<ConnectionState> {
    for (const session of this.#sessions) yield session.state;
  }

  /** Disconnects every session whose state matches (MQTT 5: DISCONNECT "not authorized" first). */
  closeConnections(match: (state: ConnectionState) => boolean): number {
    let closed = 0;
    for (const session of this.#sessions) {
      if (match(session.state)) {
        session.kick("the device is no longer authorized");
        closed++;
      }
    }
    return closed;
  }

  /** Stops accepting, tells MQTT 5 clients the server is shutting down, and closes every session by `graceMs`. */
  async close(graceMs: number): Promise<void> {
    this.#draining = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const session of this.#sessions) session.close(V5.serverShuttingDown, "server shutting down");
    const timer = setTimeout(() => {
      for (const session of this.#sessions) session.socket.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }
}
