// Outlier detection: ejection after failures in a row, the cool-down, and a success resetting the count.
import assert from "node:assert/strict";
import { test } from "node:test";
import { OutlierDetector } from "./outlier.ts";

test("a target failing consecutiveFailures times in a row is ejected for ejectionTime", () => {
  let now = 1000;
  const ejections: [number, number][] = [];
  const d = new OutlierDetector(
    2,
    { consecutiveFailures: 3, ejectionTimeMs: 500 },
    (i, n) => ejections.push([i, n]),
    () => now,
  );
  d.failure(0);
  d.failure(0);
  assert.equal(d.ejected(0), false);
  d.failure(0);
  assert.equal(d.ejected(0), true);
  assert.equal(d.ejected(1), false, "the other target is untouched");
  assert.deepEqual(ejections, [[0, 3]]);
  d.failure(0); // a request already under way: no second ejection
  assert.equal(ejections.length, 1);
  now += 499;
  assert.equal(d.ejected(0), true);
  now += 1;
  assert.equal(d.ejected(0), false, "back after the cool-down");
  d.failure(0);
  assert.equal(d.ejected(0), false, "the count starts over after an ejection");
});

test("a success resets the count", () => {
  const d = new OutlierDetector(1, { consecutiveFailures: 2, ejectionTimeMs: 1000 }, undefined, () => 0);
  d.failure(0);
  d.success(0);
  d.failure(0);
  assert.equal(d.ejected(0), false);
  d.failure(0);
  assert.equal(d.ejected(0), true);
});
