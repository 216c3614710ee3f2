// RedisWindows against the shared Redis at 127.0.0.1:6379 (keys under a random prefix), and a dead port.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { after, test } from "node:test";
import { Redis } from "ioredis";
import { fakeEnv, fakeRequest } from "../testing/support.ts";
import { rateLimit } from "./handler.ts";
import { pluginHealth } from "./health.ts";
import { RedisWindows } from "./redis-windows.ts";
import { rateLimitSchema } from "./schema.ts";

const URL = "redis://127.0.0.1:6379";
const ns = `portcullis-test:${randomBytes(6).toString("hex")}:`;
const admin = new Redis(URL);
after(async () => {
  const keys = await admin.keys(`${ns}*`);
  if (keys.length > 0) await admin.del(...keys);
  await admin.quit();
});

/** A port with nothing listening. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

test("counts atomically in one window with a TTL; concurrent hits get distinct counts", async () => {
  const w = new RedisWindows({ url: URL, timeoutMs: 1000, windowMs: 5000 });
  try {
    const first = await w.hit(`${ns}k1`);
    assert.equal(first.count, 1);
    assert.ok(first.resetMs > 4000 && first.resetMs <= 5000, String(first.resetMs));
    const counts = (await Promise.all(Array.from({ length: 20 }, () => w.hit(`${ns}k1`)))).map(
      (h) => h.count,
    );
    assert.deepEqual(
      counts.sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i + 2),
    );
    const ttl = await admin.pttl(`${ns}k1`);
    assert.ok(ttl > 0 && ttl <= 5000, String(ttl));
    assert.equal(w.health, "ok");
  } finally {
    await w.close();
  }
});

test("a dead Redis fails within the timeout, and the plugin fails open or closed", async () => {
  const port = await closedPort();
  const w = new RedisWindows({ url: `redis://127.0.0.1:${port}`, timeoutMs: 100, windowMs: 5000 });
  try {
    const started = performance.now();
    await assert.rejects(w.hit(`${ns}dead`));
    assert.ok(performance.now() - started < 1000, "bounded");
    assert.equal(w.health, "down");
  } finally {
    await w.close();
  }
  for (const failure of ["open", "closed"] as const) {
    const env = fakeEnv(`route:${failure}`);
    const plugin = rateLimit.create(
      rateLimitSchema.parse({
        limit: 1,
        window: "1m",
        store: { kind: "redis", url: `redis://127.0.0.1:${port}`, prefix: ns, failure, timeout: "50ms" },
      }),
      env,
    );
    try {
      const started = performance.now();
      const outcome = await plugin.access?.(fakeRequest({ deviceId: "d" }));
      assert.ok(performance.now() - started < 1000);
      if (failure === "open") assert.equal(outcome, undefined);
      else assert.deepEqual(outcome && outcome.kind === "deny" && outcome.reason, "rate_limit_unavailable");
      assert.deepEqual(pluginHealth(env.metrics), [
        { scope: `route:${failure}`, plugin: "rate-limit", redis: "down" },
      ]);
      assert.match(
        await env.metrics.text(),
        new RegExp(`portcullis_rate_limit_total\\{scope="route:${failure}",result="error"\\} 1`),
      );
    } finally {
      await plugin.close?.();
    }
    assert.deepEqual(pluginHealth(env.metrics), [], "closed plugins leave /status");
  }
});

test("the plugin on a live Redis: limit, then 429 with headers; two instances share the budget", async () => {
  const config = rateLimitSchema.parse({
    limit: 3,
    window: "1m",
    store: { kind: "redis", url: URL, prefix: ns, failure: "closed", timeout: "1s" },
  });
  const a = rateLimit.create(config, fakeEnv("route:shared"));
  const b = rateLimit.create(config, fakeEnv("route:shared"));
  try {
    const outcomes = [];
    for (let i = 0; i < 6; i++)
      outcomes.push(await (i % 2 ? a : b).access?.(fakeRequest({ deviceId: "dev" })));
    assert.deepEqual(
      outcomes.map((o) => o?.kind),
      ["continue", "continue", "continue", "deny", "deny", "deny"],
    );
    const last = outcomes[5];
    assert.ok(last?.kind === "deny");
    assert.equal(last.reason, "rate_limited");
    assert.match(last.headers?.ratelimit ?? "", /^limit=3, remaining=0, reset=(59|60)$/);
    assert.equal(last.headers?.["ratelimit-policy"], "3;w=60");
    assert.equal((await a.access?.(fakeRequest({ deviceId: "other" })))?.kind, "continue");
  } finally {
    await a.close?.();
    await b.close?.();
  }
});
