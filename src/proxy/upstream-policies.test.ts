// Upstream traffic policies against real local servers: balancing strategies, retries of 502/503 within a
// budget, active health checks with the all-down 503, outlier ejection, metrics, and TLS with a client certificate.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type RequestListener } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { TLSSocket } from "node:tls";
import { request } from "undici";
import { GatewayMetrics } from "../gateway/metrics.ts";
import { x509 } from "../identity/x509.ts";
import { ProxyHarness, TEST_IDENTITY_HEADERS } from "./testing/harness.ts";
import { Upstream, type UpstreamObservers, type UpstreamOptions } from "./upstream.ts";

const h = new ProxyHarness();
after(() => h.close());

/** Answers its name; `status` decides the status of each request. */
function named(name: string, status: () => number = () => 200): RequestListener {
  return (req, res) => {
    req.resume();
    res.writeHead(status(), { "content-type": "text/plain" }).end(name);
  };
}

/** An Upstream with observers, behind a front that passes `x-test-device` as the device id. */
async function front(
  targets: URL[],
  overrides: Partial<UpstreamOptions> = {},
  observers: UpstreamObservers = {},
): Promise<{ url: URL; upstream: Upstream }> {
  const upstream = new Upstream(
    {
      name: "svc",
      targets,
      connectTimeoutMs: 1000,
      readTimeoutMs: 2000,
      retries: 0,
      preserveHost: false,
      ...overrides,
    },
    observers,
  );
  h.onClose(() => upstream.close());
  const server = createServer((req: IncomingMessage, res) => {
    const device = req.headers["x-test-device"];
    upstream.forward({
      req,
      res,
      method: req.method ?? "GET",
      path: req.url ?? "/",
      host: "localhost",
      clientAddress: req.socket.remoteAddress ?? "",
      ...(typeof device === "string" ? { deviceId: device } : {}),
      identityHeaders: TEST_IDENTITY_HEADERS,
      startedAt: performance.now(),
    });
  });
  return { url: await h.listen(server), upstream };
}

async function get(
  url: URL,
  options: { method?: string; body?: string; device?: string } = {},
): Promise<{ status: number; body: string }> {
  const res = await request(url, {
    dispatcher: h.client,
    method: (options.method ?? "GET") as "GET",
    ...(options.body !== undefined ? { body: options.body } : {}),
    headers: options.device ? { "x-test-device": options.device } : {},
  });
  return { status: res.statusCode, body: await res.body.text() };
}

async function until(condition: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(20);
  }
}

test("least-connections sends new requests away from a target that is busy", async () => {
  let release: (() => void) | undefined;
  const slow = await h.startUpstream((req, res) => {
    req.resume();
    release = () => res.end("slow");
  });
  const fast = await h.startUpstream(named("fast"));
  const { url } = await front([slow, fast], { balancing: "least-connections" });
  const pending = get(url); // ties go in turn: the first goes to the slow target and stays there
  await until(() => release !== undefined);
  for (let i = 0; i < 4; i++) assert.equal((await get(url)).body, "fast");
  release?.();
  assert.equal((await pending).body, "slow");
});

test("consistent-hash keeps each device on one target and falls back to the client address", async () => {
  const targets = [
    await h.startUpstream(named("a")),
    await h.startUpstream(named("b")),
    await h.startUpstream(named("c")),
  ];
  const { url } = await front(targets, { balancing: "consistent-hash" });
  const homes = new Map<string, string>();
  for (let round = 0; round < 3; round++) {
    for (let d = 0; d < 12; d++) {
      const { body } = await get(url, { device: `device-${d}` });
      const home = homes.get(`device-${d}`);
      if (home === undefined) homes.set(`device-${d}`, body);
      else assert.equal(body, home, `device-${d} moved`);
    }
  }
  assert.ok(new Set(homes.values()).size > 1, "12 devices spread over more than one target");
  const anonymous = new Set<string>();
  for (let i = 0; i < 5; i++) anonymous.add((await get(url)).body);
  assert.equal(anonymous.size, 1, "no device id: the client address is the key");
});

test("a 502 or 503 answer is retried on another target for idempotent bodiless requests only", async () => {
  let failing = 0;
  const bad = await h.startUpstream((req, res) => {
    failing++;
    req.resume();
    res.writeHead(503).end("bad");
  });
  const good = await h.startUpstream(named("good"));
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const { url } = await front([bad, good], { retries: 1 }, { metrics });
  for (let i = 0; i < 4; i++)
    assert.deepEqual(await get(url, { method: "GET" }), { status: 200, body: "good" });
  for (const method of ["PUT", "DELETE", "OPTIONS"]) assert.equal((await get(url, { method })).status, 200);
  // POST is not idempotent; a PUT with a body cannot be replayed: the 503 goes through on the bad target.
  const statuses: number[] = [];
  for (let i = 0; i < 2; i++) statuses.push((await get(url, { method: "POST" })).status);
  for (let i = 0; i < 2; i++) statuses.push((await get(url, { method: "PUT", body: "x" })).status);
  assert.deepEqual(statuses.sort(), [200, 200, 503, 503]);
  assert.ok(failing >= 4);
  const text = await metrics.text();
  assert.match(text, /portcullis_upstream_retries_total\{service="svc",result="retried"\} [1-9]/);
  assert.match(
    text,
    new RegExp(
      `portcullis_upstream_duration_seconds_count\\{service="svc",target="${bad.origin}",status="503"\\} [1-9]`,
    ),
  );
});

test("the retry budget caps retries", async () => {
  const bad = await h.startUpstream(named("bad", () => 502));
  const good = await h.startUpstream(named("good"));
  const { url } = await front([bad, good], { retries: 1, retryBudget: 0 });
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await get(url)).status);
  assert.deepEqual(statuses.sort(), [200, 200, 502, 502], "no retry with a budget of 0");
  // A budget of 0.1 with little traffic: the floor of 3 retries per window, then none.
  const floor = await front([bad, good], { retries: 1, retryBudget: 0.1 });
  const floorStatuses: number[] = [];
  for (let i = 0; i < 12; i++) floorStatuses.push((await get(floor.url)).status);
  assert.equal(floorStatuses.filter((s) => s === 502).length, 3, floorStatuses.join(","));
});

test("health checks take a failing target out, answer 503 no_healthy_upstream when all are down, and restore", async () => {
  const health = { a: 200, b: 200 };
  const target =
    (name: "a" | "b"): RequestListener =>
    (req, res) => {
      req.resume();
      if (req.url === "/health") res.writeHead(health[name]).end();
      else res.end(name);
    };
  const a = await h.startUpstream(target("a"));
  const b = await h.startUpstream(target("b"));
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const lines: string[] = [];
  const logger = {
    info: (_f: unknown, msg: string) => lines.push(msg),
    warn: (_f: unknown, msg: string) => lines.push(msg),
  } as unknown as UpstreamObservers["logger"];
  const { url, upstream } = await front(
    [a, b],
    {
      healthCheck: {
        path: "/health",
        intervalMs: 20,
        timeoutMs: 500,
        healthyThreshold: 2,
        unhealthyThreshold: 2,
      },
    },
    { metrics, ...(logger ? { logger } : {}) },
  );
  const gauge = async (t: URL) =>
    new RegExp(`portcullis_upstream_target_healthy\\{service="svc",target="${t.origin}"\\} (\\d)`).exec(
      await metrics.text(),
    )?.[1];
  assert.equal(await gauge(a), "1");

  health.a = 500;
  await until(() => !upstream.targetAvailable(0));
  assert.equal(await gauge(a), "0");
  for (let i = 0; i < 4; i++) assert.equal((await get(url)).body, "b");

  health.b = 500;
  await until(() => !upstream.targetAvailable(1));
  const down = await get(url);
  assert.equal(down.status, 503);
  assert.deepEqual(JSON.parse(down.body), {
    message: "Failure to get a peer from the ring-balancer",
    reason: "no_healthy_upstream",
  });

  health.a = 200;
  await until(() => upstream.targetAvailable(0));
  assert.equal(await gauge(a), "1");
  assert.deepEqual(await get(url), { status: 200, body: "a" });
  assert.deepEqual(lines.slice(0, 3), [
    "upstream target unhealthy",
    "upstream target unhealthy",
    "upstream target healthy",
  ]);

  await upstream.close();
  assert.equal(await gauge(a), undefined, "a closed upstream's series are gone");
});

test("outlier detection ejects a target after consecutive 5xx or connect failures, for ejectionTime", async () => {
  let status = 500;
  const flaky = await h.startUpstream(named("flaky", () => status));
  const steady = await h.startUpstream(named("steady"));
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const { url, upstream } = await front(
    [flaky, steady],
    { outlierDetection: { consecutiveFailures: 2, ejectionTimeMs: 400 } },
    { metrics },
  );
  const bodies: string[] = [];
  for (let i = 0; i < 8; i++) bodies.push((await get(url)).body);
  // flaky, steady, flaky (2nd failure in a row: ejected), then steady only.
  assert.deepEqual(bodies, ["flaky", "steady", "flaky", "steady", "steady", "steady", "steady", "steady"]);
  assert.equal(upstream.targetAvailable(0), false);
  assert.match(await metrics.text(), /portcullis_upstream_ejections_total\{service="svc",target="[^"]+"\} 1/);
  status = 200;
  await sleep(450);
  const back = new Set<string>();
  for (let i = 0; i < 4; i++) back.add((await get(url)).body);
  assert.deepEqual([...back].sort(), ["flaky", "steady"]);

  // A single refusing target: ejected after two failures, then 503 no_healthy_upstream until the cool-down ends.
  const alone = await front([await h.closedPort()], {
    outlierDetection: { consecutiveFailures: 2, ejectionTimeMs: 60_000 },
  });
  assert.equal((await get(alone.url)).status, 502);
  assert.equal((await get(alone.url)).status, 502);
  const ejected = await get(alone.url);
  assert.equal(ejected.status, 503);
  assert.equal(JSON.parse(ejected.body).reason, "no_healthy_upstream");
});

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** A self-signed certificate (its own CA) with `san`, as PEM cert and PKCS#8 key. */
async function selfSigned(cn: string, san: { type: "ip" | "dns"; value: string }[]) {
  const keys = await globalThis.crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "0b",
    name: `CN=${cn}`,
    keys,
    signingAlgorithm: ALG,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 86_400_000),
    extensions: [new x509.SubjectAlternativeNameExtension(san)],
  });
  const pkcs8 = Buffer.from(await globalThis.crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString("base64").replace(/.{1,64}/g, "$&\n")}-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString("pem"), key };
}

test("TLS to a target that requires a client certificate: the gateway's, verified by name", async () => {
  const server = await selfSigned("upstream.test", [{ type: "dns", value: "upstream.test" }]);
  const client = await selfSigned("portcullis-gateway", [{ type: "dns", value: "gateway.test" }]);
  const target = await h.listen(
    createHttpsServer(
      { ...server, ca: client.cert, requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        res.end(`hello ${peer.subject?.CN}`);
      },
    ),
    "https",
  );
  const withCert = await front([target], {
    tls: { ca: server.cert, cert: client.cert, key: client.key, serverName: "upstream.test" },
  });
  assert.deepEqual(await get(withCert.url), { status: 200, body: "hello portcullis-gateway" });

  // No client certificate: the target refuses the handshake.
  const without = await front([target], { tls: { ca: server.cert, serverName: "upstream.test" } });
  assert.equal((await get(without.url)).status, 502);
  // The certificate is for upstream.test, not 127.0.0.1: without serverName the name check fails.
  const wrongName = await front([target], { tls: { ca: server.cert, cert: client.cert, key: client.key } });
  assert.equal((await get(wrongName.url)).status, 502);
});

test("a request's own readTimeoutMs overrides the service's", async () => {
  const silent = await h.startUpstream(() => {});
  const upstream = new Upstream({
    name: "svc",
    targets: [silent],
    connectTimeoutMs: 1000,
    readTimeoutMs: 30_000,
    retries: 0,
    preserveHost: false,
  });
  h.onClose(() => upstream.close());
  const url = await h.listen(
    createServer((req, res) =>
      upstream.forward({
        req,
        res,
        method: "GET",
        path: "/",
        host: "localhost",
        clientAddress: "127.0.0.1",
        identityHeaders: {},
        startedAt: performance.now(),
        readTimeoutMs: 300,
      }),
    ),
  );
  const started = performance.now();
  assert.equal((await get(url)).status, 504);
  assert.ok(performance.now() - started < 5000);
});

test("a replaced upstream's close leaves the health series its successor set", async () => {
  const target = await h.startUpstream(named("t"));
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const options = {
    name: "svc",
    targets: [target],
    connectTimeoutMs: 1000,
    readTimeoutMs: 1000,
    retries: 0,
    preserveHost: false,
  };
  const old = new Upstream(options, { metrics });
  const successor = new Upstream(options, { metrics });
  h.onClose(() => successor.close());
  // The replaced upstream's checks still run during its grace period: they no longer show in the gauge.
  metrics.setUpstreamHealth(old, "svc", target.origin, false);
  await old.close();
  assert.match(await metrics.text(), /portcullis_upstream_target_healthy\{service="svc",target="[^"]+"\} 1/);
});
