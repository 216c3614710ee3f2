// Graceful shutdown: SIGTERM stops accepting new connections at once, lets the requests in flight (HTTP/1.1
// and HTTP/2) finish with their real answers, then exits 0.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";

/** Resolves when `predicate` holds, polling an in-process condition; rejects after `timeoutMs`. */
async function until(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A TCP connect attempt: "connected" or the error code. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe("graceful shutdown on SIGTERM", () => {
  const tmp = tempDir();
  // The upstream holds every response until the test has checked the refusal of new connections, and for at
  // least a second after the request arrived: a slow upstream, released by the test rather than a blind timer.
  const held: { req: IncomingMessage; res: ServerResponse; at: number }[] = [];
  const upstream = createServer((req, res) => {
    req.resume();
    held.push({ req, res, at: performance.now() });
  });
  let gw: GatewayProcess | undefined;

  before(async () => {
    await ensureDemoPki(tmp.dir);
    upstream.listen(0, "127.0.0.1");
    await once(upstream, "listening");
    const { port } = upstream.address() as AddressInfo;
    gw = await startGateway(tmp.dir, {
      listeners: [
        {
          name: "main",
          port: 0,
          clientAuth: "application",
          certificates: [{ cert: "server.crt", key: "server.key" }],
        },
      ],
      trustStores: [{ name: "devices", ca: "ca-chain.crt" }],
      services: [{ name: "slow", targets: [`http://127.0.0.1:${port}`] }],
      routes: [{ name: "slow", paths: ["/slow"], service: "slow", auth: { trustStores: ["devices"] } }],
    });
  });

  after(async () => {
    if (gw && gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill("SIGKILL");
    upstream.closeAllConnections();
    upstream.close();
    tmp.cleanup();
  });

  test("requests in flight complete with 200 after SIGTERM, new connections are refused, exit code 0", async () => {
    assert.ok(gw);
    const { child } = gw;
    const port = gw.ports.main ?? 0;
    const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
    const inFlight = (["1.1", "2"] as const).map((http) =>
      curl({ port, dir: tmp.dir, device: "device", http, path: `/slow?http=${http}` }),
    );
    await until(() => held.length === 2, "both requests to reach the upstream");
    assert.equal(await tryConnect(port), "connected", "the gateway accepts connections before SIGTERM");

    child.kill("SIGTERM");
    await until(() => gw?.output().includes('"shutting down"') ?? false, "the shutdown log line");
    const refused = await tryConnect(port);
    assert.equal(refused, "ECONNREFUSED", "a new connection after SIGTERM is refused");
    assert.equal(child.exitCode, null, "the gateway waits for the requests in flight");

    for (const { req, res, at } of held) {
      const wait = at + 1_000 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      assert.equal(child.exitCode, null, "the gateway is still draining");
      const body = JSON.stringify({ done: true, path: req.url });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    }
    const results = await Promise.all(inFlight);
    for (const [i, r] of results.entries()) {
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.status, 200, r.body);
      assert.equal(r.httpVersion, i === 0 ? "1.1" : "2");
      assert.equal(r.json<{ done: boolean }>().done, true);
    }
    const [code, signal] = await exited;
    assert.equal(signal, null, "the gateway exited by itself, not killed by a signal");
    assert.equal(code, 0, gw.output());
  });
});
