// DecisionLog ring semantics (newest first, bounded, clamped) and toDecisionRecord's report-only marking.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as c from "../identity/testing/corpus.ts";
import type { Decision } from "../identity/types.ts";
import { DecisionLog, type DecisionRecord, toDecisionRecord } from "./decision-log.ts";

const rec = (n: number): DecisionRecord => ({
  at: new Date(n * 1000).toISOString(),
  listener: "main",
  route: `r${n}`,
  allow: true,
  enforced: true,
});
const routes = (rs: DecisionRecord[]) => rs.map((r) => r.route);

const rings: { desc: string; capacity: number; recorded: number; limit: number; expected: string[] }[] = [
  { desc: "empty log", capacity: 3, recorded: 0, limit: 10, expected: [] },
  { desc: "partly filled, newest first", capacity: 5, recorded: 3, limit: 10, expected: ["r3", "r2", "r1"] },
  { desc: "limit below size", capacity: 5, recorded: 4, limit: 2, expected: ["r4", "r3"] },
  { desc: "exactly full", capacity: 3, recorded: 3, limit: 3, expected: ["r3", "r2", "r1"] },
  { desc: "wrapped: oldest overwritten", capacity: 3, recorded: 7, limit: 10, expected: ["r7", "r6", "r5"] },
  { desc: "wrapped, limit 1", capacity: 3, recorded: 8, limit: 1, expected: ["r8"] },
  { desc: "limit 0", capacity: 3, recorded: 2, limit: 0, expected: [] },
  { desc: "negative limit", capacity: 3, recorded: 2, limit: -5, expected: [] },
  { desc: "NaN limit gives nothing", capacity: 3, recorded: 2, limit: Number.NaN, expected: [] },
  {
    desc: "Infinity limit gives all",
    capacity: 3,
    recorded: 4,
    limit: Infinity,
    expected: ["r4", "r3", "r2"],
  },
  { desc: "fractional limit floors", capacity: 5, recorded: 5, limit: 2.9, expected: ["r5", "r4"] },
  { desc: "capacity 0 keeps nothing", capacity: 0, recorded: 4, limit: 10, expected: [] },
  { desc: "capacity 1", capacity: 1, recorded: 3, limit: 5, expected: ["r3"] },
];

for (const row of rings) {
  test(`DecisionLog: ${row.desc}`, () => {
    const log = new DecisionLog(row.capacity);
    for (let i = 1; i <= row.recorded; i++) log.record(rec(i));
    assert.deepEqual(routes(log.recent(row.limit)), row.expected);
    assert.equal(log.size, Math.min(row.recorded, row.capacity));
  });
}

test("DecisionLog: rejects a negative or fractional capacity", () => {
  for (const bad of [-1, 1.5, Number.NaN]) assert.throws(() => new DecisionLog(bad), RangeError);
});

test("DecisionLog: clear empties it and recording starts over", () => {
  const log = new DecisionLog(2);
  for (let i = 1; i <= 3; i++) log.record(rec(i));
  log.clear();
  assert.equal(log.size, 0);
  log.record(rec(9));
  assert.deepEqual(routes(log.recent(5)), ["r9"]);
});

test("DecisionLog: memory stays bounded after many records", () => {
  const log = new DecisionLog(100);
  for (let i = 1; i <= 100_000; i++) log.record(rec(i));
  assert.equal(log.size, 100);
  assert.equal(log.recent(1)[0]?.route, "r100000");
  assert.equal(log.recent(1000).length, 100);
});

const allowDecision: Decision = {
  allow: true,
  identity: {
    leaf: c.good.cert,
    path: [c.int.cert, c.root.cert],
    trustStore: "acme",
    deviceId: "device-001",
  },
  notBefore: c.good.cert.notBefore,
  notAfter: c.good.cert.notAfter,
};
const denyDecision: Decision = { allow: false, reason: "subject_not_allowed", detail: "CN mismatch" };
const leaf = { fingerprint: c.otherDevice.cert.fingerprint, subject: c.otherDevice.cert.subject };
const ctx = {
  listener: "main",
  route: "echo",
  host: "localhost",
  sni: "localhost",
  resumed: false,
  now: c.NOW,
};

const records: {
  desc: string;
  decision: Decision;
  context: Parameters<typeof toDecisionRecord>[1];
  expected: DecisionRecord;
}[] = [
  {
    desc: "an allow carries the device identity",
    decision: allowDecision,
    context: { ...ctx, enforce: "report-only" },
    expected: {
      at: "2026-06-01T00:00:00.000Z",
      listener: "main",
      route: "echo",
      host: "localhost",
      sni: "localhost",
      resumed: false,
      allow: true,
      enforced: true,
      fingerprint: c.good.cert.fingerprint,
      subject: "CN=device-001",
      deviceId: "device-001",
    },
  },
  {
    desc: "an enforced denial",
    decision: denyDecision,
    context: { ...ctx, enforce: "enforce", leaf },
    expected: {
      at: "2026-06-01T00:00:00.000Z",
      listener: "main",
      route: "echo",
      host: "localhost",
      sni: "localhost",
      resumed: false,
      allow: false,
      enforced: true,
      reason: "subject_not_allowed",
      detail: "CN mismatch",
      fingerprint: leaf.fingerprint,
      subject: leaf.subject,
    },
  },
  {
    desc: "a report-only denial is not enforced",
    decision: denyDecision,
    context: { listener: "main", route: "echo", enforce: "report-only", now: c.NOW },
    expected: {
      at: "2026-06-01T00:00:00.000Z",
      listener: "main",
      route: "echo",
      allow: false,
      enforced: false,
      reason: "subject_not_allowed",
      detail: "CN mismatch",
    },
  },
  {
    desc: "a listener-level denial without a certificate has no route nor identity",
    decision: { allow: false, reason: "no_certificate", detail: "the client sent no certificate" },
    context: { listener: "mtls", now: c.NOW },
    expected: {
      at: "2026-06-01T00:00:00.000Z",
      listener: "mtls",
      allow: false,
      enforced: true,
      reason: "no_certificate",
      detail: "the client sent no certificate",
    },
  },
];

for (const row of records) {
  test(`toDecisionRecord: ${row.desc}`, () => {
    assert.deepEqual(toDecisionRecord(row.decision, row.context), row.expected);
  });
}
