// The rate-limit plugin with the shared Redis at 127.0.0.1:6379 (every key under a random prefix): two
// gateway processes counting one budget together, and Redis outages (a closed port, a peer that accepts and
// never answers, a TCP proxy stopped mid-test) with `failure: open` and `failure: closed`.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Redis } from "ioredis";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { type CurlResult, curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { AdminApi, HOST, metricValue, type RegistryPki, registryPki } from "../helpers/registry.ts";

const REDIS = "redis://127.0.0.1:6379";
const LIMIT = 7;

interface StatusJson {
  plugins?: { scope: string; plugin: string; redis: string }[];
}

/** A port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** A TCP server that accepts connections and never answers (a hung Redis). */
async function blackHole(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A TCP proxy to Redis that can be stopped (every connection cut) and started again on the same port. */
class RedisProxy {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  port = 0;

  async start(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(6379, "127.0.0.1");
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("error", () => {});
        s.on("close", () => {
          this.#sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => server.listen(this.port, "127.0.0.1", r));
    this.port = (server.address() as { port: number }).port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise((r) => server.close(r));
  }
}

describe("rate-limit with Redis (two gateways, outages)", () => {
  const tmp = tempDir("portcullis-rl-redis-");
  const prefix = `portcullis-e2e:${randomBytes(6).toString("hex")}:`;
  const redis = new Redis(REDIS);
  const proxy = new RedisProxy();
  let hole: Awaited<ReturnType<typeof blackHole>>;
  let pki: RegistryPki;
  let echo: EchoUpstream;
  let gwA: GatewayProcess;
  let gwB: GatewayProcess;
  let adminA: AdminApi;

  /** A gateway config in `dir/<sub>/` (files one level up); `/shared` is limited in Redis for every gateway. */
  const config = (routes: ConfigInput["routes"]): ConfigInput => ({
    listeners: [
      {
        name: "main",
        port: 0,
        clientAuth: "application",
        certificates: [{ cert: "../server.crt", key: "../server.key" }],
      },
    ],
    trustStores: [{ name: "devices", ca: ["../ca-chain.crt"] }],
    services: [{ name: "echo", targets: [echo.url] }],
    routes: [
      {
        name: "shared",
        hosts: [HOST],
        paths: ["/shared"],
        service: "echo",
        auth: { trustStores: ["devices"] },
        plugins: [
          {
            name: "rate-limit",
            config: {
              limit: LIMIT,
              window: "1m",
              store: { kind: "redis", url: REDIS, prefix, failure: "closed", timeout: "1s" },
            },
          },
        ],
      },
      ...routes,
    ],
    admin: { host: "127.0.0.1", port: 0, tokenFile: "../admin.token" },
    log: { level: "info" },
  });
  const outage = (name: string, url: string, failure: "open" | "closed") => ({
    name,
    hosts: [HOST],
    paths: [`/${name}`],
    service: "echo",
    public: true,
    plugins: [
      {
        name: "rate-limit",
        config: {
          limit: 1000,
          window: "1m",
          store: { kind: "redis", url, prefix, failure, timeout: "100ms" },
        },
      },
    ],
  });
  const start = (sub: string, routes: ConfigInput["routes"]) => {
    const dir = join(tmp.dir, sub);
    mkdirSync(dir, { recursive: true });
    return startGateway(dir, config(routes));
  };
  const request = (
    gw: GatewayProcess,
    path: string,
    device: string | undefined = "device",
  ): Promise<CurlResult> => curl({ port: gw.ports.main ?? 0, dir: tmp.dir, device, path, http: "1.1" });

  before(async () => {
    pki = await registryPki(tmp.dir);
    echo = await startEchoUpstream();
    hole = await blackHole();
    await proxy.start();
    const dead = await closedPort();
    [gwA, gwB] = await Promise.all([
      start("a", [
        outage("dead-open", `redis://127.0.0.1:${dead}`, "open"),
        outage("dead-closed", `redis://127.0.0.1:${dead}`, "closed"),
        outage("hung", `redis://127.0.0.1:${hole.port}`, "closed"),
        outage("proxied", `redis://127.0.0.1:${proxy.port}`, "closed"),
      ]),
      start("b", []),
    ]);
    adminA = new AdminApi(gwA.adminPort, pki.token);
  });
  after(async () => {
    await Promise.all([gwA?.stop(), gwB?.stop()]);
    await echo?.close();
    await hole?.close();
    await proxy.stop();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
    tmp.cleanup();
  });

  test(`two gateways share one budget: at most ${LIMIT} requests pass between them`, async () => {
    const results: CurlResult[] = [];
    // Alternately, and in concurrent pairs: both gateways count in the same Redis key.
    for (let i = 0; i < 10; i++) {
      results.push(...(await Promise.all([request(gwA, "/shared"), request(gwB, "/shared")])));
    }
    const ok = results.filter((r) => r.status === 200);
    const limited = results.filter((r) => r.status === 429);
    assert.equal(ok.length, LIMIT, results.map((r) => r.status).join(","));
    assert.equal(limited.length, results.length - LIMIT);
    for (const r of limited) {
      assert.deepEqual(r.json(), { message: "API rate limit exceeded", reason: "rate_limited" });
      assert.equal(r.headers["ratelimit-policy"], `${LIMIT};w=60`);
      assert.match(r.headers.ratelimit ?? "", new RegExp(`^limit=${LIMIT}, remaining=0, reset=\\d+$`));
      assert.match(r.headers["retry-after"] ?? "", /^\d+$/);
    }
    // One Redis key for the device on this route, holding every request of both gateways.
    const keys = await redis.keys(`${prefix}route:shared:*`);
    assert.deepEqual(keys, [`${prefix}route:shared:d:device-001`]);
    assert.equal(Number(await redis.get(keys[0] ?? "")), results.length);
    const ttl = await redis.pttl(keys[0] ?? "");
    assert.ok(ttl > 0 && ttl <= 60_000, String(ttl));
  });

  test("Redis unreachable, failure: open → requests pass, counted as errors", async () => {
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const r = await request(gwA, "/dead-open", undefined);
      assert.equal(r.status, 200, r.body);
      assert.ok(performance.now() - started < 2000, "a dead Redis does not stall the request");
    }
    const metrics = await adminA.call("GET", "/metrics");
    const errors = metricValue(metrics.text, "portcullis_rate_limit_total", {
      scope: "route:dead-open",
      result: "error",
    });
    assert.equal(errors, 3);
  });

  test("Redis unreachable or hung, failure: closed → 503 rate_limit_unavailable within the timeout", async () => {
    for (const path of ["/dead-closed", "/hung"]) {
      const started = performance.now();
      const r = await request(gwA, path, undefined);
      assert.equal(r.status, 503, `${path}: ${r.body}`);
      assert.deepEqual(r.json(), {
        message: "The rate limit store is unavailable",
        reason: "rate_limit_unavailable",
      });
      assert.ok(performance.now() - started < 2000, `${path} answered in bounded time`);
    }
  });

  test("Redis lost mid-way and back (a stopped proxy): 200, then 503, then 200; /status follows", async () => {
    assert.equal((await request(gwA, "/proxied", undefined)).status, 200);
    let status = await adminA.call<StatusJson>("GET", "/status");
    const entry = (scope: string) => status.json.plugins?.find((p) => p.scope === scope);
    assert.deepEqual(entry("route:proxied"), { scope: "route:proxied", plugin: "rate-limit", redis: "ok" });
    assert.equal(entry("route:dead-closed")?.redis, "down");
    assert.equal(entry("route:shared")?.redis, "ok");

    await proxy.stop();
    const down = await request(gwA, "/proxied", undefined);
    assert.equal(down.status, 503, down.body);
    assert.equal(down.json<{ reason: string }>().reason, "rate_limit_unavailable");
    status = await adminA.call<StatusJson>("GET", "/status");
    assert.equal(entry("route:proxied")?.redis, "down");

    await proxy.start();
    let back = 0;
    for (let i = 0; i < 60 && back !== 200; i++) {
      back = (await request(gwA, "/proxied", undefined)).status;
      if (back !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(back, 200, "the plugin reconnects once Redis is back");
    status = await adminA.call<StatusJson>("GET", "/status");
    assert.equal(entry("route:proxied")?.redis, "ok");
    assert.match(gwA.output(), /rate limit store unavailable/);
  });
});
