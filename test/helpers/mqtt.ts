// MQTT for end-to-end tests: mosquitto_pub / mosquitto_sub run as processes; `mqtt` (MQTT.js) clients that
// record every packet they receive, so tests can read reason codes and reason strings, and tell when the
// connection closed; and MqttGateway, a gateway process with MQTT listeners, registered devices and a spy
// at the broker. Clients connect through a gateway listener (TLS, a device certificate) or straight to the
// shared broker (BROKER_URL, anonymous), where every run keeps to its own random topic prefix and ids.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import mqtt, {
  type IClientOptions,
  type IClientPublishOptions,
  type IConnackPacket,
  type IPublishPacket,
  type MqttClient,
  type Packet,
} from "mqtt";
import type { ISubackPacket } from "mqtt-packet";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type GatewayProcess, startGateway, tempDir } from "./gateway-process.ts";
import { AdminApi, type IssuedDevice, type RegistryPki, registryPki } from "./registry.ts";

/** The shared Mosquitto broker: every test namespaces its topics and client ids with randomId(). */
export const BROKER_URL = "mqtt://127.0.0.1:1883";
/** How long TestClient waits for a PUBACK / PUBCOMP or SUBACK. */
const ACK_MS = 15_000;

/** `<prefix>-<12 hex digits>`: topic prefixes, device ids and client ids no other run will use. */
export function randomId(prefix: string): string {
  return `${prefix}-${randomBytes(6).toString("hex")}`;
}

/** A device certificate and key on disk (IssuedDevice fits). */
export interface DeviceCredentials {
  readonly certFile: string;
  readonly keyFile: string;
}

// ---------------------------------------------------------------------------------------------------------
// mosquitto_pub / mosquitto_sub

export interface ToolResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr together, for assertion messages. */
  readonly output: string;
}

/** The TLS arguments of mosquitto_pub / mosquitto_sub for a device on a gateway listener. */
export function mosquittoTls(port: number, dir: string, device: DeviceCredentials): string[] {
  return [
    "-h",
    "127.0.0.1",
    "-p",
    String(port),
    "--cafile",
    join(dir, "ca-chain.crt"),
    "--cert",
    device.certFile,
    "--key",
    device.keyFile,
  ];
}

/** Runs mosquitto_pub or mosquitto_sub to its end. */
export function mosquitto(
  tool: "mosquitto_pub" | "mosquitto_sub",
  args: readonly string[],
  timeoutMs = 20_000,
): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(tool, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code ?? null) : 0;
      resolve({
        code: typeof code === "number" ? code : null,
        stdout,
        stderr,
        output: `${tool} ${args.join(" ")}\n--- stdout\n${stdout}--- stderr\n${stderr}`,
      });
    });
  });
}

/**
 * mosquitto_sub in the background, with `-d` (to see its SUBACK) and each message printed as
 * `MSG <topic> <payload>`; pass `-t`, `-C`, `-W`… in `args`.
 */
export class MosquittoSub {
  readonly #stdout: string[] = [];
  readonly #stderr: string[] = [];
  readonly #waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;
  readonly #kill: () => void;
  readonly #args: readonly string[];

  constructor(args: readonly string[]) {
    this.#args = ["-d", "-F", "MSG %t %p", ...args];
    // Line-buffered: mosquitto_sub's stdout is a pipe here, which stdio would otherwise hold back.
    const child = spawn("stdbuf", ["-oL", "mosquitto_sub", ...this.#args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const note = (into: string[]) => (chunk: Buffer) => {
      into.push(chunk.toString());
      for (const wake of this.#waiters.splice(0)) wake();
    };
    child.stdout.on("data", note(this.#stdout));
    child.stderr.on("data", note(this.#stderr));
    this.exited = new Promise((resolve) =>
      child.once("close", (code) => {
        for (const wake of this.#waiters.splice(0)) wake();
        resolve(code);
      }),
    );
    this.#kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    };
  }

  get stdout(): string {
    return this.#stdout.join("");
  }

  get output(): string {
    return `mosquitto_sub ${this.#args.join(" ")}\n--- stdout\n${this.stdout}--- stderr\n${this.#stderr.join("")}`;
  }

  /** The `MSG <topic> <payload>` lines so far. */
  get messages(): string[] {
    return this.stdout
      .split("\n")
      .filter((l) => l.startsWith("MSG "))
      .map((l) => l.slice(4));
  }

  /** Resolves once the output holds `text`; fails after `ms` or when the process ended without it. */
  async waitFor(text: string, ms: number): Promise<void> {
    const end = Date.now() + ms;
    let exited = false;
    void this.exited.then(() => {
      exited = true;
    });
    while (!this.stdout.includes(text)) {
      if (exited) throw new Error(`mosquitto_sub ended without "${text}":\n${this.output}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`not within ${ms} ms: "${text}" from mosquitto_sub:\n${this.output}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  stop(): Promise<number | null> {
    this.#kill();
    return this.exited;
  }
}

// ---------------------------------------------------------------------------------------------------------
// MQTT.js clients

export interface ClientOptions extends IClientOptions {
  /** Through a gateway listener with this device's certificate; absent: straight to the broker. */
  readonly via?: { readonly port: number; readonly dir: string; readonly device: DeviceCredentials };
}

/** What a publish got back: the error MQTT.js reported (with `code` = reason code) and the ack packet. */
export interface PublishOutcome {
  readonly error: (Error & { code?: number }) | undefined;
  readonly packet: Packet | undefined;
}

/**
 * An MQTT.js client (MQTT 5 unless told; no reconnects) recording what it receives. `connack` resolves with
 * the CONNACK whatever its reason code (and rejects if the connection closed first); `closed` resolves
 * with performance.now() when the connection closed.
 */
export class TestClient {
  readonly client: MqttClient;
  readonly received: Packet[] = [];
  readonly errors: Error[] = [];
  readonly connack: Promise<IConnackPacket>;
  readonly closed: Promise<number>;
  #closedAt: number | undefined;
  readonly #waiters: (() => void)[] = [];

  constructor(options: ClientOptions = {}) {
    const { via, ...rest } = options;
    const base: IClientOptions = {
      protocolVersion: 5,
      reconnectPeriod: 0,
      connectTimeout: 15_000,
      clientId: randomId("pc-e2e-client"),
      ...rest,
    };
    this.client = via
      ? mqtt.connect(`mqtts://127.0.0.1:${via.port}`, {
          ...base,
          ca: readFileSync(join(via.dir, "ca-chain.crt")),
          cert: readFileSync(via.device.certFile),
          key: readFileSync(via.device.keyFile),
        })
      : mqtt.connect(BROKER_URL, base);
    this.client.on("error", (err) => this.errors.push(err));
    this.client.on("packetreceive", (packet) => {
      this.received.push(packet);
      this.#wake();
    });
    this.closed = new Promise((resolve) =>
      this.client.once("close", () => {
        this.#closedAt = performance.now();
        this.#wake();
        resolve(this.#closedAt);
      }),
    );
    this.connack = (async () => {
      await this.waitForPacket((p) => p.cmd === "connack", 20_000, "a CONNACK");
      return this.received.find((p) => p.cmd === "connack") as IConnackPacket;
    })();
    // Callers that expect no CONNACK do not await it.
    this.connack.catch(() => {});
  }

  get isClosed(): boolean {
    return this.#closedAt !== undefined;
  }

  /** The CONNACK, asserting it accepted the connection. */
  async connected(): Promise<this> {
    const connack = await this.connack;
    const code = connack.reasonCode ?? connack.returnCode;
    if (code !== 0)
      throw new Error(`connection refused: CONNACK ${code} ${JSON.stringify(connack.properties)}`);
    return this;
  }

  /** The messages received on `topic` (or every topic). */
  messages(topic?: string): IPublishPacket[] {
    return this.received.filter(
      (p): p is IPublishPacket => p.cmd === "publish" && (topic === undefined || p.topic === topic),
    );
  }

  /** Waits for a received packet matching `match`; fails after `ms` or when the connection closed first. */
  async waitForPacket(match: (p: Packet) => boolean, ms: number, what: string): Promise<Packet> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.received.find(match);
      if (found) return found;
      if (this.isClosed) throw new Error(`the connection closed before ${what}`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`not within ${ms} ms: ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits for a message on `topic`. */
  async waitForMessage(topic: string, ms: number): Promise<IPublishPacket> {
    return (await this.waitForPacket(
      (p) => p.cmd === "publish" && p.topic === topic,
      ms,
      `a message on ${topic}`,
    )) as IPublishPacket;
  }

  /**
   * Publishes; resolves with the outcome once acknowledged (QoS 1, 2) or written (QoS 0), or with an error
   * when the connection closes first or after ACK_MS; never rejects.
   */
  publish(
    topic: string,
    payload: string | Buffer,
    options: IClientPublishOptions = {},
  ): Promise<PublishOutcome> {
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => resolve({ error: new Error(`no answer to the PUBLISH on ${topic}`), packet: undefined }),
        ACK_MS,
      );
      void this.closed.then(() => {
        clearTimeout(timer);
        resolve({ error: new Error("the connection closed"), packet: undefined });
      });
      this.client.publish(topic, payload, options, (error, packet) => {
        clearTimeout(timer);
        resolve({ error: (error ?? undefined) as PublishOutcome["error"], packet });
      });
    });
  }

  /** Subscribes; resolves with the SUBACK (whatever its codes) and MQTT.js's error (or a close, or ACK_MS). */
  subscribe(
    filters: string[],
    qos: 0 | 1 | 2 = 1,
  ): Promise<{ error: (Error & { code?: number }) | null; suback: ISubackPacket | undefined }> {
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => resolve({ error: new Error(`no SUBACK for ${filters.join(", ")}`), suback: undefined }),
        ACK_MS,
      );
      void this.closed.then(() => {
        clearTimeout(timer);
        resolve({ error: new Error("the connection closed"), suback: undefined });
      });
      this.client.subscribe(filters, { qos }, (error, _granted, packet) => {
        clearTimeout(timer);
        resolve({ error: (error ?? null) as (Error & { code?: number }) | null, suback: packet });
      });
    });
  }

  /** Closes the connection at once (no DISCONNECT needed by the tests). */
  end(): Promise<void> {
    return new Promise((resolve) => this.client.end(true, {}, () => resolve()));
  }

  #wake(): void {
    for (const wake of this.#waiters.splice(0)) wake();
  }
}

// ---------------------------------------------------------------------------------------------------------
// A gateway with MQTT listeners, registered devices, and a spy at the broker

type ListenerInput = ConfigInput["listeners"][number];

/** Largest packet on the `mqtt-strict` listener. */
export const SMALL_MAX_PACKET = 64 * 1024;
/** The TLS handshake's deadline on the `mqtt-strict` listener. */
export const STRICT_HANDSHAKE_TIMEOUT = "2s";
/** Time to a judged CONNECT, and the largest CONNECT, on the `mqtt-strict` listener. */
export const STRICT_CONNECT_TIMEOUT = "2s";
export const STRICT_MAX_CONNECT = 1024;

/**
 * Listeners (all to the shared broker, trust store "devices", registry required, topics under the
 * fixture's prefix: `<P>/devices/{deviceId}/#` and `<P>/groups/{group}/#` for publish and subscribe):
 * `mqtt` (application mode, client id and username replaced), `mqtt-hs` (handshake mode), `mqtt-quiet`
 * (hideReason), `mqtt-strict` (clientId and username refuse, maxPacketBytes SMALL_MAX_PACKET, connectTimeout
 * STRICT_CONNECT_TIMEOUT, maxConnectBytes STRICT_MAX_CONNECT).
 */
export const MQTT_LISTENERS = ["mqtt", "mqtt-hs", "mqtt-quiet", "mqtt-strict"] as const;
export type MqttListenerName = (typeof MQTT_LISTENERS)[number];

export interface MqttGatewayOptions {
  /** Devices to issue and register (random ids, one per role): role → the groups it is in. */
  readonly devices: Readonly<Record<string, readonly ("group" | "other-group")[]>>;
}

/**
 * One gateway process in a temp dir with the demo PKI, MQTT_LISTENERS (and the http listener the config
 * requires), the admin API, and a "spy" client subscribed straight at the broker to everything under the
 * random topic prefix. Clients made through it are ended, and retained topics noted with `retain()` are
 * cleared, by `close()`.
 */
export class MqttGateway {
  /** The random topic prefix of this fixture. */
  readonly prefix = randomId("pc-e2e");
  /** A random group name (`group` in the devices option). */
  readonly group = randomId("g");
  readonly otherGroup = randomId("g");
  readonly #run = randomId("d");
  readonly tmp = tempDir("portcullis-mqtt-");
  readonly #devices = new Map<string, IssuedDevice>();
  readonly #clients: TestClient[] = [];
  readonly #retained = new Set<string>();
  pki!: RegistryPki;
  gw!: GatewayProcess;
  admin!: AdminApi;
  spy!: TestClient;

  async start(options: MqttGatewayOptions): Promise<this> {
    this.pki = await registryPki(this.tmp.dir);
    for (const role of Object.keys(options.devices))
      this.#devices.set(role, await this.pki.issue(this.id(role)));
    this.#devices.set("wrong", this.pki.existing("wrong-device"));
    this.#devices.set("unregistered", this.pki.existing("unregistered-device"));
    const P = this.prefix;
    const listener = (name: MqttListenerName, extra: Partial<ListenerInput>, mqtt = {}): ListenerInput => ({
      name,
      protocol: "mqtt",
      port: 0,
      clientAuth: "application",
      certificates: [{ cert: "server.crt", key: "server.key" }],
      mqtt: {
        broker: BROKER_URL,
        auth: { trustStores: ["devices"], registry: "required" },
        topics: {
          publish: [`${P}/devices/{deviceId}/#`, `${P}/groups/{group}/#`],
          subscribe: [`${P}/devices/{deviceId}/#`, `${P}/groups/{group}/#`],
        },
        ...mqtt,
      },
      ...extra,
    });
    this.gw = await startGateway(this.tmp.dir, {
      listeners: [
        {
          name: "web",
          port: 0,
          clientAuth: "application",
          certificates: [{ cert: "server.crt", key: "server.key" }],
        },
        listener("mqtt", {}),
        listener("mqtt-hs", { clientAuth: "handshake" }),
        listener("mqtt-quiet", { hideReason: true }),
        listener(
          "mqtt-strict",
          { limits: { handshakeTimeout: STRICT_HANDSHAKE_TIMEOUT } },
          {
            clientId: "refuse",
            username: "refuse",
            maxPacketBytes: SMALL_MAX_PACKET,
            connectTimeout: STRICT_CONNECT_TIMEOUT,
            maxConnectBytes: STRICT_MAX_CONNECT,
          },
        ),
      ],
      trustStores: [{ name: "devices", ca: ["ca-chain.crt"] }],
      services: [{ name: "echo", targets: ["http://127.0.0.1:9"] }],
      routes: [{ name: "echo", paths: ["/echo"], service: "echo", auth: { trustStores: ["devices"] } }],
      admin: { host: "127.0.0.1", port: 0, tokenFile: "admin.token" },
      store: { url: "sqlite:registry.db" },
      log: { level: "info" },
    });
    this.admin = new AdminApi(this.gw.adminPort, this.pki.token);
    for (const [role, groups] of Object.entries(options.devices)) {
      const names = groups.map((g) => (g === "group" ? this.group : this.otherGroup));
      await this.admin.register(this.id(role), this.device(role), { groups: names });
    }
    this.spy = this.direct();
    await this.spy.connected();
    const { error } = await this.spy.subscribe([`${P}/#`], 2);
    if (error) throw error;
    return this;
  }

  /** The device id of a role (`d-<random>-<role>`). */
  id(role: string): string {
    return `${this.#run}-${role}`;
  }

  /** A role's certificate, or the demo's "wrong" (untrusted CA) and "unregistered" devices. */
  device(role: string): IssuedDevice {
    const found = this.#devices.get(role);
    if (!found) throw new Error(`no device ${role}`);
    return found;
  }

  port(listener: MqttListenerName): number {
    const p = this.gw.ports[listener];
    if (p === undefined) throw new Error(`no listener ${listener}`);
    return p;
  }

  /** `<P>/devices/<role's id>/<rest>` */
  deviceTopic(role: string, rest: string): string {
    return `${this.prefix}/devices/${this.id(role)}/${rest}`;
  }

  /** `<P>/groups/<group>/<rest>` */
  groupTopic(rest: string): string {
    return `${this.prefix}/groups/${this.group}/${rest}`;
  }

  /** An MQTT.js client through `listener` with a role's certificate (MQTT 5 unless told). */
  through(listener: MqttListenerName, role: string, options: IClientOptions = {}): TestClient {
    const via = { port: this.port(listener), dir: this.tmp.dir, device: this.device(role) };
    const c = new TestClient({ ...options, via });
    this.#clients.push(c);
    return c;
  }

  /** An MQTT.js client straight at the broker. */
  direct(options: IClientOptions = {}): TestClient {
    const c = new TestClient(options);
    this.#clients.push(c);
    return c;
  }

  /** mosquitto_pub / mosquitto_sub arguments to reach `listener` with a role's certificate. */
  tls(listener: MqttListenerName, role: string): string[] {
    return mosquittoTls(this.port(listener), this.tmp.dir, this.device(role));
  }

  /** The topics of the messages the spy got from the broker so far. */
  spied(): string[] {
    return this.spy.messages().map((m) => m.topic);
  }

  /** GET /metrics */
  async metrics(): Promise<string> {
    return (await this.admin.call("GET", "/metrics")).text;
  }

  /** Notes a retained topic, to be cleared (empty retained payload) at close. */
  retain(topic: string): string {
    this.#retained.add(topic);
    return topic;
  }

  async close(): Promise<void> {
    for (const c of this.#clients) await c.end();
    if (this.#retained.size > 0) {
      const cleaner = new TestClient();
      await cleaner.connected();
      for (const topic of this.#retained) await cleaner.publish(topic, "", { qos: 1, retain: true });
      await cleaner.end();
    }
    await this.gw?.stop();
    this.tmp.cleanup();
  }
}
