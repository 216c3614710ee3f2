// The WebSocket tunnel against real local servers: a plain HTTP front hands its upgrade requests to
// upgradeResponse + openTunnel (as request-handler.ts does once a request is allowed), a `ws` client talks
// through it to the demo echo upstream; also the answers that are not a tunnel (pass-back, 502, 504).
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { type AddressInfo, createServer as createNetServer, type Server as NetServer } from "node:net";
import type { Duplex } from "node:stream";
import { after, test } from "node:test";
import { pino } from "pino";
import WebSocket from "ws";
import { startEchoUpstream } from "../demo/echo-upstream.ts";
import { GatewayMetrics } from "../gateway/metrics.ts";
import { Upstream } from "./upstream.ts";
import { isWebSocketUpgrade, openTunnel, upgradeResponse } from "./websocket.ts";

const closers: (() => unknown)[] = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

const metrics = new GatewayMetrics({ defaultMetrics: false });
const logger = pino({ level: "silent" });

/** A client closed at the end, whatever a test left open. */
function client(url: string, options?: WebSocket.ClientOptions): WebSocket {
  const ws = new WebSocket(url, options);
  closers.push(() => ws.terminate());
  return ws;
}

async function listen<T extends Server | NetServer>(server: T): Promise<number> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  closers.push(
    () =>
      new Promise<void>((done) => {
        if (!server.listening) return done();
        (server as Server).closeAllConnections?.();
        server.close(() => done());
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** A front that tunnels every upgrade to `target` with the given identity headers. */
async function front(target: string, options: { readTimeoutMs?: number } = {}): Promise<number> {
  const upstream = new Upstream({
    name: "ws",
    targets: [new URL(target)],
    connectTimeoutMs: 1_000,
    readTimeoutMs: options.readTimeoutMs ?? 5_000,
    retries: 0,
    preserveHost: false,
  });
  closers.push(() => upstream.close());
  const server = createServer((_req, res) => res.end("not an upgrade"));
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => socket.destroy());
    socket.pause();
    const upgrade = { socket, head, opened: () => {} };
    const res = upgradeResponse(req, upgrade);
    openTunnel(
      upstream,
      {
        req,
        res,
        method: "GET",
        path: req.url ?? "/",
        host: "gw.example",
        clientAddress: "192.0.2.7",
        deviceId: "dev-1",
        identityHeaders: { "x-device-id": "dev-1" },
        startedAt: performance.now(),
      },
      upgrade,
      { route: "ws", metrics, logger },
    );
  });
  return listen(server);
}

test("isWebSocketUpgrade: GET with the websocket token only", () => {
  const req = (method: string, upgrade?: string) =>
    ({ method, headers: upgrade === undefined ? {} : { upgrade } }) as IncomingMessage;
  assert.equal(isWebSocketUpgrade(req("GET", "websocket")), true);
  assert.equal(isWebSocketUpgrade(req("GET", "WebSocket")), true);
  assert.equal(isWebSocketUpgrade(req("GET", "foo, websocket")), true);
  assert.equal(isWebSocketUpgrade(req("POST", "websocket")), false);
  assert.equal(isWebSocketUpgrade(req("GET", "h2c")), false);
  assert.equal(isWebSocketUpgrade(req("GET")), false);
});

test("relays messages both ways; the upstream gets the upgrade, identity and forwarding headers", async () => {
  const echo = await startEchoUpstream();
  closers.push(() => echo.close());
  const port = await front(echo.url);
  const ws = client(`ws://127.0.0.1:${port}/chat?x=1`, {
    headers: { "x-device-id": "spoofed", "x-forwarded-for": "203.0.113.9" },
  });
  const [greeting] = (await once(ws, "message")) as [Buffer];
  const seen = JSON.parse(String(greeting)) as { path: string; headers: Record<string, string> };
  assert.equal(seen.path, "/chat?x=1");
  assert.equal(seen.headers["x-device-id"], "dev-1");
  assert.equal(seen.headers["x-forwarded-for"], "192.0.2.7");
  assert.match(seen.headers["x-forwarded-host"] ?? "", /^gw\.example:\d+$/);
  assert.equal(seen.headers.upgrade, "websocket");
  assert.equal(seen.headers.connection, "upgrade");
  assert.ok(seen.headers["sec-websocket-key"]);
  const gauge = async () =>
    (await metrics.websocketConnections.get()).values.find((v) => v.labels.route === "ws")?.value;
  assert.equal(await gauge(), 1);

  for (const message of ["one", "two", "three"]) {
    ws.send(message);
    const [data] = (await once(ws, "message")) as [Buffer];
    assert.equal(String(data), message);
  }
  const big = Buffer.alloc(2 * 1024 * 1024, 7);
  ws.send(big);
  const [back, isBinary] = (await once(ws, "message")) as [Buffer, boolean];
  assert.equal(isBinary, true);
  assert.ok(back.equals(big));

  ws.close(1000);
  const [code] = (await once(ws, "close")) as [number];
  assert.equal(code, 1000);
  for (let i = 0; i < 50; i++) {
    if ((await gauge()) === 0) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail("the gauge went back to 0");
});

test("an upstream that does not switch: its answer is passed back and the connection closed", async () => {
  // No upgrade listener: Node answers an upgrade request as a normal one.
  const plain = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "x-plain": "yes" });
    res.end("no websocket here");
  });
  const port = await front(`http://127.0.0.1:${await listen(plain)}`);
  const ws = client(`ws://127.0.0.1:${port}/`);
  ws.on("error", () => {});
  const [, res] = (await once(ws, "unexpected-response")) as [unknown, IncomingMessage];
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers["x-plain"], "yes");
  assert.equal(res.headers.connection, "close");
  let body = "";
  for await (const chunk of res) body += String(chunk);
  assert.equal(body, "no websocket here");
});

test("a target that refuses the connection: 502; one that never answers: 504", async () => {
  const closed = createNetServer();
  const closedPort = await listen(closed);
  await new Promise<void>((done) => closed.close(() => done()));
  const refusing = await front(`http://127.0.0.1:${closedPort}`);
  const silent = createNetServer((socket) => {
    socket.on("error", () => {});
    socket.resume(); // reads (and drops) the request, so that the tunnel giving up is seen
  });
  const silentPort = await listen(silent);
  const slow = await front(`http://127.0.0.1:${silentPort}`, { readTimeoutMs: 200 });
  for (const [port, status] of [
    [refusing, 502],
    [slow, 504],
  ] as const) {
    const ws = client(`ws://127.0.0.1:${port}/`);
    ws.on("error", () => {});
    const [, res] = (await once(ws, "unexpected-response")) as [unknown, IncomingMessage];
    assert.equal(res.statusCode, status);
    assert.match(String(res.headers["content-type"]), /^application\/json/);
    res.resume();
  }
});
