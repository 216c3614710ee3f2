// Upstream against real local HTTP servers, driven through a real gateway front (HTTP/1.1 and h2c) by a real client.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import type { RequestListener } from "node:http";
import { connect as connectH2, createServer as createH2Server } from "node:http2";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { Readable } from "node:stream";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import { UPSTREAM_MESSAGES } from "../gateway/respond.ts";
import { type EchoBody, echo, ProxyHarness } from "./testing/harness.ts";
import { UPSTREAM_LATENCY_HEADER } from "./upstream.ts";

const unexpected: unknown[] = [];
process.on("unhandledRejection", (err) => unexpected.push(err));
process.on("uncaughtException", (err) => unexpected.push(err));

const h = new ProxyHarness();
const client = h.client;
after(async () => {
  await h.close();
  assert.deepEqual(unexpected, [], "no unhandled rejection or exception");
});

test("proxies a request: path, headers in both directions, latency headers", async () => {
  const upstreamUrl = await h.startUpstream(echo);
  const gateway = await h.startGateway(h.upstream([upstreamUrl]));
  const res = await request(new URL("/things?x=1", gateway), {
    dispatcher: client,
    headers: { "x-device-id": "spoofed", x_consumer_username: "admin", "x-custom": "kept" },
  });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers["x-upstream"], "echo");
  assert.match(String(res.headers["x-portcullis-latency"]), /^\d+$/);
  assert.match(String(res.headers[UPSTREAM_LATENCY_HEADER]), /^\d+$/);
  const seen = (await res.body.json()) as EchoBody;
  assert.equal(seen.method, "GET");
  assert.equal(seen.url, "/things?x=1");
  assert.equal(seen.headers["x-device-id"], "device-001");
  assert.equal(seen.headers.x_consumer_username, undefined);
  assert.equal(seen.headers["x-forwarded-client-cert"], "Hash=abc");
  assert.equal(seen.headers["x-custom"], "kept");
  assert.equal(seen.headers["x-forwarded-for"], "127.0.0.1");
  assert.equal(seen.headers["x-forwarded-proto"], "https");
  assert.equal(seen.headers["x-forwarded-host"], `localhost:${gateway.port}`);
  assert.equal(seen.headers.host, upstreamUrl.host, "the target's own Host unless preserveHost");

  const preserving = await h.startGateway(h.upstream([upstreamUrl], { preserveHost: true }));
  const kept = (await (await request(preserving, { dispatcher: client })).body.json()) as EchoBody;
  assert.equal(kept.headers.host, `localhost:${preserving.port}`);
});

test("5 MB request and 5 MB response bodies stream through intact", async () => {
  const big = randomBytes(5 * 1024 * 1024);
  const bigHash = createHash("sha256").update(big).digest("hex");
  const upstreamUrl = await h.startUpstream((req, res) => {
    if (req.method === "POST") return echo(req, res);
    res.writeHead(200, { "content-type": "application/octet-stream" });
    // Written in chunks so that the proxy's backpressure, not one big buffer, carries it.
    Readable.from(
      (function* () {
        for (let i = 0; i < big.length; i += 64 * 1024) yield big.subarray(i, i + 64 * 1024);
      })(),
    ).pipe(res);
  });
  const gateway = await h.startGateway(h.upstream([upstreamUrl]));

  const up = await request(new URL("/upload", gateway), {
    dispatcher: client,
    method: "POST",
    body: Readable.from([big.subarray(0, 1_000_000), big.subarray(1_000_000)]), // chunked, no content-length
  });
  assert.equal(up.statusCode, 200);
  const seen = (await up.body.json()) as EchoBody;
  assert.equal(seen.size, big.length);
  assert.equal(seen.sha256, bigHash);

  const sized = await request(new URL("/upload", gateway), { dispatcher: client, method: "POST", body: big });
  assert.equal(((await sized.body.json()) as EchoBody).sha256, bigHash);

  const down = await request(new URL("/download", gateway), { dispatcher: client });
  assert.equal(down.statusCode, 200);
  const received = Buffer.from(await down.body.arrayBuffer());
  assert.equal(received.length, big.length);
  assert.equal(createHash("sha256").update(received).digest("hex"), bigHash);
});

test("an upstream that refuses connections answers 502 JSON, with or without a request body", async () => {
  const gateway = await h.startGateway(h.upstream([await h.closedPort()], { retries: 2 }));
  for (const body of [undefined, "payload"]) {
    const res = await request(gateway, { dispatcher: client, method: body ? "POST" : "GET", body });
    assert.equal(res.statusCode, 502);
    assert.match(String(res.headers["content-type"]), /application\/json/);
    assert.deepEqual(await res.body.json(), { message: UPSTREAM_MESSAGES.badGateway });
  }
});

test("a reset or a malformed response before headers is a 502", async () => {
  const reset = await h.startUpstream((req) => req.socket.destroy());
  const garbage = await h.listen(createNetServer((socket) => socket.end("NOT HTTP AT ALL\r\n\r\n")));
  for (const target of [reset, garbage]) {
    const gateway = await h.startGateway(h.upstream([target]));
    const res = await request(gateway, { dispatcher: client });
    assert.equal(res.statusCode, 502, target.href);
    assert.deepEqual(await res.body.json(), { message: UPSTREAM_MESSAGES.badGateway });
  }
});

test("an upstream that sends no headers within readTimeoutMs answers 504 JSON promptly", async () => {
  const silent = await h.startUpstream(() => {});
  const gateway = await h.startGateway(h.upstream([silent], { readTimeoutMs: 300 }));
  const started = performance.now();
  const res = await request(gateway, { dispatcher: client });
  const took = performance.now() - started;
  assert.equal(res.statusCode, 504);
  assert.deepEqual(await res.body.json(), { message: UPSTREAM_MESSAGES.timeout });
  // Not before the read timeout, and nowhere near undici's own (300 s) headers timeout.
  assert.ok(took >= 250 && took < 10_000, `took ${took} ms`);
});

test("requests are spread round-robin across targets", async () => {
  const named =
    (name: string): RequestListener =>
    (_req, res) =>
      res.end(name);
  const targets = [await h.startUpstream(named("a")), await h.startUpstream(named("b"))];
  const gateway = await h.startGateway(h.upstream(targets));
  const seen: string[] = [];
  for (let i = 0; i < 4; i++) {
    seen.push(await (await request(gateway, { dispatcher: client })).body.text());
  }
  assert.deepEqual(seen, ["a", "b", "a", "b"]);
});

test("a refused connection is retried on the next target for bodiless requests only", async () => {
  const targets = [await h.closedPort(), await h.startUpstream((_req, res) => res.end("live"))];
  const gateway = await h.startGateway(h.upstream(targets, { retries: 1 }));
  for (let i = 0; i < 4; i++) {
    const res = await request(gateway, { dispatcher: client });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), "live");
  }
  // Round-robin starts the next POST on the dead target; its streamed body cannot be replayed elsewhere.
  const statuses: number[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await request(gateway, { dispatcher: client, method: "POST", body: "x" });
    statuses.push(res.statusCode);
    await res.body.dump();
  }
  assert.deepEqual(statuses.sort(), [200, 502]);
});

test("a client that aborts cancels the upstream request and crashes nothing", async () => {
  let upstreamClosed = 0;
  const streaming = await h.startUpstream((req, res) => {
    req.socket.on("close", () => upstreamClosed++);
    if (req.url === "/stall") return; // never answers
    res.writeHead(200);
    const timer = setInterval(() => res.write("tick\n"), 20);
    res.on("close", () => clearInterval(timer));
  });
  const gateway = await h.startGateway(h.upstream([streaming], { readTimeoutMs: 5000 }));

  const midBody = new AbortController();
  const res = await request(new URL("/stream", gateway), { dispatcher: client, signal: midBody.signal });
  assert.equal(res.statusCode, 200);
  for await (const _chunk of res.body) break; // one chunk, then walk away
  midBody.abort();

  const beforeHeaders = new AbortController();
  const pending = request(new URL("/stall", gateway), { dispatcher: client, signal: beforeHeaders.signal });
  await sleep(100);
  beforeHeaders.abort();
  await assert.rejects(pending);

  for (let i = 0; i < 50 && upstreamClosed < 2; i++) await sleep(20);
  assert.equal(upstreamClosed, 2, "both upstream connections were torn down");
});

test("an upstream failing after its headers resets the client response instead of hanging", async () => {
  const broken = await h.startUpstream((_req, res) => {
    res.writeHead(200, { "content-length": "1000" });
    res.write("partial");
    setTimeout(() => res.socket?.destroy(), 50);
  });
  const gateway = await h.startGateway(h.upstream([broken]));
  const res = await request(gateway, { dispatcher: client });
  assert.equal(res.statusCode, 200);
  await assert.rejects(res.body.text());
});

test("an HTTP/2 front gets the upstream's answer without connection-specific headers", async () => {
  const upstreamUrl = await h.startUpstream(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    res.writeHead(200, { connection: "keep-alive", "keep-alive": "timeout=5", "x-upstream": "h1" });
    res.end(`over h2: ${req.headers["x-device-id"]} ${Buffer.concat(chunks).toString()}`);
  });
  const front = createH2Server(h.forwarder(h.upstream([upstreamUrl])));
  await h.listen(front);
  const session = connectH2(`http://127.0.0.1:${(front.address() as AddressInfo).port}`);
  h.onClose(() => session.close());

  for (const [method, body] of [
    ["GET", ""],
    ["POST", "h2 body"],
  ] as const) {
    const stream = session.request(
      { ":method": method, ":path": "/h2", "x-device-id": "spoofed" },
      { endStream: body === "" },
    );
    if (body !== "") stream.end(body);
    const [headers] = (await once(stream, "response")) as [Record<string, string>];
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    assert.equal(headers[":status"], 200);
    assert.equal(headers["x-upstream"], "h1");
    assert.equal(headers.connection, undefined);
    assert.equal(Buffer.concat(chunks).toString(), `over h2: device-001 ${body}`);
  }
});

test("HEAD passes the upstream's content-length through without a body", async () => {
  const gateway = await h.startGateway(
    h.upstream([await h.startUpstream((_req, res) => res.writeHead(200, { "content-length": "42" }).end())]),
  );
  const res = await request(gateway, { dispatcher: client, method: "HEAD" });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers["content-length"], "42");
  assert.equal(await res.body.text(), "");
});
