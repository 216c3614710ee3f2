// WebSocket through the gateway (HTTP/1.1 Upgrade): a device's messages are echoed by the demo upstream, which
// sees the device's identity headers; a refused device gets the gateway's JSON before any upgrade (no tunnel is
// opened); the SNI/Host binding applies; suspending the device closes its tunnel (both sides) at once; the
// open-tunnel gauge follows; an upgrade other than WebSocket is refused.
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "node:tls";
import WebSocket from "ws";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  AdminApi,
  HOST,
  type IssuedDevice,
  metricValue,
  type RegistryPki,
  registryConfig,
  registryPki,
  waitFor,
  within,
} from "../helpers/registry.ts";

const PATH = "/ws/echo";

interface Greeting {
  type: string;
  path: string;
  headers: Record<string, string | undefined>;
}

/** `ws` hands its options to https.request, which takes the TLS ones (servername) too. */
type ClientOptions = WebSocket.ClientOptions & { servername?: string };

interface Refusal {
  status: number;
  body: { message?: string; reason?: string };
}

describe("WebSocket proxying (HTTP/1.1 upgrade)", () => {
  const tmp = tempDir("portcullis-websocket-");
  let pki: RegistryPki;
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let admin: AdminApi;
  let port = 0;
  /** The upstream side of every tunnel the echo upstream accepted. */
  const upstreamSockets: Duplex[] = [];
  const open: WebSocket[] = [];

  const options = (device: IssuedDevice, extra: ClientOptions = {}): ClientOptions => ({
    servername: HOST,
    headers: { host: HOST },
    ca: readFileSync(`${tmp.dir}/ca-chain.crt`),
    cert: readFileSync(device.certFile),
    key: readFileSync(device.keyFile),
    ...extra,
  });

  /** Opens a WebSocket and resolves with it and the upstream's greeting (its first message). */
  function connectDevice(
    device: IssuedDevice,
    extra?: ClientOptions,
  ): Promise<{ ws: WebSocket; greeting: Greeting; response: IncomingMessage }> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}${PATH}`, options(device, extra));
      open.push(ws);
      let response: IncomingMessage | undefined;
      ws.once("upgrade", (res) => {
        response = res;
      });
      ws.once("message", (data) => {
        resolve({
          ws,
          greeting: JSON.parse(String(data)) as Greeting,
          response: response as IncomingMessage,
        });
      });
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`unexpected ${res.statusCode}`)));
    });
  }

  /** An upgrade the gateway must refuse: its status and JSON body. */
  function refused(device: IssuedDevice, extra?: ClientOptions): Promise<Refusal> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`wss://127.0.0.1:${port}${PATH}`, options(device, extra));
      open.push(ws);
      ws.once("open", () => reject(new Error("the upgrade was accepted")));
      ws.once("error", () => {});
      ws.once("unexpected-response", (_req, res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
        res.on("error", reject);
      });
    });
  }

  const nextMessage = (ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> =>
    new Promise((resolve) =>
      ws.once("message", (data, isBinary) => resolve({ data: data as Buffer, isBinary })),
    );

  const gauge = async (): Promise<number | undefined> =>
    metricValue((await admin.call("GET", "/metrics")).text, "portcullis_websocket_connections", {
      route: "ws",
    });

  before(async () => {
    pki = await registryPki(tmp.dir);
    echo = await startEchoUpstream();
    echo.server.prependListener("upgrade", (_req: IncomingMessage, socket: Duplex) => {
      upstreamSockets.push(socket);
    });
    gw = await startGateway(
      tmp.dir,
      registryConfig({
        upstream: echo.url,
        storeUrl: "sqlite:registry.db",
        routes: [
          {
            name: "ws",
            hosts: [HOST],
            paths: [PATH],
            service: "echo",
            auth: { trustStores: ["devices"], registry: "required" },
          },
        ],
      }),
    );
    port = gw.ports.main ?? 0;
    admin = new AdminApi(gw.adminPort, pki.token);
    await admin.register("ws-device", await pki.issue("ws-device"));
    await admin.register("ws-suspended", await pki.issue("ws-suspended"));
  });
  after(async () => {
    for (const ws of open) ws.terminate();
    await gw?.stop();
    await echo?.close();
    tmp.cleanup();
  });

  test("messages are echoed through the tunnel; the upstream sees the device's identity headers", async () => {
    const before = upstreamSockets.length;
    const { ws, greeting, response } = await connectDevice(pki.existing("ws-device"));
    assert.equal(response.statusCode, 101);
    assert.match(String(response.headers["x-portcullis-latency"]), /^\d+$/);
    assert.equal(greeting.type, "greeting");
    assert.equal(greeting.path, PATH);
    assert.equal(greeting.headers["x-device-id"], "ws-device");
    assert.equal(greeting.headers["x-forwarded-proto"], "https");
    assert.equal(greeting.headers["x-forwarded-for"], "127.0.0.1");
    assert.match(greeting.headers["x-forwarded-client-cert"] ?? "", /^Hash=/);
    assert.equal(greeting.headers.upgrade, "websocket");
    assert.equal(upstreamSockets.length, before + 1);

    ws.send("hello, gateway");
    const text = await nextMessage(ws);
    assert.equal(text.isBinary, false);
    assert.equal(text.data.toString(), "hello, gateway");

    // A large binary message crosses the tunnel intact (both directions, with backpressure).
    const big = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    ws.send(big);
    const back = await nextMessage(ws);
    assert.equal(back.isBinary, true);
    assert.ok(back.data.equals(big), "the binary message came back unchanged");

    assert.equal(await gauge(), 1);
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    ws.close(1000, "done");
    assert.equal(await within(closed, 5_000, "the close handshake through the tunnel"), 1000);
    await waitFor(async () => (await gauge()) === 0, 5_000, "the gauge drops to 0");
  });

  test("a certificate from an untrusted CA is refused with 401 JSON before any upgrade", async () => {
    const before = upstreamSockets.length;
    const r = await refused(pki.existing("wrong-device"));
    assert.equal(r.status, 401);
    assert.equal(typeof r.body.reason, "string");
    assert.equal(upstreamSockets.length, before, "no tunnel was opened");
  });

  test("an unregistered device is refused with 401 unknown_device; no tunnel", async () => {
    const before = upstreamSockets.length;
    const r = await refused(pki.existing("unregistered-device"));
    assert.equal(r.status, 401);
    assert.equal(r.body.reason, "unknown_device");
    assert.equal(upstreamSockets.length, before);
  });

  test("the SNI/Host binding applies: 421 sni_host_mismatch", async () => {
    const before = upstreamSockets.length;
    const r = await refused(pki.existing("ws-device"), { headers: { host: "localhost" } });
    assert.equal(r.status, 421);
    assert.equal(r.body.reason, "sni_host_mismatch");
    assert.equal(upstreamSockets.length, before);
  });

  test("suspending the device closes its tunnel within 1 s, the upstream side too; then 403", async () => {
    const { ws } = await connectDevice(pki.existing("ws-suspended"));
    const upstream = upstreamSockets.at(-1) as Duplex;
    assert.equal(upstream.destroyed, false);
    const clientClosed = new Promise<number>((resolve) => ws.once("close", () => resolve(performance.now())));
    const upstreamClosed = new Promise<number>((resolve) =>
      upstream.once("close", () => resolve(performance.now())),
    );
    await admin.patch("ws-suspended", { status: "suspended" });
    const answered = performance.now();
    const [clientAt, upstreamAt] = await within(
      Promise.all([clientClosed, upstreamClosed]),
      1_000,
      "the gateway closes the suspended device's tunnel",
    );
    assert.ok(clientAt - answered < 1_000, `client side closed ${Math.round(clientAt - answered)} ms after`);
    assert.ok(upstreamAt - answered < 1_000, `upstream closed ${Math.round(upstreamAt - answered)} ms after`);
    const r = await refused(pki.existing("ws-suspended"));
    assert.equal(r.status, 403);
    assert.equal(r.body.reason, "device_suspended");
    await waitFor(async () => (await gauge()) === 0, 5_000, "the gauge drops to 0");
  });

  test("an upgrade to anything but WebSocket is refused with 400 and the connection closed", async () => {
    const device = pki.existing("ws-device");
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect({
        port,
        host: "127.0.0.1",
        servername: HOST,
        ALPNProtocols: ["http/1.1"],
        ca: readFileSync(`${tmp.dir}/ca-chain.crt`),
        cert: readFileSync(device.certFile),
        key: readFileSync(device.keyFile),
      });
      let text = "";
      socket.setEncoding("utf8");
      socket.on("secureConnect", () =>
        socket.write(`GET ${PATH} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n`),
      );
      socket.on("data", (chunk: string) => {
        text += chunk;
      });
      socket.on("close", () => resolve(text));
      socket.on("error", reject);
    });
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.match(answer, /\r\nConnection: close\r\n/i);
    assert.match(answer, /WebSocket/);
  });
});

describe("WebSocket tunnels and the idle timeout", () => {
  const tmp = tempDir("portcullis-websocket-idle-");
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let port = 0;
  let pki: RegistryPki;
  const IDLE_MS = 800;

  before(async () => {
    pki = await registryPki(tmp.dir);
    echo = await startEchoUpstream();
    const config = registryConfig({
      upstream: echo.url,
      storeUrl: "sqlite:registry.db",
      routes: [{ name: "ws", hosts: [HOST], paths: [PATH], service: "echo", public: true }],
    });
    const [listener] = config.listeners;
    if (listener) listener.limits = { idleTimeout: IDLE_MS };
    gw = await startGateway(tmp.dir, config);
    port = gw.ports.main ?? 0;
  });
  after(async () => {
    await gw?.stop();
    await echo?.close();
    tmp.cleanup();
  });

  test("traffic keeps a tunnel open past idleTimeout; silence both ways closes it", async () => {
    const device = pki.existing("device");
    const ws = new WebSocket(`wss://127.0.0.1:${port}${PATH}`, {
      servername: HOST,
      headers: { host: HOST },
      ca: readFileSync(`${tmp.dir}/ca-chain.crt`),
      cert: readFileSync(device.certFile),
      key: readFileSync(device.keyFile),
    } as ClientOptions);
    try {
      await once(ws, "message"); // the greeting
      const closed = new Promise<number>((resolve) => ws.once("close", () => resolve(performance.now())));
      // Messages every IDLE_MS / 4 for twice the idle timeout: still open.
      for (let i = 0; i < 8; i++) {
        await sleep(IDLE_MS / 4);
        ws.send(`tick ${i}`);
        await once(ws, "message");
      }
      assert.equal(ws.readyState, WebSocket.OPEN);
      const quietFrom = performance.now();
      const at = await within(closed, IDLE_MS * 5, "the idle tunnel is closed");
      assert.ok(at - quietFrom >= IDLE_MS * 0.9, `closed ${Math.round(at - quietFrom)} ms after going quiet`);
    } finally {
      ws.terminate();
    }
  });
});
