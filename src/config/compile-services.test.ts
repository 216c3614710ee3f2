// services[] compiled: balancing, health checks, outlier detection and the retry budget in runtime units, and
// TLS files read and checked at load.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ConfigInput } from "./schema.ts";
import { compileHarness } from "./testing/compile-harness.ts";

const harness = compileHarness("portcullis-services-");
const { compile, problems } = harness;

function withService(service: Record<string, unknown>): ConfigInput {
  const config = harness.base();
  const first = config.services[0] as Record<string, unknown>;
  Object.assign(first, service);
  return config;
}

describe("services[] traffic policies", () => {
  before(harness.setUp);
  after(harness.cleanUp);

  test("defaults: round-robin, no health checks, no outlier detection, no budget, no TLS options", async () => {
    const [service] = (await compile(withService({}))).services;
    assert.equal(service?.balancing, "round-robin");
    assert.equal(service?.healthCheck, undefined);
    assert.equal(service?.outlierDetection, undefined);
    assert.equal(service?.retryBudget, undefined);
    assert.equal(service?.tls, undefined);
  });

  test("every policy compiles into milliseconds and runtime names", async () => {
    const [service] = (
      await compile(
        withService({
          targets: ["https://127.0.0.1:8443", "https://127.0.0.1:8444"],
          balancing: "consistent-hash",
          retryBudget: 0.2,
          healthCheck: { path: "/healthz", interval: "5s", expectStatus: [204] },
          outlierDetection: { consecutiveFailures: 3, ejectionTime: "1m" },
          tls: { ca: "ca-chain.crt", cert: "device.crt", key: "device.key", serverName: "api.internal" },
        }),
      )
    ).services;
    assert.equal(service?.balancing, "consistent-hash");
    assert.equal(service?.retryBudget, 0.2);
    assert.deepEqual(service?.healthCheck, {
      path: "/healthz",
      intervalMs: 5000,
      timeoutMs: 2000,
      healthyThreshold: 2,
      unhealthyThreshold: 3,
      expectStatus: [204],
    });
    assert.deepEqual(service?.outlierDetection, { consecutiveFailures: 3, ejectionTimeMs: 60_000 });
    assert.match(service?.tls?.ca ?? "", /BEGIN CERTIFICATE/);
    assert.match(service?.tls?.cert ?? "", /BEGIN CERTIFICATE/);
    assert.match(service?.tls?.key ?? "", /PRIVATE KEY/);
    assert.equal(service?.tls?.serverName, "api.internal");
    assert.equal(service?.tls?.rejectUnauthorized, true);
  });

  test("a route's own timeout compiles into routeTimeouts, by route name", async () => {
    const config = withService({});
    const [route] = config.routes as Record<string, unknown>[];
    Object.assign(route ?? {}, { timeout: "750ms" });
    const compiled = await compile(config);
    assert.deepEqual([...compiled.routeTimeouts], [[route?.name, 750]]);
    Object.assign(route ?? {}, { timeout: 0 });
    assert.match(await problems(config), /timeout/);
  });

  test("bad TLS files, a key without its certificate, TLS without https targets, bad values are refused", async () => {
    const https = { targets: ["https://127.0.0.1:8443"] };
    assert.match(await problems(withService({ ...https, tls: { ca: "missing.pem" } })), /file not found/);
    assert.match(
      await problems(withService({ ...https, tls: { ca: "device.key" } })),
      /not a PEM certificate/,
    );
    assert.match(
      await problems(withService({ ...https, tls: { cert: "device.crt", key: "server.key" } })),
      /the key does not match the certificate/,
    );
    assert.match(
      await problems(withService({ ...https, tls: { cert: "device.crt" } })),
      /`cert` and `key` go together/,
    );
    assert.match(
      await problems(withService({ tls: { ca: "ca-chain.crt" } })),
      /applies to https:\/\/ targets/,
    );
    assert.match(await problems(withService({ balancing: "random" })), /balancing/);
    assert.match(await problems(withService({ retryBudget: 1.5 })), /retryBudget/);
    assert.match(await problems(withService({ healthCheck: { path: "health" } })), /path/);
    assert.match(await problems(withService({ healthCheck: { path: "/h", interval: "10ms" } })), /interval/);
  });
});
