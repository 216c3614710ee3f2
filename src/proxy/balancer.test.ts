// The balancers: round-robin order, least-connections by load, and the consistent-hash ring's stickiness.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ConsistentHashBalancer,
  createBalancer,
  LeastConnectionsBalancer,
  RoundRobinBalancer,
} from "./balancer.ts";

const all = () => true;

test("round-robin takes targets in turn and passes over unusable ones", () => {
  const rr = new RoundRobinBalancer(3);
  assert.deepEqual(
    Array.from({ length: 6 }, () => rr.pick("", all)),
    [0, 1, 2, 0, 1, 2],
  );
  const not1 = (i: number) => i !== 1;
  assert.deepEqual(
    Array.from({ length: 4 }, () => rr.pick("", not1)),
    [0, 2, 0, 2],
  );
  assert.equal(
    rr.pick("", () => false),
    undefined,
  );
});

test("least-connections picks the least loaded usable target, ties in turn", () => {
  const load = [2, 0, 1];
  const lc = new LeastConnectionsBalancer(3, (i) => load[i] ?? 0);
  assert.equal(lc.pick("", all), 1);
  assert.equal(
    lc.pick("", (i) => i !== 1),
    2,
  );
  const even = new LeastConnectionsBalancer(3, () => 0);
  assert.deepEqual(
    Array.from({ length: 4 }, () => even.pick("", all)),
    [0, 1, 2, 0],
  );
  assert.equal(
    lc.pick("", () => false),
    undefined,
  );
});

const names = (n: number) => Array.from({ length: n }, (_, i) => `http://10.0.0.${i + 1}:8080/`);
const ids = Array.from({ length: 10_000 }, (_, i) => `device-${i}`);

test("consistent hashing keeps a key on one target and spreads keys evenly", () => {
  const ring = new ConsistentHashBalancer(names(10));
  const counts = new Array<number>(10).fill(0);
  for (const id of ids) {
    const first = ring.pick(id, all) as number;
    assert.equal(ring.pick(id, all), first, "the same key, the same target");
    counts[first] = (counts[first] ?? 0) + 1;
  }
  // 1,000 each on average; 160 virtual nodes keep every target within about ±35 %.
  for (const c of counts) assert.ok(c > 650 && c < 1350, `uneven spread: ${counts}`);
});

test("adding an 11th target to 10 moves about 1/11 of 10,000 keys, all of them to the new target", () => {
  const before = new ConsistentHashBalancer(names(10));
  const after = new ConsistentHashBalancer(names(11));
  let moved = 0;
  for (const id of ids) {
    const was = before.pick(id, all);
    const now = after.pick(id, all);
    if (was === now) continue;
    moved++;
    assert.equal(now, 10, `${id} moved from ${was} to ${now}, not to the new target`);
  }
  assert.ok(moved > 0 && moved <= 1500, `${moved} of 10,000 keys moved`);
});

test("a key whose target is unusable walks on, and comes back when it is usable again", () => {
  const ring = new ConsistentHashBalancer(names(5));
  const home = ids.map((id) => ring.pick(id, all));
  const without2 = (i: number) => i !== 2;
  ids.forEach((id, k) => {
    const now = ring.pick(id, without2);
    if (home[k] === 2) assert.notEqual(now, 2);
    else assert.equal(now, home[k], "keys of the other targets stay where they are");
  });
  assert.equal(
    ring.pick("x", () => false),
    undefined,
  );
  // Target order in the list does not matter: the ring is placed by name.
  const reversed = new ConsistentHashBalancer(names(5).reverse());
  ids.slice(0, 200).forEach((id, k) => {
    assert.equal(4 - (reversed.pick(id, all) as number), home[k]);
  });
});

test("createBalancer maps each strategy", () => {
  assert.ok(createBalancer("round-robin", names(2), () => 0) instanceof RoundRobinBalancer);
  assert.ok(createBalancer("least-connections", names(2), () => 0) instanceof LeastConnectionsBalancer);
  assert.ok(createBalancer("consistent-hash", names(2), () => 0) instanceof ConsistentHashBalancer);
});

test("a retry pick leaves the round-robin and least-connections turns where they are", () => {
  const rr = new RoundRobinBalancer(3);
  assert.equal(rr.pick("", all), 0);
  assert.equal(
    rr.pick("", (i) => i !== 0, true),
    1,
  );
  assert.equal(rr.pick("", all), 1, "the retry did not take target 1's turn");
  const lc = new LeastConnectionsBalancer(3, () => 0);
  assert.equal(lc.pick("", all), 0);
  assert.equal(
    lc.pick("", (i) => i !== 0, true),
    1,
  );
  assert.equal(lc.pick("", all), 1);
});
