// The proxy through `portcullis start` with its own config and upstreams: 502 for an upstream that is down,
// 504 for one that never answers, 5 MB bodies both ways intact on HTTP/1.1 and HTTP/2, round-robin over two
// targets, method-restricted routes and path parameters.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ConfigInput } from "../../src/config/schema.ts";
import { startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { type CurlOptions, type CurlResult, curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";

const FIVE_MB = 5 * 1024 * 1024;
const HTTP_VERSIONS = ["1.1", "2"] as const;

interface Echoed {
  method: string;
  path: string;
  body: { bytes: number; sha256: string };
}

interface TestServer {
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

function listen(handler: RequestListener): Promise<TestServer> {
  const server = createServer(handler);
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        server,
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** A port that nothing listens on: bound once, then closed. */
async function closedPort(): Promise<number> {
  const s = await listen(() => {});
  const { port } = s.server.address() as AddressInfo;
  await s.close();
  return port;
}

/** Deterministic bytes: SHA-256 in counter mode. */
function deterministicChunk(index: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let offset = 0, block = 0; offset < size; offset += 32, block++) {
    createHash("sha256").update(`portcullis-${index}-${block}`).digest().copy(out, offset);
  }
  return out;
}

const CHUNK = 64 * 1024;
const BIG_CHUNKS = Array.from({ length: FIVE_MB / CHUNK }, (_, i) => deterministicChunk(i, CHUNK));
const BIG_SHA256 = BIG_CHUNKS.reduce((h, c) => h.update(c), createHash("sha256")).digest("hex");

/** Streams the 5 MB body chunk by chunk (chunked encoding, honouring backpressure). */
const bigResponse: RequestListener = (req, res) => {
  req.resume();
  res.writeHead(200, { "content-type": "application/octet-stream" });
  let i = 0;
  const write = () => {
    while (i < BIG_CHUNKS.length) {
      const chunk = BIG_CHUNKS[i++];
      if (chunk && !res.write(chunk)) {
        res.once("drain", write);
        return;
      }
    }
    res.end();
  };
  write();
};

const tagged =
  (tag: string): RequestListener =>
  (req, res) => {
    req.resume();
    const body = JSON.stringify({ tag, path: req.url });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  };

/** The final response's body: curl prints an interim `100 Continue` head first when it sent `Expect: 100-continue`. */
function finalBody(r: CurlResult): string {
  let body = r.body;
  while (body.startsWith("HTTP/")) body = body.slice(body.indexOf("\r\n\r\n") + 4);
  return body;
}

describe("proxy (portcullis start)", () => {
  const tmp = tempDir();
  const servers: TestServer[] = [];
  let gw: GatewayProcess;
  let port = 0;
  const request = (options: Omit<CurlOptions, "port" | "dir">): Promise<CurlResult> =>
    curl({ port, dir: tmp.dir, device: "device", ...options });

  before(async () => {
    await ensureDemoPki(tmp.dir);
    const echo = await startEchoUpstream();
    servers.push(echo);
    const slow = await listen(() => {}); // reads the request, never answers
    const big = await listen(bigResponse);
    const a = await listen(tagged("a"));
    const b = await listen(tagged("b"));
    servers.push(slow, big, a, b);
    const down = `http://127.0.0.1:${await closedPort()}`;
    const auth = { trustStores: ["devices"] };
    const config: ConfigInput = {
      listeners: [
        {
          name: "main",
          port: 0,
          clientAuth: "application",
          certificates: [{ cert: "server.crt", key: "server.key" }],
        },
      ],
      trustStores: [{ name: "devices", ca: "ca-chain.crt" }],
      services: [
        { name: "echo", targets: [echo.url] },
        { name: "down", targets: [down], connectTimeout: "2s" },
        { name: "slow", targets: [slow.url], readTimeout: "300ms" },
        { name: "big", targets: [big.url] },
        { name: "pair", targets: [a.url, b.url] },
      ],
      routes: [
        { name: "echo", paths: ["/echo"], service: "echo", auth },
        { name: "down", paths: ["/down"], service: "down", auth },
        { name: "slow", paths: ["/slow"], service: "slow", auth },
        { name: "big", paths: ["/big"], service: "big", auth },
        { name: "pair", paths: ["/pair"], service: "pair", auth },
        { name: "get-only", paths: ["/get-only"], methods: ["GET"], service: "echo", auth },
        { name: "telemetry", paths: ["/devices/:id/telemetry"], service: "echo", auth },
      ],
    };
    gw = await startGateway(tmp.dir, config);
    port = gw.ports.main ?? 0;
    assert.notEqual(port, 0);
  });

  after(async () => {
    const code = await gw?.stop();
    await Promise.all(servers.map((s) => s.close()));
    tmp.cleanup();
    assert.equal(code, 0, "graceful stop exits 0");
  });

  test("an upstream that is down gets a quick 502 JSON", async () => {
    for (const http of HTTP_VERSIONS) {
      const started = performance.now();
      const r = await request({ path: "/down", http });
      const elapsed = performance.now() - started;
      assert.equal(r.status, 502, `HTTP/${http}: ${r.body}`);
      assert.match(r.headers["content-type"] ?? "", /^application\/json/);
      const body = r.json<{ message?: unknown }>();
      assert.equal(typeof body.message, "string");
      assert.match(r.headers["x-portcullis-latency"] ?? "", /^\d+$/);
      assert.ok(elapsed < 3_000, `502 took ${Math.round(elapsed)} ms`);
    }
  });

  test("an upstream that never answers gets 504 JSON after its readTimeout", async () => {
    for (const http of HTTP_VERSIONS) {
      const started = performance.now();
      const r = await request({ path: "/slow", http });
      const elapsed = performance.now() - started;
      assert.equal(r.status, 504, `HTTP/${http}: ${r.body}`);
      assert.match(r.headers["content-type"] ?? "", /^application\/json/);
      assert.equal(typeof r.json<{ message?: unknown }>().message, "string");
      assert.ok(elapsed >= 250, `504 came before the 300 ms readTimeout (${Math.round(elapsed)} ms)`);
      assert.ok(elapsed < 4_000, `504 took ${Math.round(elapsed)} ms`);
    }
  });

  test("a 5 MB request body reaches the upstream intact over HTTP/1.1 and HTTP/2", async () => {
    const file = join(tmp.dir, "upload.bin");
    const data = Buffer.concat(BIG_CHUNKS.map((c) => Buffer.from(c).reverse()));
    writeFileSync(file, data);
    const sha256 = createHash("sha256").update(data).digest("hex");
    for (const http of HTTP_VERSIONS) {
      const r = await request({
        path: "/echo",
        http,
        args: ["--data-binary", `@${file}`, "-H", "Content-Type: application/octet-stream"],
      });
      assert.equal(r.status, 200, `HTTP/${http}: ${r.body.slice(0, 500)}`);
      const echoed = JSON.parse(finalBody(r)) as Echoed;
      assert.equal(echoed.method, "POST");
      assert.deepEqual(echoed.body, { bytes: FIVE_MB, sha256 }, `HTTP/${http}`);
    }
  });

  test("a 5 MB streamed response body arrives intact over HTTP/1.1 and HTTP/2", async () => {
    for (const http of HTTP_VERSIONS) {
      const file = join(tmp.dir, `download-${http}.bin`);
      const r = await request({ path: "/big", http, args: ["-o", file] });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.status, 200, `HTTP/${http}`);
      const got = readFileSync(file);
      assert.equal(got.length, FIVE_MB, `HTTP/${http}: length`);
      assert.equal(createHash("sha256").update(got).digest("hex"), BIG_SHA256, `HTTP/${http}: sha256`);
    }
  });

  test("two targets take turns (round-robin)", async () => {
    const tags: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await request({ path: "/pair", http: i % 2 === 0 ? "2" : "1.1" });
      assert.equal(r.status, 200, r.body);
      tags.push(r.json<{ tag: string }>().tag);
    }
    assert.deepEqual(new Set(tags), new Set(["a", "b"]), `tags: ${tags.join(",")}`);
    for (let i = 1; i < tags.length; i++) assert.notEqual(tags[i], tags[i - 1], `tags: ${tags.join(",")}`);
  });

  test("a route limited to GET answers GET and gets 404 for POST", async () => {
    const get = await request({ path: "/get-only" });
    assert.equal(get.status, 200, get.body);
    assert.equal(get.json<Echoed>().method, "GET");
    const post = await request({ path: "/get-only", args: ["--data-binary", "x"] });
    assert.equal(post.status, 404, post.body);
    assert.match(post.headers["content-type"] ?? "", /^application\/json/);
  });

  test("a route path with a parameter matches /devices/abc/telemetry and not a sibling path", async () => {
    const r = await request({ path: "/devices/abc/telemetry" });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json<Echoed>().path, "/devices/abc/telemetry");
    const q = await request({ path: "/devices/abc-42/telemetry?since=10" });
    assert.equal(q.status, 200, q.body);
    assert.equal(q.json<Echoed>().path, "/devices/abc-42/telemetry?since=10");
    const miss = await request({ path: "/devices/abc/config" });
    assert.equal(miss.status, 404, miss.body);
  });
});
