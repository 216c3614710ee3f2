// FleetExpiry: bounded, cheap on repeat requests, windowed; the merge of seen and enrolled certificates; the
// fleet metrics computed at scrape time.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { IssuedCertificate } from "../registry/enrollment-types.ts";
import { DAY_MS, daysLeft, enrolledCertificates, expiringDevices, FleetExpiry } from "./fleet-expiry.ts";
import { GatewayMetrics } from "./metrics.ts";

const NOW = Date.parse("2026-06-01T00:00:00Z");
const leaf = (days: number, fingerprint = `fp-${days}`) => ({
  notAfter: new Date(NOW + days * DAY_MS),
  fingerprint,
  serialNumber: `s${days}`,
});

function issued(deviceId: string, days: number, extra: Partial<IssuedCertificate> = {}): IssuedCertificate {
  return {
    serial: `${deviceId}-${days}`,
    deviceId,
    profile: "default",
    fingerprint: `fp-${deviceId}-${days}`,
    subject: `CN=${deviceId}`,
    notBefore: new Date(NOW - DAY_MS),
    notAfter: new Date(NOW + days * DAY_MS),
    issuedAt: new Date(NOW - DAY_MS),
    operation: "enroll",
    pem: "",
    revokedAt: undefined,
    revocationReason: undefined,
    ...extra,
  };
}

test("a repeat of the same certificate within the touch interval writes nothing", () => {
  const fleet = new FleetExpiry({ touchIntervalMs: 5_000 });
  fleet.seen("d1", leaf(5), NOW);
  fleet.seen("d1", leaf(5), NOW + 4_999);
  assert.equal(fleet.current(NOW + 4_999)[0]?.seenAt, NOW);
  fleet.seen("d1", leaf(5), NOW + 5_000);
  assert.equal(fleet.current(NOW + 5_000)[0]?.seenAt, NOW + 5_000);
  // A new certificate is recorded at once.
  fleet.seen("d1", leaf(300, "renewed"), NOW + 5_001);
  assert.equal(fleet.current(NOW + 5_001)[0]?.fingerprint, "renewed");
  assert.equal(fleet.size, 1);
});

test("the map is bounded: the least recently seen device is dropped", () => {
  const fleet = new FleetExpiry({ maxDevices: 3, touchIntervalMs: 0 });
  fleet.seen("a", leaf(1), NOW);
  fleet.seen("b", leaf(2), NOW + 1);
  fleet.seen("c", leaf(3), NOW + 2);
  fleet.seen("a", leaf(1), NOW + 3); // a is recent again
  fleet.seen("d", leaf(4), NOW + 4);
  assert.deepEqual(
    fleet.current(NOW + 5).map((s) => s.deviceId),
    ["c", "a", "d"],
  );
});

test("devices not seen within the window are left out (and forgotten)", () => {
  const fleet = new FleetExpiry({ windowMs: DAY_MS });
  fleet.seen("old", leaf(10), NOW);
  fleet.seen("new", leaf(10), NOW + DAY_MS / 2);
  assert.deepEqual(
    fleet.current(NOW + DAY_MS + 1).map((s) => s.deviceId),
    ["new"],
  );
  assert.equal(fleet.size, 1);
});

test("daysLeft rounds down, negative once expired", () => {
  assert.equal(daysLeft(NOW + 5.9 * DAY_MS, NOW), 5);
  assert.equal(daysLeft(NOW + 1, NOW), 0);
  assert.equal(daysLeft(NOW - 1, NOW), -1);
});

test("expiringDevices: the later of seen and enrolled counts, soonest first, within the window", () => {
  const fleet = new FleetExpiry();
  fleet.seen("soon", leaf(5), NOW);
  fleet.seen("later", leaf(40), NOW);
  fleet.seen("renewed", leaf(3), NOW);
  const enrolled = new Map([
    ["renewed", issued("renewed", 365)],
    ["only-enrolled", issued("only-enrolled", 20)],
  ]);
  const out = expiringDevices(fleet.current(NOW), enrolled, 30 * DAY_MS, NOW);
  assert.deepEqual(
    out.map((d) => [d.deviceId, d.daysLeft, d.source]),
    [
      ["soon", 5, "seen"],
      ["only-enrolled", 20, "enrolled"],
    ],
  );
});

test("enrolledCertificates: per device the longest-lasting valid, unrevoked certificate, across pages", async () => {
  const all = [
    issued("a", 10),
    issued("a", 100),
    issued("b", 50, { revokedAt: new Date(NOW) }),
    issued("c", -1),
    ...Array.from({ length: 1500 }, (_, i) => issued(`x${i}`, 7)),
  ];
  const store = {
    async listIssuedCertificates(q: { after?: string; limit: number }) {
      const start = q.after === undefined ? 0 : Number(q.after);
      const end = start + q.limit;
      return { certificates: all.slice(start, end), next: end < all.length ? String(end) : undefined };
    },
  };
  const best = await enrolledCertificates(store, NOW);
  assert.equal(best.get("a")?.notAfter.getTime(), NOW + 100 * DAY_MS);
  assert.equal(best.has("b"), false);
  assert.equal(best.has("c"), false);
  assert.equal(best.size, 1501);
});

test("the fleet metrics are computed at scrape time", async () => {
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  const now = Date.now();
  const at = (days: number, fp: string) => ({
    notAfter: new Date(now + days * DAY_MS + 60_000),
    fingerprint: fp,
    serialNumber: fp,
  });
  metrics.fleet.seen("d5", at(5, "a"), now);
  metrics.fleet.seen("d40", at(40, "b"), now);
  metrics.fleet.seen("d400", at(400, "c"), now);
  metrics.useEnrollmentStore({
    async listIssuedCertificates() {
      return {
        certificates: [
          { ...issued("e", 0), notAfter: new Date(now + 20 * DAY_MS), notBefore: new Date(now - DAY_MS) },
        ],
        next: undefined,
      };
    },
  });
  const text = await metrics.text();
  const line = (series: string) => text.split("\n").find((l) => l.startsWith(`${series} `));
  assert.equal(
    line('portcullis_fleet_certificate_days_left_bucket{le="1"}'),
    'portcullis_fleet_certificate_days_left_bucket{le="1"} 0',
  );
  assert.match(line('portcullis_fleet_certificate_days_left_bucket{le="7"}') ?? "", / 1$/);
  assert.match(line('portcullis_fleet_certificate_days_left_bucket{le="60"}') ?? "", / 2$/);
  assert.match(line('portcullis_fleet_certificate_days_left_bucket{le="365"}') ?? "", / 2$/);
  assert.match(line("portcullis_fleet_certificate_days_left_count") ?? "", / 3$/);
  assert.match(line('portcullis_fleet_certificates_expiring{within="7d",source="seen"}') ?? "", / 1$/);
  assert.match(line('portcullis_fleet_certificates_expiring{within="30d",source="seen"}') ?? "", / 1$/);
  assert.match(line('portcullis_fleet_certificates_expiring{within="7d",source="enrolled"}') ?? "", / 0$/);
  assert.match(line('portcullis_fleet_certificates_expiring{within="30d",source="enrolled"}') ?? "", / 1$/);
  // A second scrape counts the same (the histogram is rebuilt, not added to).
  const again = await metrics.text();
  assert.match(
    again.split("\n").find((l) => l.startsWith("portcullis_fleet_certificate_days_left_count ")) ?? "",
    / 3$/,
  );
});
