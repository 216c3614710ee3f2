import assert from "node:assert/strict";
import { test } from "node:test";
import { metricValue } from "../../../test/helpers/registry.ts";
import type { AccessOutcome, Plugin } from "../plugin.ts";
import { fakeEnv, fakeRequest } from "../testing/support.ts";
import { rateLimit } from "./handler.ts";
import { rateLimitSchema } from "./schema.ts";
import { judge, keyFor, MemoryWindows } from "./window.ts";

test("schema: durations, defaults, and a redis store's defaults", () => {
  const c = rateLimitSchema.parse({ limit: 5, window: "1m" });
  assert.equal(c.window, 60_000);
  assert.equal(c.by, "device");
  assert.deepEqual(c.store, { kind: "memory", maxKeys: 100_000 });
  const r = rateLimitSchema.parse({
    limit: 5,
    window: "10s",
    store: { kind: "redis", url: "redis://127.0.0.1:6379" },
  });
  assert.deepEqual(r.store, {
    kind: "redis",
    url: "redis://127.0.0.1:6379",
    prefix: "portcullis:rl:",
    failure: "open",
    timeout: 100,
  });
  assert.equal(rateLimitSchema.safeParse({ limit: 0, window: "1m" }).success, false);
  assert.equal(rateLimitSchema.safeParse({ limit: 1, window: "10ms" }).success, false, "a window under 1 s");
  assert.equal(
    rateLimitSchema.safeParse({ limit: 1, window: "1m", store: { kind: "redis", url: "http://x" } }).success,
    false,
  );
  assert.equal(rateLimitSchema.safeParse({ limit: 1, window: "1m", extra: 1 }).success, false);
});

test("keyFor: device id, else the client address", () => {
  assert.equal(keyFor("device", "dev-1", "192.0.2.1"), "d:dev-1");
  assert.equal(keyFor("device", undefined, "192.0.2.1"), "a:192.0.2.1");
  assert.equal(keyFor("device", "", "192.0.2.1"), "a:192.0.2.1");
  assert.equal(keyFor("address", "dev-1", "2001:db8::1"), "a:2001:db8::1");
});

test("judge: RateLimit headers on every answer, Retry-After over the limit", () => {
  assert.deepEqual(judge({ count: 2, resetMs: 39_500 }, 5, 60_000), {
    allowed: true,
    headers: { "ratelimit-policy": "5;w=60", ratelimit: "limit=5, remaining=3, reset=40" },
  });
  assert.equal(judge({ count: 5, resetMs: 1000 }, 5, 60_000).allowed, true);
  const over = judge({ count: 6, resetMs: 200 }, 5, 60_000);
  assert.equal(over.allowed, false);
  assert.equal(over.headers.ratelimit, "limit=5, remaining=0, reset=1");
  assert.equal(over.headers["retry-after"], "1");
  assert.equal(
    judge({ count: 9, resetMs: 0 }, 5, 60_000).headers["retry-after"],
    "1",
    "never Retry-After: 0",
  );
});

test("MemoryWindows: a fixed window from the first request, reset after it", () => {
  const w = new MemoryWindows(1000, 100);
  assert.deepEqual(w.hit("a", 0), { count: 1, resetMs: 1000 });
  assert.deepEqual(w.hit("a", 400), { count: 2, resetMs: 600 });
  assert.deepEqual(w.hit("b", 500), { count: 1, resetMs: 1000 }, "keys are separate");
  assert.deepEqual(w.hit("a", 999), { count: 3, resetMs: 1 });
  assert.deepEqual(w.hit("a", 1000), { count: 1, resetMs: 1000 }, "a new window");
});

test("MemoryWindows: bounded; expired windows and then the oldest go first", () => {
  const w = new MemoryWindows(1000, 3);
  w.hit("a", 0);
  w.hit("b", 1);
  w.hit("c", 2);
  w.hit("d", 3);
  assert.equal(w.size, 3);
  assert.deepEqual(w.hit("a", 4), { count: 1, resetMs: 1000 }, "a, the oldest, was forgotten");
  assert.deepEqual(w.hit("d", 5), { count: 2, resetMs: 998 }, "d was kept");
  // Once every window expired, the next hit drops them all.
  w.hit("e", 5000);
  assert.equal(w.size, 1);
  const big = new MemoryWindows(60_000, 100_000);
  for (let i = 0; i < 150_000; i++) big.hit(`k${i}`, 0);
  assert.equal(big.size, 100_000);
});

async function access(
  plugin: Plugin,
  request: ReturnType<typeof fakeRequest>,
): Promise<AccessOutcome | undefined> {
  return await plugin.access?.(request);
}

test("memory plugin: per device, per address without one, 429 rate_limited with headers; metrics", async () => {
  const env = fakeEnv("route:api");
  const plugin = rateLimit.create(rateLimitSchema.parse({ limit: 2, window: "1m" }), env);
  const alpha = fakeRequest({ deviceId: "alpha", clientAddress: "192.0.2.1" });
  const beta = fakeRequest({ deviceId: "beta", clientAddress: "192.0.2.1" });
  const anon = fakeRequest({ clientAddress: "192.0.2.1" });
  const first = await access(plugin, alpha);
  assert.equal(first?.kind, "continue");
  assert.equal(first?.headers?.ratelimit, "limit=2, remaining=1, reset=60");
  assert.equal(first?.headers?.["ratelimit-policy"], "2;w=60");
  assert.equal((await access(plugin, alpha))?.kind, "continue");
  const third = await access(plugin, alpha);
  assert.equal(third?.kind, "deny");
  assert.ok(third?.kind === "deny");
  assert.equal(third.reason, "rate_limited");
  assert.equal(third.headers?.["retry-after"], "60");
  assert.equal(third.headers?.ratelimit, "limit=2, remaining=0, reset=60");
  assert.equal((await access(plugin, beta))?.kind, "continue", "another device has its own budget");
  assert.equal((await access(plugin, anon))?.kind, "continue", "no device: per address");
  const text = await env.metrics.text();
  assert.equal(
    metricValue(text, "portcullis_rate_limit_total", { scope: "route:api", result: "allowed" }),
    4,
  );
  assert.equal(
    metricValue(text, "portcullis_rate_limit_total", { scope: "route:api", result: "limited" }),
    1,
  );
});

test("memory plugin by address: devices behind one address share a budget", async () => {
  const plugin = rateLimit.create(
    rateLimitSchema.parse({ limit: 1, window: "1m", by: "address" }),
    fakeEnv(),
  );
  assert.equal(
    (await access(plugin, fakeRequest({ deviceId: "a", clientAddress: "192.0.2.9" })))?.kind,
    "continue",
  );
  assert.equal(
    (await access(plugin, fakeRequest({ deviceId: "b", clientAddress: "192.0.2.9" })))?.kind,
    "deny",
  );
  assert.equal(
    (await access(plugin, fakeRequest({ deviceId: "b", clientAddress: "192.0.2.10" })))?.kind,
    "continue",
  );
});
