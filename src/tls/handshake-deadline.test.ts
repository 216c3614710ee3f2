import assert from "node:assert/strict";
import { type AddressInfo, connect } from "node:net";
import { describe, test } from "node:test";
import { createServer } from "node:tls";
import { applyHandshakeDeadline, deadlineVerdict, LoadClock } from "./handshake-deadline.ts";

describe("deadlineVerdict", () => {
  const limits = { handshakeTimeout: 10_000, handshakeTimeoutMax: 60_000 };

  test("a client that had its handshakeTimeout while the gateway idled is refused", () => {
    assert.equal(deadlineVerdict(10_000, 0, limits), "client");
    assert.equal(deadlineVerdict(12_000, 1_500, limits), "client");
    // The loop's own timers and a few requests are not a reason to wait longer.
    assert.equal(deadlineVerdict(10_000, 200, limits), "client");
  });

  test("the time the gateway was busy moves the deadline on by as much", () => {
    assert.equal(deadlineVerdict(10_000, 9_000, limits), 9_000);
    assert.equal(deadlineVerdict(19_000, 15_000, limits), 6_000);
  });

  test("never past handshakeTimeoutMax, and never by less than a quarter second", () => {
    assert.equal(deadlineVerdict(59_000, 58_000, limits), 1_000);
    assert.equal(deadlineVerdict(60_000, 59_900, limits), "max");
    assert.equal(deadlineVerdict(10_000, 9_990, { ...limits, handshakeTimeoutMax: 10_001 }), 250);
  });

  test("a busy time above the elapsed time (sampling) counts as the whole of it", () => {
    assert.equal(deadlineVerdict(10_000, 12_000, limits), 10_000);
  });
});

describe("LoadClock", () => {
  test("reads the busy time since a moment from the newest sample at or before it", () => {
    let reading = { now: 0, busy: 0 };
    const clock = new LoadClock(4, () => reading);
    for (const [now, busy] of [
      [100, 10],
      [200, 60],
      [300, 150],
    ] as const) {
      reading = { now, busy };
      clock.sample();
    }
    reading = { now: 350, busy: 190 };
    assert.deepEqual(clock.busySince(250), { now: 350, busy: 130 });
    assert.deepEqual(clock.busySince(200), { now: 350, busy: 130 });
    // Before the oldest sample: only the time known counts.
    assert.deepEqual(clock.busySince(50), { now: 350, busy: 180 });
  });

  test("keeps only its capacity of samples", () => {
    let reading = { now: 0, busy: 0 };
    const clock = new LoadClock(2, () => reading);
    for (let i = 1; i <= 5; i++) {
      reading = { now: i * 100, busy: i * 10 };
      clock.sample();
    }
    reading = { now: 600, busy: 60 };
    assert.deepEqual(clock.busySince(0), { now: 600, busy: 20 });
  });
});

/** Keeps this process's event loop busy for `ms` in slices, as a reconnect storm does. */
async function busyFor(ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    const slice = performance.now() + 50;
    while (performance.now() < slice) {
      // busy
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A TLS server with the deadline applied and a client that connects and never starts its handshake. */
async function stalledHandshake(limits: { handshakeTimeout: number; handshakeTimeoutMax: number }) {
  const server = createServer({ handshakeTimeout: limits.handshakeTimeout });
  const counts = { extended: 0, refusedAtMax: 0, clientErrors: 0 };
  applyHandshakeDeadline(server, {
    limits: () => limits,
    extended: () => counts.extended++,
    refusedAtMax: () => counts.refusedAtMax++,
  });
  server.on("tlsClientError", () => counts.clientErrors++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const socket = connect((server.address() as AddressInfo).port, "127.0.0.1");
  const startedAt = performance.now();
  const closedAfter = new Promise<number>((resolve) => {
    socket.on("close", () => resolve(performance.now() - startedAt));
    socket.on("error", () => undefined);
  });
  await new Promise((resolve) => socket.once("connect", resolve));
  return {
    counts,
    closedAfter,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("applyHandshakeDeadline", () => {
  test("a client stalling while the gateway idles is refused at handshakeTimeout, not extended", async () => {
    // Loading this test was busy time; let a second of idleness pass first.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const run = await stalledHandshake({ handshakeTimeout: 1_000, handshakeTimeoutMax: 30_000 });
    const closedAfter = await run.closedAfter;
    assert.ok(closedAfter >= 900 && closedAfter < 5_000, `closed after ${closedAfter} ms`);
    assert.deepEqual(run.counts, { extended: 0, refusedAtMax: 0, clientErrors: 1 });
    await run.close();
  });

  test("the time the gateway was too busy to read the client does not count against it", async () => {
    const run = await stalledHandshake({ handshakeTimeout: 1_000, handshakeTimeoutMax: 30_000 });
    let busy = true;
    let closedWhileBusy = false;
    void run.closedAfter.then(() => {
      closedWhileBusy = busy;
    });
    await busyFor(3_000);
    busy = false;
    assert.equal(closedWhileBusy, false, "refused while the gateway was the slow side");
    assert.ok(run.counts.extended >= 1);
    // Once the gateway idles again, the client's own second runs out.
    const closedAfter = await run.closedAfter;
    assert.ok(closedAfter >= 3_000, `closed after ${closedAfter} ms`);
    assert.equal(run.counts.clientErrors, 1);
    assert.equal(run.counts.refusedAtMax, 0);
    await run.close();
  });

  test("however busy the gateway, a handshake ends at handshakeTimeoutMax", async () => {
    const run = await stalledHandshake({ handshakeTimeout: 1_000, handshakeTimeoutMax: 2_000 });
    let busy = true;
    let closedWhileBusy = false;
    void run.closedAfter.then(() => {
      closedWhileBusy = busy;
    });
    await busyFor(5_000);
    busy = false;
    assert.equal(closedWhileBusy, true, "the maximum did not end the handshake");
    assert.equal(run.counts.refusedAtMax, 1);
    assert.equal(run.counts.clientErrors, 1);
    await run.close();
  });

  test("other TLS servers keep Node's own deadline", async () => {
    const server = createServer({ handshakeTimeout: 1_000 });
    server.on("tlsClientError", (_err, socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const socket = connect((server.address() as AddressInfo).port, "127.0.0.1");
    socket.on("error", () => undefined);
    const startedAt = performance.now();
    const closed = new Promise<number>((resolve) =>
      socket.on("close", () => resolve(performance.now() - startedAt)),
    );
    await busyFor(2_500);
    const closedAfter = await closed;
    assert.ok(closedAfter < 2_500, `closed after ${closedAfter} ms: extended on a server without the hooks`);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
