// The plugins end to end, through one gateway (SQLite registry) and the echo upstream: rate-limit (memory,
// per device, with the RateLimit headers), acl, ip-restriction, cors (preflight, actual requests, and the
// policy refusing a certificate-less preflight first) and request-size-limit (413 before the upstream sees
// anything, 411 for a chunked body).
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { after, before, describe, test } from "node:test";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { type CurlResult, curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  AdminApi,
  HOST,
  type IssuedDevice,
  metricValue,
  type RegistryPki,
  registryConfig,
  registryPki,
} from "../helpers/registry.ts";

interface DenyBody {
  message: string;
  reason: string;
}

type Plugins = { name: string; config: Record<string, unknown> }[];

const authed = (name: string, plugins: Plugins) => ({
  name,
  hosts: [HOST],
  paths: [`/${name}`],
  service: "echo",
  auth: { trustStores: ["devices"], registry: "required" as const },
  plugins,
});
const open = (name: string, plugins: Plugins) => ({
  name,
  hosts: [HOST],
  paths: [`/${name}`],
  service: "echo",
  public: true,
  plugins,
});

const ORIGIN = "https://app.example.com";

describe("plugins (one gateway, SQLite)", () => {
  const tmp = tempDir("portcullis-plugins-");
  let pki: RegistryPki;
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let admin: AdminApi;
  let port = 0;
  let alpha: IssuedDevice;
  let beta: IssuedDevice;
  /** Every request path the upstream received. */
  const seen: string[] = [];

  const request = (
    device: IssuedDevice | undefined,
    path: string,
    args: readonly string[] = [],
  ): Promise<CurlResult> => curl({ port, dir: tmp.dir, device: device?.name, path, http: "1.1", args });
  const expectDeny = (r: CurlResult, status: number, reason: string, message: string) => {
    assert.equal(r.status, status, r.body);
    assert.deepEqual(r.json<DenyBody>(), { message, reason });
  };

  before(async () => {
    pki = await registryPki(tmp.dir);
    echo = await startEchoUpstream();
    echo.server.on("request", (req: IncomingMessage) => seen.push(req.url ?? ""));
    alpha = await pki.issue("plug-alpha");
    beta = await pki.issue("plug-beta");
    const cfg = registryConfig({
      upstream: echo.url,
      storeUrl: "sqlite:data/registry.db",
      routes: [
        authed("limited", [{ name: "rate-limit", config: { limit: 3, window: "1m" } }]),
        open("limited-public", [{ name: "rate-limit", config: { limit: 1, window: "1m" } }]),
        authed("acl", [{ name: "acl", config: { allow: ["fleet-a"], deny: ["quarantine"] } }]),
        open("acl-public", [{ name: "acl", config: { allow: ["fleet-a"] } }]),
        open("ip-allow", [{ name: "ip-restriction", config: { allow: ["127.0.0.0/8", "::1"] } }]),
        open("ip-deny", [{ name: "ip-restriction", config: { deny: ["127.0.0.1/32"] } }]),
        open("ip-outside", [{ name: "ip-restriction", config: { allow: ["192.0.2.0/24"] } }]),
        open("cors", [
          {
            name: "cors",
            config: {
              origins: [ORIGIN],
              methods: ["GET", "POST"],
              exposeHeaders: ["RateLimit"],
              maxAge: 600,
            },
          },
          { name: "rate-limit", config: { limit: 100, window: "1m", by: "address" } },
        ]),
        authed("cors-authed", [{ name: "cors", config: { origins: [ORIGIN] } }]),
        {
          ...open("cors-split", [{ name: "cors", config: { origins: [ORIGIN] } }]),
          methods: ["OPTIONS"],
          name: "cors-split-preflight",
        },
        {
          ...authed("cors-split", [{ name: "cors", config: { origins: [ORIGIN] } }]),
          methods: ["GET", "POST"],
        },
        open("size", [{ name: "request-size-limit", config: { maxBytes: 100 } }]),
        { ...open("svc-one", []), service: "limited-service" },
        { ...open("svc-two", []), service: "limited-service" },
      ],
    });
    // A service's rate limit is one budget for all its routes.
    cfg.services.push({
      name: "limited-service",
      targets: [echo.url],
      plugins: [{ name: "rate-limit", config: { limit: 2, window: "1m" } }],
    });
    gw = await startGateway(tmp.dir, cfg);
    port = gw.ports.main ?? 0;
    admin = new AdminApi(gw.adminPort, pki.token);
    await admin.register("plug-alpha", alpha, { groups: ["fleet-a"] });
    await admin.register("plug-beta", beta, { groups: ["fleet-b"] });
  });
  after(async () => {
    await gw?.stop();
    await echo?.close();
    tmp.cleanup();
  });

  test("rate-limit: per device, RateLimit headers on every answer, then 429 rate_limited", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await request(alpha, "/limited");
      assert.equal(r.status, 200, r.body);
      assert.equal(r.headers["ratelimit-policy"], "3;w=60");
      assert.match(r.headers.ratelimit ?? "", new RegExp(`^limit=3, remaining=${2 - i}, reset=(59|60)$`));
      assert.equal(r.headers["retry-after"], undefined);
    }
    const over = await request(alpha, "/limited");
    expectDeny(over, 429, "rate_limited", "API rate limit exceeded");
    assert.equal(over.headers["ratelimit-policy"], "3;w=60");
    assert.match(over.headers.ratelimit ?? "", /^limit=3, remaining=0, reset=(59|60)$/);
    assert.match(over.headers["retry-after"] ?? "", /^(59|60)$/);
    // Another device has a budget of its own.
    const other = await request(beta, "/limited");
    assert.equal(other.status, 200, other.body);
    assert.match(other.headers.ratelimit ?? "", /^limit=3, remaining=2, reset=/);

    const metrics = await admin.call("GET", "/metrics");
    const labels = { scope: "route:limited" };
    assert.equal(
      metricValue(metrics.text, "portcullis_rate_limit_total", { ...labels, result: "allowed" }),
      4,
    );
    assert.equal(
      metricValue(metrics.text, "portcullis_rate_limit_total", { ...labels, result: "limited" }),
      1,
    );
  });

  test("rate-limit on a public route: per client address", async () => {
    assert.equal((await request(undefined, "/limited-public")).status, 200);
    expectDeny(await request(undefined, "/limited-public"), 429, "rate_limited", "API rate limit exceeded");
  });

  test("rate-limit on a service: one budget for every route to it", async () => {
    assert.equal((await request(undefined, "/svc-one")).status, 200);
    const second = await request(undefined, "/svc-two");
    assert.equal(second.status, 200, second.body);
    expectDeny(await request(undefined, "/svc-one"), 429, "rate_limited", "API rate limit exceeded");
    const metrics = await admin.call("GET", "/metrics");
    const labels = { scope: "service:limited-service" };
    assert.equal(
      metricValue(metrics.text, "portcullis_rate_limit_total", { ...labels, result: "limited" }),
      1,
    );
  });

  test("acl: allowed group 200, another group 403, no identity 403", async () => {
    const ok = await request(alpha, "/acl");
    assert.equal(ok.status, 200, ok.body);
    expectDeny(await request(beta, "/acl"), 403, "group_not_allowed", "You cannot consume this service");
    expectDeny(
      await request(undefined, "/acl-public"),
      403,
      "group_not_allowed",
      "You cannot consume this service",
    );
    await admin.patch("plug-alpha", { groups: ["fleet-a", "quarantine"] });
    try {
      // The registry cache may hold the old groups for a moment.
      let status = 0;
      for (let i = 0; i < 50 && status !== 403; i++) {
        status = (await request(alpha, "/acl")).status;
        if (status !== 403) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(status, 403, "a denied group wins over an allowed one");
    } finally {
      await admin.patch("plug-alpha", { groups: ["fleet-a"] });
    }
  });

  test("ip-restriction: allowed 200, denied 403 ip_not_allowed, outside the allow list 403", async () => {
    assert.equal((await request(undefined, "/ip-allow")).status, 200);
    const deny = await request(undefined, "/ip-deny?x=1");
    expectDeny(deny, 403, "ip_not_allowed", "Your IP address is not allowed");
    expectDeny(
      await request(undefined, "/ip-outside"),
      403,
      "ip_not_allowed",
      "Your IP address is not allowed",
    );
    assert.ok(!seen.includes("/ip-deny?x=1"), "the upstream never saw a refused request");
  });

  test("cors: a preflight from an allowed origin is answered 204 by the gateway", async () => {
    const r = await request(undefined, "/cors?preflight=1", [
      "-X",
      "OPTIONS",
      "-H",
      `Origin: ${ORIGIN}`,
      "-H",
      "Access-Control-Request-Method: POST",
      "-H",
      "Access-Control-Request-Headers: content-type, x-token",
    ]);
    assert.equal(r.status, 204, r.body);
    assert.equal(r.headers["access-control-allow-origin"], ORIGIN);
    assert.equal(r.headers["access-control-allow-methods"], "GET, POST");
    assert.equal(r.headers["access-control-allow-headers"], "content-type, x-token");
    assert.equal(r.headers["access-control-max-age"], "600");
    assert.equal(r.headers.vary, "Origin");
    assert.ok(!seen.includes("/cors?preflight=1"), "the upstream never saw the preflight");
  });

  test("cors: a preflight over HTTP/2 is answered 204 too", async () => {
    const r = await curl({
      port,
      dir: tmp.dir,
      path: "/cors",
      http: "2",
      args: ["-X", "OPTIONS", "-H", `Origin: ${ORIGIN}`, "-H", "Access-Control-Request-Method: GET"],
    });
    assert.equal(r.httpVersion, "2");
    assert.equal(r.status, 204, r.body);
    assert.equal(r.headers["access-control-allow-origin"], ORIGIN);
  });

  test("cors: a preflight from another origin gets no CORS headers", async () => {
    const r = await request(undefined, "/cors", [
      "-X",
      "OPTIONS",
      "-H",
      "Origin: https://evil.example",
      "-H",
      "Access-Control-Request-Method: POST",
    ]);
    assert.equal(r.status, 204, r.body);
    assert.equal(r.headers["access-control-allow-origin"], undefined);
    assert.equal(r.headers["access-control-allow-methods"], undefined);
  });

  test("cors: an actual request from an allowed origin gets Access-Control-Allow-Origin and Vary", async () => {
    const r = await request(undefined, "/cors", ["-H", `Origin: ${ORIGIN}`]);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.headers["access-control-allow-origin"], ORIGIN);
    assert.equal(r.headers["access-control-expose-headers"], "RateLimit");
    assert.match(r.headers.vary ?? "", /Origin/);
    const evil = await request(undefined, "/cors", ["-H", "Origin: https://evil.example"]);
    assert.equal(evil.status, 200, evil.body);
    assert.equal(evil.headers["access-control-allow-origin"], undefined);
  });

  test("cors on an authenticated route: a certificate-less preflight is refused by the policy first", async () => {
    const args = ["-X", "OPTIONS", "-H", `Origin: ${ORIGIN}`, "-H", "Access-Control-Request-Method: GET"];
    const r = await request(undefined, "/cors-authed", args);
    assert.equal(r.status, 401, r.body);
    assert.equal(r.headers["access-control-allow-origin"], undefined);
    const withCert = await request(alpha, "/cors-authed", args);
    assert.equal(withCert.status, 204, withCert.body);
    assert.equal(withCert.headers["access-control-allow-origin"], ORIGIN);
  });

  test("cors split: a public OPTIONS route answers preflights of an authenticated route's paths", async () => {
    const preflight = await request(undefined, "/cors-split", [
      "-X",
      "OPTIONS",
      "-H",
      `Origin: ${ORIGIN}`,
      "-H",
      "Access-Control-Request-Method: POST",
    ]);
    assert.equal(preflight.status, 204, preflight.body);
    assert.equal(preflight.headers["access-control-allow-origin"], ORIGIN);
    assert.equal((await request(undefined, "/cors-split")).status, 401, "the GET still needs a certificate");
    assert.equal((await request(alpha, "/cors-split")).status, 200);
  });

  test("request-size-limit: 413 before the upstream sees anything; 411 chunked; a small body passes", async () => {
    const big = await request(undefined, "/size?big=1", ["--data-binary", "x".repeat(200)]);
    expectDeny(big, 413, "request_too_large", "Request size limit exceeded");
    assert.ok(!seen.includes("/size?big=1"), "the upstream never saw the oversized request");
    const chunked = await request(undefined, "/size?chunked=1", [
      "-H",
      "Transfer-Encoding: chunked",
      "--data-binary",
      "small",
    ]);
    expectDeny(chunked, 411, "length_required", "A valid Content-Length header is required");
    assert.ok(!seen.includes("/size?chunked=1"));
    const small = await request(undefined, "/size?small=1", ["--data-binary", "x".repeat(100)]);
    assert.equal(small.status, 200, small.body);
    assert.equal(small.json<{ body: { bytes: number } }>().body.bytes, 100);
    assert.ok(seen.includes("/size?small=1"));
  });
});
