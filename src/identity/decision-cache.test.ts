// DecisionCache: LRU order, TTL, keys by chain fingerprint (never by DN), allows dropped once expired.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decide } from "./decide.ts";
import { DecisionCache, decisionCacheKey } from "./decision-cache.ts";
import * as c from "./testing/corpus.ts";
import type { AuthPolicy, Decision } from "./types.ts";

const policy: AuthPolicy = { id: "acme", trustStores: [c.stores.acme] };
const deny = (detail: string): Decision => ({ allow: false, reason: "untrusted_issuer", detail });
const t0 = c.NOW.getTime();

test("two certificates with the same subject DN never share a cache entry", () => {
  assert.equal(c.good.cert.subject, c.twin.cert.subject);
  const cache = new DecisionCache({ maxEntries: 10, ttlMs: 60_000 });
  const a = c.identityOf(c.good.cert, [c.int.cert]);
  const b = c.identityOf(c.twin.cert, [c.int.cert]);
  assert.notEqual(decisionCacheKey(a, policy), decisionCacheKey(b, policy));
  cache.set(decisionCacheKey(a, policy), decide(a, policy, [], c.NOW), c.NOW);
  assert.equal(cache.get(decisionCacheKey(b, policy), c.NOW), undefined);
  assert.ok(cache.get(decisionCacheKey(a, policy), c.NOW)?.allow);
  // The forged certificate shares DN and issuer name too, and is denied on its own.
  const forged = c.identityOf(c.forged.cert, [c.int.cert]);
  assert.equal(cache.get(decisionCacheKey(forged, policy), c.NOW), undefined);
  assert.equal(decide(forged, policy, [], c.NOW).allow, false);
});

test("the key is chainFingerprint|policy.id", () => {
  const identity = c.identityOf(c.good.cert, [c.int.cert]);
  assert.equal(decisionCacheKey(identity, policy), `${identity.chainFingerprint}|acme`);
});

test("least recently used entry is evicted; get refreshes recency", () => {
  const cache = new DecisionCache({ maxEntries: 2, ttlMs: 60_000 });
  cache.set("a", deny("a"), t0);
  cache.set("b", deny("b"), t0);
  assert.ok(cache.get("a", t0));
  cache.set("c", deny("c"), t0);
  assert.equal(cache.get("b", t0), undefined);
  assert.ok(cache.get("a", t0));
  assert.ok(cache.get("c", t0));
  assert.equal(cache.size, 2);
});

test("entries expire after ttlMs; set refreshes; clear empties", () => {
  const cache = new DecisionCache({ maxEntries: 10, ttlMs: 1000 });
  cache.set("a", deny("a"), t0);
  assert.ok(cache.get("a", new Date(t0 + 1000)));
  assert.equal(cache.get("a", new Date(t0 + 1001)), undefined);
  assert.equal(cache.size, 0);
  cache.set("b", deny("b1"), t0);
  cache.set("b", deny("b2"), t0 + 900);
  const hit = cache.get("b", t0 + 1500);
  assert.ok(hit && !hit.allow && hit.detail === "b2");
  cache.clear();
  assert.equal(cache.size, 0);
});

test("an allow is not served past its notAfter even within the TTL", () => {
  const cache = new DecisionCache({ maxEntries: 10, ttlMs: 365 * 86_400_000 });
  const decision = decide(c.identityOf(c.good.cert, [c.int.cert]), policy, [], c.NOW);
  assert.ok(decision.allow);
  cache.set("k", decision, c.NOW);
  assert.equal(cache.get("k", decision.notAfter), decision);
  assert.equal(cache.get("k", decision.notAfter.getTime() + 1), undefined);
});

test("bad options are refused", () => {
  assert.throws(() => new DecisionCache({ maxEntries: 0, ttlMs: 1 }), RangeError);
  assert.throws(() => new DecisionCache({ maxEntries: 1, ttlMs: 0 }), RangeError);
});
