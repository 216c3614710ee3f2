// Active health checks on a scripted probe: thresholds both ways, expected statuses, timeouts, and stop().
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { HealthChecker, type HealthCheckOptions } from "./health-checks.ts";

const OPTIONS: HealthCheckOptions = {
  path: "/health",
  intervalMs: 10,
  timeoutMs: 50,
  healthyThreshold: 2,
  unhealthyThreshold: 3,
};

async function until(condition: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await sleep(5);
  }
}

test("a target goes down after unhealthyThreshold failed checks and back after healthyThreshold good ones", async () => {
  const statuses = [500, 200];
  let status0 = 200;
  const probes = [0, 0];
  const changes: [number, boolean, string][] = [];
  const checker = new HealthChecker(
    2,
    OPTIONS,
    async (i) => {
      probes[i] = (probes[i] ?? 0) + 1;
      return i === 0 ? status0 : (statuses[1] as number);
    },
    (i, healthy, detail) => changes.push([i, healthy, detail]),
  );
  assert.equal(checker.healthy(0), true, "healthy until checks say otherwise");
  checker.start();
  try {
    await until(() => (probes[0] ?? 0) >= 3);
    assert.equal(checker.healthy(0), true);
    status0 = 500;
    await until(() => !checker.healthy(0));
    assert.deepEqual(changes, [[0, false, "status 500"]]);
    status0 = 200;
    await until(() => checker.healthy(0));
    assert.deepEqual(changes[1], [0, true, "status 200"]);
    assert.equal(checker.healthy(1), true);
  } finally {
    checker.stop();
  }
  const after = probes[0];
  await sleep(50);
  assert.equal(probes[0], after, "no probe after stop()");
});

test("expectStatus, a probe that throws and one that never answers all count as failures", async () => {
  const cases: [Partial<HealthCheckOptions>, (signal: AbortSignal) => Promise<number>, string][] = [
    [{ expectStatus: [204] }, async () => 200, "status 200"],
    [{}, async () => Promise.reject(new Error("connect ECONNREFUSED")), "connect ECONNREFUSED"],
    [
      {},
      (signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))),
      "timed out",
    ],
  ];
  for (const [overrides, probe, detail] of cases) {
    const changes: string[] = [];
    const checker = new HealthChecker(
      1,
      { ...OPTIONS, ...overrides, unhealthyThreshold: 1 },
      (_i, signal) => probe(signal),
      (_i, _healthy, d) => changes.push(d),
    );
    checker.start();
    try {
      await until(() => !checker.healthy(0));
      assert.deepEqual(changes, [detail]);
    } finally {
      checker.stop();
    }
  }
});
