// The retry budget: a fraction of recent requests, a small floor, and a window that forgets.
import assert from "node:assert/strict";
import { test } from "node:test";
import { MIN_RETRIES_PER_WINDOW, RetryBudget } from "./retry-budget.ts";

test("retries are capped at ratio × requests of the window, with a floor", () => {
  let now = 0;
  const budget = new RetryBudget(0.2, () => now);
  // No traffic yet: the floor.
  let granted = 0;
  while (budget.tryRetry()) granted++;
  assert.equal(granted, MIN_RETRIES_PER_WINDOW);

  now = 60_000; // a fresh window
  for (let i = 0; i < 100; i++) budget.request();
  granted = 0;
  while (budget.tryRetry()) granted++;
  assert.equal(granted, 20, "20 % of 100 requests");

  now += 5_000; // still inside the 10 s window
  assert.equal(budget.tryRetry(), false);
  now += 6_000; // the requests and retries of 11 s ago are out
  granted = 0;
  while (budget.tryRetry()) granted++;
  assert.equal(granted, MIN_RETRIES_PER_WINDOW);
});

test("a ratio of 0 allows no retry at all", () => {
  const budget = new RetryBudget(0, () => 0);
  for (let i = 0; i < 100; i++) budget.request();
  assert.equal(budget.tryRetry(), false);
});
