// DeviceCache against a fake store: sync hits, coalesced misses, invalidation, TTLs, LRU, outage grace, last seen.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DeviceCache,
  type DeviceCacheOptions,
  isStoreUnavailable,
  STORE_UNAVAILABLE,
} from "./device-cache.ts";
import { FakeStore } from "./testing/fake-store.ts";
import type { Binding } from "./types.ts";

const T0 = 1_000_000;
const fp = (n: number): Binding => ({ kind: "fingerprint", value: n.toString(16).padStart(64, "0") });
const cn = (value: string): Binding => ({ kind: "cn", value });
const idOf = (result: unknown): string | undefined => (result as { id?: string } | undefined)?.id;
const options: DeviceCacheOptions = {
  maxEntries: 100,
  ttlMs: 60_000,
  negativeTtlMs: 5_000,
  outageGraceMs: 300_000,
};

function setup(overrides: Partial<DeviceCacheOptions> = {}) {
  const store = new FakeStore();
  const cache = new DeviceCache(store, { ...options, ...overrides });
  return { store, cache };
}

test("a miss is a Promise with one query; the hit after it is synchronous", async () => {
  const { store, cache } = setup();
  store.put({ id: "d1", bindings: [fp(1)] });
  const miss = cache.lookup([fp(1), cn("d1")], T0);
  assert.ok(miss instanceof Promise);
  assert.equal(idOf(await miss), "d1");
  const hit = cache.lookup([fp(1), cn("d1")], T0 + 1);
  assert.ok(!(hit instanceof Promise), "a hit allocates no Promise");
  assert.equal(idOf(hit), "d1");
  assert.equal(store.queries, 1);
  assert.equal(cache.stats.hits, 1);
});

test("concurrent misses for the same certificate share one store query", async () => {
  const { store, cache } = setup();
  store.put({ id: "d1", bindings: [fp(1)] });
  let open = (): void => {};
  store.gate = new Promise((resolve) => {
    open = resolve;
  });
  const lookups = Array.from({ length: 50 }, () => cache.lookup([fp(1)], T0));
  open();
  const results = await Promise.all(lookups);
  assert.ok(results.every((r) => r !== undefined && !isStoreUnavailable(r) && r.id === "d1"));
  assert.equal(store.queries, 1);
});

test("candidates are taken in priority order; unbound ones before the match are cached as unknown", async () => {
  const { store, cache } = setup();
  store.put({ id: "by-cn", bindings: [cn("shared")] });
  store.put({ id: "by-fp", bindings: [fp(7)] });
  assert.equal(idOf(await cache.lookup([fp(9), cn("shared")], T0)), "by-cn");
  assert.equal(idOf(await cache.lookup([fp(7), cn("shared")], T0)), "by-fp");
  assert.equal(cache.lookup([fp(9)], T0), undefined, "fp(9) was learnt to be unbound");
  // Past the negative TTL but within the positive one, the whole answer still holds: no query.
  assert.equal(idOf(cache.lookup([fp(9), cn("shared")], T0 + 10_000)), "by-cn");
  assert.equal(store.queries, 2);
  // Binding fp(9) somewhere invalidates its "unbound" entry at once.
  store.put({ id: "by-cn", bindings: [cn("shared"), fp(9)] });
  assert.ok(cache.lookup([fp(9), cn("shared")], T0 + 10_001) instanceof Promise);
});

test("a store without findByAnyBinding is asked binding by binding, in order", async () => {
  const { store } = setup();
  store.put({ id: "d", bindings: [cn("d")] });
  const asked: string[] = [];
  const narrow = Object.assign(Object.create(store) as FakeStore, {
    findByAnyBinding: undefined,
    findByBinding: async (b: Binding) => {
      asked.push(b.kind);
      return store.findByAnyBinding([b]);
    },
  });
  const cache = new DeviceCache(narrow, options);
  assert.equal(idOf(await cache.lookup([fp(1), { kind: "spki", value: "x" }, cn("d")], T0)), "d");
  assert.deepEqual(asked, ["fingerprint", "spki", "cn"]);
});

test("unknown devices are cached for negativeTtlMs, and a create drops that at once", async () => {
  const { store, cache } = setup();
  assert.equal(await cache.lookup([fp(5)], T0), undefined);
  assert.equal(cache.lookup([fp(5)], T0 + 4_999), undefined, "negative hit, sync");
  assert.equal(store.queries, 1);
  assert.equal(await cache.lookup([fp(5)], T0 + 5_000), undefined, "expired: asked again");
  assert.equal(store.queries, 2);
  store.put({ id: "new", bindings: [fp(5)] });
  const now = cache.lookup([fp(5)], T0 + 5_001);
  assert.ok(now instanceof Promise, "the create invalidated the negative entry");
  assert.equal(idOf(await now), "new");
});

test("changes invalidate: status change, binding removed, delete, resync", async () => {
  const { store, cache } = setup();
  store.put({ id: "d", bindings: [fp(1), cn("d")] });
  await cache.lookup([fp(1)], T0);
  await cache.lookup([cn("d")], T0);
  store.put({ id: "d", bindings: [fp(1), cn("d")], status: "suspended" });
  assert.equal(((await cache.lookup([fp(1)], T0)) as { status: string }).status, "suspended");
  store.put({ id: "d", bindings: [fp(1)], status: "suspended" });
  assert.equal(await cache.lookup([cn("d")], T0), undefined, "the removed binding no longer maps");
  await store.delete("d");
  assert.equal(await cache.lookup([fp(1)], T0), undefined);
  store.put({ id: "e", bindings: [fp(2)] });
  await cache.lookup([fp(2)], T0);
  assert.equal(cache.size > 0, true);
  store.hub.emit({ id: "", kind: "resync", bindings: [] });
  assert.equal(cache.size, 0);
});

test("an answer that was in flight during a change is returned but not kept", async () => {
  const { store, cache } = setup();
  store.put({ id: "d", bindings: [fp(1)] });
  let open = (): void => {};
  store.gate = new Promise((resolve) => {
    open = resolve;
  });
  const pending = cache.lookup([fp(1)], T0);
  store.hub.emit({ id: "d", kind: "updated", bindings: [fp(1)], status: "revoked" });
  open();
  await pending;
  store.gate = undefined;
  assert.ok(cache.lookup([fp(1)], T0) instanceof Promise, "asked again");
});

test("positive entries expire after ttlMs; the LRU keeps at most maxEntries", async () => {
  const { store, cache } = setup({ maxEntries: 2 });
  for (const n of [1, 2, 3]) store.put({ id: `d${n}`, bindings: [fp(n)] });
  await cache.lookup([fp(1)], T0);
  await cache.lookup([fp(2)], T0);
  cache.lookup([fp(1)], T0); // d1 is now the most recent
  await cache.lookup([fp(3)], T0);
  assert.equal(cache.size, 2);
  assert.ok(!(cache.lookup([fp(1)], T0) instanceof Promise));
  assert.ok(cache.lookup([fp(2)], T0) instanceof Promise, "d2 was evicted");
  assert.ok(cache.lookup([fp(3)], T0 + 60_000) instanceof Promise, "expired after ttlMs");
});

test("outage: known devices within grace still pass, unknown fail closed, then recovery", async () => {
  const { store, cache } = setup({ outageRetryMs: 1_000 });
  store.put({ id: "known", bindings: [fp(1)] });
  await cache.lookup([fp(1)], T0);
  store.down = true;
  const expired = T0 + 60_000 + 10; // TTL over, grace not
  assert.equal(idOf(await cache.lookup([fp(1)], expired)), "known");
  assert.equal(await cache.lookup([fp(2)], expired + 1), STORE_UNAVAILABLE, "sync inside the retry window");
  const queries = store.queries;
  // Inside the retry window the store is not asked at all, and answers are synchronous.
  assert.equal(cache.lookup([fp(2)], expired + 2), STORE_UNAVAILABLE);
  assert.equal(idOf(cache.lookup([fp(1)], expired + 3)), "known");
  assert.equal(store.queries, queries);
  // Unknown stays distinguishable from unavailable.
  const unknown = await cache.lookup([fp(3)], expired + 2_000);
  assert.ok(unknown !== undefined && isStoreUnavailable(unknown));
  // Past the grace period a known device fails closed too.
  assert.equal(await cache.lookup([fp(1)], T0 + 60_000 + 300_000 + 5_000), STORE_UNAVAILABLE);
  store.down = false;
  const later = T0 + 60_000 + 300_000 + 7_000;
  // The first lookup after the retry window answers at once and lets one background probe ask the store.
  assert.equal(cache.lookup([fp(1)], later), STORE_UNAVAILABLE, "answered at once while the probe runs");
  let recovered = await cache.lookup([fp(1)], later);
  for (let i = 0; i < 50 && isStoreUnavailable(recovered); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
    recovered = await cache.lookup([fp(1)], later);
  }
  assert.equal(idOf(recovered), "known", "recovered, without a restart");
  assert.equal(await cache.lookup([fp(2)], later), undefined, "unknown again, not unavailable");
  assert.ok(!(cache.lookup([fp(1)], later + 1) instanceof Promise), "cached again after recovery");
});

test("a device invalidated by a change is not served from grace during an outage", async () => {
  const { store, cache } = setup({ outageRetryMs: 0 });
  store.put({ id: "d", bindings: [fp(1)] });
  await cache.lookup([fp(1)], T0);
  store.hub.emit({ id: "d", kind: "updated", bindings: [fp(1)], status: "revoked" });
  store.down = true;
  assert.equal(await cache.lookup([fp(1)], T0 + 1), STORE_UNAVAILABLE);
});

test("markSeen collects the latest time per device; flushSeen writes one touch and keeps them on failure", async () => {
  const { store, cache } = setup();
  cache.markSeen("a", T0);
  cache.markSeen("a", T0 + 5);
  cache.markSeen("a", T0 + 2);
  cache.markSeen("b", new Date(T0));
  store.down = true;
  await assert.rejects(cache.flushSeen());
  cache.markSeen("c", T0);
  store.down = false;
  await cache.flushSeen();
  await cache.flushSeen(); // nothing new: no write
  assert.equal(store.touches.length, 1);
  assert.deepEqual([...(store.touches[0] ?? [])].map(([id, d]) => [id, d.getTime()]).sort(), [
    ["a", T0 + 5],
    ["b", T0],
    ["c", T0],
  ]);
});

test("options are checked; close unsubscribes", () => {
  const store = new FakeStore();
  assert.throws(() => new DeviceCache(store, { ...options, maxEntries: 0 }), RangeError);
  const cache = new DeviceCache(store, options);
  assert.equal(store.hub.size, 1);
  cache.close();
  assert.equal(store.hub.size, 0);
});
