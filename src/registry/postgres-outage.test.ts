// PostgreSQL cut mid-run through a TCP proxy: fail fast, cached devices pass, unknown fail closed, recovery alone.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DeviceCache, STORE_UNAVAILABLE } from "./device-cache.ts";
import { PostgresDeviceStore } from "./postgres-store.ts";
import { eventually } from "./testing/eventually.ts";
import { dropSchema, freshSchema, PG_URL } from "./testing/pg.ts";
import { TcpProxy } from "./testing/tcp-proxy.ts";
import { type Binding, type DeviceChange, StoreUnavailableError } from "./types.ts";

const cn = (value: string): Binding => ({ kind: "cn", value });
const idOf = (result: unknown): string | undefined => (result as { id?: string } | undefined)?.id;

test("store outage through a proxy: grace for known devices, fail closed for unknown, recovery without restart", async () => {
  const schema = freshSchema();
  const target = new URL(PG_URL);
  const proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
  const proxied = new URL(PG_URL);
  proxied.port = String(proxy.port);
  const direct = new PostgresDeviceStore({ url: PG_URL, schema });
  const store = new PostgresDeviceStore({
    url: proxied.href,
    schema,
    connectTimeoutMs: 300,
    queryTimeoutMs: 500,
    pingIntervalMs: 100,
    reconnectMinMs: 50,
    reconnectMaxMs: 200,
  });
  // ttlMs 1: every lookup after the first goes to the store, so the outage path is what answers.
  const cache = new DeviceCache(store, {
    maxEntries: 100,
    ttlMs: 1,
    negativeTtlMs: 1,
    outageGraceMs: 60_000,
    outageRetryMs: 0,
  });
  const changes: DeviceChange[] = [];
  store.onChange((c) => changes.push(c));
  try {
    await direct.migrate();
    await store.migrate();
    await direct.create({ id: "known", bindings: [cn("known")] });
    // Waited for, so that this change cannot invalidate the entry cached next.
    await eventually(() => changes.some((c) => c.id === "known"), 1000, "the create is announced");
    assert.equal(idOf(await cache.lookup([cn("known")], Date.now())), "known");
    assert.equal(store.health().ok, true);

    proxy.mode = "reset";
    let started = Date.now();
    assert.equal(idOf(await cache.lookup([cn("known")], Date.now() + 10)), "known", "served from grace");
    assert.equal(
      await cache.lookup([cn("stranger")], Date.now() + 10),
      STORE_UNAVAILABLE,
      "unknown fails closed",
    );
    await assert.rejects(store.get("known"), StoreUnavailableError);
    assert.ok(Date.now() - started < 2000, "failures are fast");
    await eventually(() => !store.health().ok, 1000, "health reports the outage");

    // A black hole (no reset, no answer) is bounded by the connect and query timeouts.
    proxy.mode = "blackhole";
    started = Date.now();
    await assert.rejects(store.get("known"), StoreUnavailableError);
    assert.ok(Date.now() - started < 1500, `black hole answered in ${Date.now() - started} ms`);
    assert.equal(idOf(await cache.lookup([cn("known")], Date.now() + 10)), "known");

    // Meanwhile the device is suspended and a new one appears, on a node that still reaches the store.
    await direct.update("known", { status: "suspended" });
    await direct.create({ id: "newcomer", bindings: [cn("newcomer")] });

    proxy.mode = "pass";
    await eventually(() => changes.some((c) => c.kind === "resync"), 3000, "a resync once LISTEN is back");
    await eventually(() => store.health().ok, 3000, "health recovers");
    const known = await cache.lookup([cn("known")], Date.now() + 10);
    assert.equal((known as { status?: string } | undefined)?.status, "suspended");
    assert.equal(idOf(await cache.lookup([cn("newcomer")], Date.now() + 10)), "newcomer");
    await direct.update("newcomer", { status: "revoked" });
    await eventually(
      () => changes.some((c) => c.id === "newcomer" && c.status === "revoked"),
      1000,
      "NOTIFY flows again",
    );
  } finally {
    cache.close();
    await store.close();
    await direct.close();
    await proxy.close();
    await dropSchema(schema);
  }
});
