// One MQTT client connection, from its CONNECT to its close. The CONNECT is judged by the same auth policy
// pipeline as an HTTP request (engine, registry, decision log); a denial is a CONNACK "not authorized" with
// the reason code as MQTT 5 Reason String. An allowed client gets its client id and username set to its
// device id and is bridged to the broker: the broker's bytes pass through as they are, the client's are cut
// into packets, and every PUBLISH and SUBSCRIBE is held to the topic allow-lists and to the connection's
// current verdict (expiry, revocation) before its exact bytes go on.
import { type Socket, connect as tcpConnect } from "node:net";
import type { TLSSocket } from "node:tls";
import mqtt from "mqtt-packet";
import type { CompiledListener, CompiledMqtt } from "../config/compiled.ts";
import type { Verdict } from "../gateway/authorize.ts";
import type { Logger } from "../gateway/log.ts";
import type { ReasonCode } from "../identity/reasons.ts";
import type { Decision } from "../identity/types.ts";
import type { ConnectionState } from "../tls/connection-state.ts";
import {
  type ConnackRefusal,
  disconnect,
  type ProtocolVersion,
  refusedConnack,
  refusedPublishAck,
  refusedSuback,
  V5,
} from "./answers.ts";
import { type Frame, FrameError, Framer } from "./framer.ts";
import { TopicAcl } from "./topic-acl.ts";

const CONNECT = 1;
const PUBLISH = 3;
const SUBSCRIBE = 8;
const DISCONNECT = 14;
const AUTH = 15;
/** Topic aliases one connection may set (brokers allow far fewer: Mosquitto 10 by default). */
const MAX_ALIASES = 1024;

export interface MqttSessionDeps {
  /** The CONNECT's verdict: the policy pipeline of HTTP routes, recorded as a decision of route `mqtt:<listener>`. */
  authorize(state: ConnectionState, listener: CompiledListener): Verdict | Promise<Verdict>;
  /** The connection's verdict now (cached; changes with expiry and revocation), for each PUBLISH and SUBSCRIBE. */
  recheck(state: ConnectionState, listener: CompiledListener): Decision | Promise<Decision>;
  /** Records a refusal the gateway made after the CONNECT's verdict (a topic, a client id, a recheck). */
  refused(state: ConnectionState, listener: CompiledListener, reason: ReasonCode, detail: string): void;
  /** A connect limit closed the connection before its CONNECT was allowed (counted like the listeners' limits). */
  connectLimitHit(limit: "connectTimeout" | "maxConnectBytes"): void;
  /** The connection is allowed (its standing and limits follow). */
  authenticated(state: ConnectionState): void;
  readonly logger: Logger;
}

type Phase = "connecting" | "judging" | "bridged" | "closed";

export class MqttSession {
  readonly socket: TLSSocket;
  readonly state: ConnectionState;
  readonly #listener: CompiledListener;
  readonly #mqtt: CompiledMqtt;
  readonly #deps: MqttSessionDeps;
  readonly #framer: Framer;
  readonly #parser: ReturnType<typeof mqtt.parser>;
  #parsed: mqtt.Packet[] = [];
  #parseError: Error | undefined;
  #phase: Phase = "connecting";
  #version: ProtocolVersion = 4;
  #broker: Socket | undefined;
  #acl: TopicAcl | undefined;
  /** MQTT 5 topic aliases the client set (client to server). */
  readonly #aliases = new Map<number, string>();
  /** Frames that arrived while an earlier one was being judged. */
  #queue: Frame[] = [];
  #busy = false;
  #connectDeadline: NodeJS.Timeout;
  /** Why the client's socket is paused: a verdict being awaited, the broker not taking more. */
  readonly #pausedFor = new Set<"verdict" | "broker">();

  constructor(socket: TLSSocket, state: ConnectionState, listener: CompiledListener, deps: MqttSessionDeps) {
    const options = listener.mqtt;
    if (!options) throw new Error(`listener "${listener.name}" is not an mqtt listener`);
    this.socket = socket;
    this.state = state;
    this.#listener = listener;
    this.#mqtt = options;
    this.#deps = deps;
    this.#framer = new Framer(options.maxConnectBytes);
    this.#parser = mqtt.parser({ protocolVersion: 4 });
    this.#parser.on("packet", (p: mqtt.Packet) => this.#parsed.push(p));
    this.#parser.on("error", (e: Error) => {
      this.#parseError = e;
    });
    // A deadline, not an idle timer: a client trickling bytes cannot hold an unauthenticated slot longer.
    this.#connectDeadline = setTimeout(() => {
      if (this.#phase === "bridged" || this.#isClosed()) return;
      this.#deps.connectLimitHit("connectTimeout");
      this.close();
    }, options.connectTimeoutMs);
    this.#connectDeadline.unref();
    socket.on("timeout", () => this.close());
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", () => this.close());
    socket.on("close", () => this.close());
  }

  /** Ends the session: MQTT 5 clients get a DISCONNECT with the reason first. */
  close(reasonCode?: number, reason?: string): void {
    if (this.#phase === "closed") return;
    const bridged = this.#phase === "bridged";
    this.#phase = "closed";
    clearTimeout(this.#connectDeadline);
    if (bridged && reasonCode !== undefined && this.#version === 5 && !this.socket.destroyed) {
      this.socket.end(disconnect(reasonCode, this.#reasonText(reason)));
    } else {
      this.socket.destroy();
    }
    this.#broker?.destroy();
  }

  /** The device lost its standing (suspended, revoked, unbound): disconnect now. */
  kick(reason: string): void {
    this.close(V5.notAuthorized, reason);
    // Whatever the client does with the DISCONNECT, the connection is gone within the second.
    setTimeout(() => this.socket.destroy(), 200).unref();
  }

  #onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.#framer.push(chunk);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.#deps.logger.info(
        { listener: this.#listener.name, peer: this.state.peer, err: err.message },
        "mqtt packet refused",
      );
      if (err.tooLarge && this.#phase === "connecting") this.#deps.connectLimitHit("maxConnectBytes");
      this.close(err.tooLarge ? V5.packetTooLarge : V5.malformed, err.message);
      return;
    }
    this.#queue.push(...frames);
    void this.#drain();
  }

  /** Judges the queued frames one at a time, in order; the socket is paused while one waits on a verdict. */
  async #drain(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      while (this.#queue.length > 0 && !this.#isClosed()) {
        const frame = this.#queue.shift() as Frame;
        const pending = this.#handle(frame);
        if (pending instanceof Promise) {
          this.#pause("verdict");
          await pending;
          this.#resume("verdict");
        }
      }
    } catch (err) {
      this.#deps.logger.error({ err, listener: this.#listener.name }, "mqtt session failure");
      this.close(V5.unspecified, "internal error");
    } finally {
      this.#busy = false;
    }
  }

  #handle(frame: Frame): void | Promise<void> {
    if (this.#phase === "connecting") {
      if (frame.type !== CONNECT) {
        this.close();
        return;
      }
      return this.#onConnect(frame);
    }
    if (this.#phase !== "bridged") return;
    switch (frame.type) {
      case CONNECT:
        this.close(V5.protocolError, "a second CONNECT");
        return;
      case PUBLISH:
      case SUBSCRIBE:
        return this.#guard(frame);
      case DISCONNECT:
        this.#forward(frame);
        this.#broker?.end();
        return;
      case AUTH:
        // Re-authentication could make the broker see another identity than the one the gateway set.
        if (this.#mqtt.username !== "keep") {
          this.close(V5.protocolError, "AUTH is not relayed: the gateway authenticates the device");
          return;
        }
        this.#forward(frame);
        return;
      default:
        this.#forward(frame);
    }
  }

  #parse(frame: Frame): mqtt.Packet | undefined {
    this.#parsed = [];
    this.#parseError = undefined;
    this.#parser.parse(frame.bytes);
    const packet = this.#parsed[0];
    const error = this.#parseError as Error | undefined;
    if (error || !packet) {
      this.close(V5.malformed, error?.message ?? "malformed packet");
      return undefined;
    }
    return packet;
  }

  async #onConnect(frame: Frame): Promise<void> {
    const packet = this.#parse(frame);
    if (packet?.cmd !== "connect") return;
    const version = packet.protocolVersion ?? 4;
    this.#version = version === 5 ? 5 : version === 3 ? 3 : 4;
    this.#phase = "judging";
    const verdict = await this.#deps.authorize(this.state, this.#listener);
    if (this.#isClosed()) return;
    if (!verdict.allow) {
      this.#refuseConnect("notAuthorized", verdict.reason);
      return;
    }
    const identity = verdict.identity;
    const deviceId = identity?.deviceId;
    if (!identity || deviceId === undefined) {
      this.#refuse(
        "unknown_device",
        "the certificate names no device (no urn:device: SAN, no registry device)",
      );
      this.#refuseConnect("notAuthorized", "unknown_device");
      return;
    }
    const { clientId, username } = this.#mqtt;
    if (clientId === "refuse" && packet.clientId !== "" && packet.clientId !== deviceId) {
      this.#refuse(
        "client_id_not_allowed",
        `client id "${packet.clientId}" is not the device id "${deviceId}"`,
      );
      this.#refuseConnect("identifierRejected", "client_id_not_allowed");
      return;
    }
    if (username === "refuse" && packet.username !== undefined && packet.username !== deviceId) {
      this.#refuse(
        "client_id_not_allowed",
        `username "${packet.username}" is not the device id "${deviceId}"`,
      );
      this.#refuseConnect("notAuthorized", "client_id_not_allowed");
      return;
    }
    const groups = identity.groups ?? [];
    this.#acl = new TopicAcl(this.#mqtt.topics, { deviceId, groups });
    // The allow-list holds these groups: the registry closes the session when they change.
    if (this.#mqtt.policy.registry !== undefined && this.#mqtt.policy.registry !== "off")
      this.state.grantedGroups = groups;
    if (packet.will && !this.#acl.mayPublish(packet.will.topic)) {
      this.#refuse("topic_not_allowed", `will message to "${packet.will.topic}"`);
      this.#refuseConnect("notAuthorized", "topic_not_allowed");
      return;
    }
    // MQTT 5: the broker sends nothing larger than the listener's limit (3.1.1 has no such property: the
    // broker's packets are framed and the session closed on one that is over it).
    if (this.#version === 5) {
      const asked = packet.properties?.maximumPacketSize;
      const max = Math.min(asked ?? this.#mqtt.maxPacketBytes, this.#mqtt.maxPacketBytes);
      packet.properties = { ...packet.properties, maximumPacketSize: max };
    }
    packet.clientId = deviceId;
    if (username !== "keep") {
      packet.username = deviceId;
      // A password (or MQTT 5 enhanced authentication) goes with the username the client chose, never with
      // the one the gateway set.
      delete packet.password;
      if (packet.properties) {
        delete packet.properties.authenticationMethod;
        delete packet.properties.authenticationData;
      }
    }
    // MQTT's keep-alive times 1.5 (§3.1.2.10), or the listener's idle timeout when the client sets none.
    const keepalive = packet.keepalive ?? 0;
    const idleMs = keepalive > 0 ? keepalive * 1500 : this.#listener.limits.idleTimeout;
    await this.#bridge(mqtt.generate(packet, { protocolVersion: this.#version }), idleMs);
  }

  #bridge(connect: Buffer, idleMs: number): Promise<void> {
    const { host, port } = this.#mqtt.broker;
    return new Promise((resolve) => {
      const broker = tcpConnect({ host, port });
      this.#broker = broker;
      const timer = setTimeout(
        () => broker.destroy(new Error("connect timeout")),
        this.#mqtt.brokerConnectTimeoutMs,
      );
      broker.once("error", (err) => {
        clearTimeout(timer);
        if (this.#phase === "judging") {
          this.#deps.logger.error(
            { listener: this.#listener.name, broker: `${host}:${port}`, err: err.message },
            "mqtt broker unreachable",
          );
          this.#refuseConnect("serverUnavailable", undefined);
        } else {
          this.close(V5.serverUnavailable, "the broker closed the connection");
        }
        resolve();
      });
      broker.once("connect", () => {
        clearTimeout(timer);
        if (this.#phase !== "judging") {
          broker.destroy();
          resolve();
          return;
        }
        this.#phase = "bridged";
        clearTimeout(this.#connectDeadline);
        this.#framer.maxBytes = this.#mqtt.maxPacketBytes;
        this.#deps.authenticated(this.state);
        broker.write(connect);
        this.#relayBroker(broker);
        broker.on("close", () => this.close());
        this.socket.setTimeout(idleMs);
        resolve();
      });
    });
  }

  /**
   * The broker's packets to the device, as the broker sent them, each within maxPacketBytes; the broker is
   * paused while the device does not take them.
   */
  #relayBroker(broker: Socket): void {
    const framer = new Framer(this.#mqtt.maxPacketBytes);
    broker.on("data", (chunk: Buffer) => {
      let frames: Frame[];
      try {
        frames = framer.push(chunk);
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
        this.#deps.logger.info(
          { listener: this.#listener.name, err: err.message },
          "mqtt broker packet refused",
        );
        this.close(err.tooLarge ? V5.packetTooLarge : V5.malformed, `from the broker: ${err.message}`);
        return;
      }
      let open = true;
      for (const frame of frames) open = this.socket.write(frame.bytes);
      if (!open) {
        broker.pause();
        this.socket.once("drain", () => broker.resume());
      }
    });
  }

  /** A PUBLISH or SUBSCRIBE: the connection's verdict now, then the topic rules; forwarded as sent when allowed. */
  async #guard(frame: Frame): Promise<void> {
    const packet = this.#parse(frame);
    if (!packet) return;
    const decision = await this.#deps.recheck(this.state, this.#listener);
    if (this.#phase !== "bridged") return;
    if (!decision.allow) {
      this.#refuse(decision.reason, decision.detail);
      this.close(V5.notAuthorized, decision.reason);
      return;
    }
    if (packet.cmd === "publish") this.#publish(packet, frame);
    else if (packet.cmd === "subscribe") this.#subscribe(packet, frame);
  }

  #publish(packet: mqtt.IPublishPacket, frame: Frame): void {
    let topic = packet.topic;
    const alias = packet.properties?.topicAlias;
    if (alias !== undefined && topic === "") topic = this.#aliases.get(alias) ?? "";
    if (topic === "") {
      this.close(V5.protocolError, "a topic alias that was never set");
      return;
    }
    if (this.#acl?.mayPublish(topic)) {
      // Only what reaches the broker sets an alias: a refused PUBLISH leaves no trace, and the broker's own
      // Topic Alias Maximum (it disconnects beyond it) bounds the map; MAX_ALIASES bounds it regardless.
      if (alias !== undefined && packet.topic !== "") {
        if (!this.#aliases.has(alias) && this.#aliases.size >= MAX_ALIASES) {
          this.close(V5.protocolError, "too many topic aliases");
          return;
        }
        this.#aliases.set(alias, topic);
      }
      this.#forward(frame);
      return;
    }
    this.#refuse("topic_not_allowed", `publish to "${topic}"`);
    if (this.#version !== 5) {
      this.close();
      return;
    }
    // MQTT 5: QoS 1 and 2 are answered "not authorized"; a QoS 0 message has no answer and is dropped.
    if (packet.qos > 0 && packet.messageId !== undefined) {
      this.socket.write(
        refusedPublishAck(packet.qos as 1 | 2, packet.messageId, this.#reasonText("topic_not_allowed")),
      );
    }
  }

  #subscribe(packet: mqtt.ISubscribePacket, frame: Frame): void {
    const refused = packet.subscriptions.map((s) => s.topic).filter((t) => !this.#acl?.maySubscribe(t));
    if (refused.length === 0) {
      this.#forward(frame);
      return;
    }
    this.#refuse("topic_not_allowed", `subscribe to ${refused.map((t) => `"${t}"`).join(", ")}`);
    if (this.#version !== 5) {
      this.close();
      return;
    }
    // The whole SUBSCRIBE is refused: a SUBACK of the broker for only some filters would not match the request.
    this.socket.write(
      refusedSuback(
        packet.messageId ?? 0,
        packet.subscriptions.length,
        this.#reasonText("topic_not_allowed"),
      ),
    );
  }

  #forward(frame: Frame): void {
    const broker = this.#broker;
    if (!broker || broker.destroyed) return;
    if (!broker.write(frame.bytes) && !this.#pausedFor.has("broker")) {
      // Backpressure: read no more from the device until the broker has taken what it was sent.
      this.#pause("broker");
      broker.once("drain", () => this.#resume("broker"));
    }
  }

  #pause(why: "verdict" | "broker"): void {
    this.#pausedFor.add(why);
    this.socket.pause();
  }

  #resume(why: "verdict" | "broker"): void {
    this.#pausedFor.delete(why);
    if (this.#pausedFor.size === 0 && !this.#isClosed()) this.socket.resume();
  }

  /** Read through a method: the phase changes in callbacks, which TypeScript's narrowing does not see. */
  #isClosed(): boolean {
    return this.#phase === "closed";
  }

  #refuse(reason: ReasonCode, detail: string): void {
    this.#deps.refused(this.state, this.#listener, reason, detail);
  }

  #refuseConnect(why: ConnackRefusal, reason: string | undefined): void {
    this.#phase = "closed";
    this.socket.end(refusedConnack(this.#version, why, this.#reasonText(reason)));
    this.#broker?.destroy();
  }

  /** The reason for the client, unless the listener hides reasons. */
  #reasonText(reason: string | undefined): string | undefined {
    return this.#listener.hideReason ? undefined : reason;
  }
}
