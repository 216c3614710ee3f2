// The console's data routes: fleet counts, id-prefix search, decisions by filter and per minute, the expiry
// histogram and the trust stores with their CRLs.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { DecisionRecord } from "../../gateway/decision-log.ts";
import { DAY_MS, type SeenCertificate } from "../../gateway/fleet-expiry.ts";
import { crlPem, device, store, testPki } from "../../identity/revocation/testing/pki.ts";
import { RevocationService } from "../../revocation/revocation-service.ts";
import { type AdminHarness, startAdmin } from "../testing/harness.ts";
import { expiryHistogram } from "./console-routes.ts";
import { DecisionSummary } from "./decision-summary.ts";

type Json = Record<string, unknown>;

const decision = (over: Partial<DecisionRecord>): DecisionRecord => ({
  at: new Date().toISOString(),
  listener: "devices",
  allow: false,
  enforced: true,
  ...over,
});

describe("console data routes", () => {
  let admin: AdminHarness;
  const seen: SeenCertificate[] = [];
  before(async () => {
    admin = await startAdmin({ fleet: { current: () => seen } });
    for (const [id, status] of [
      ["sensor-001", "active"],
      ["sensor-002", "suspended"],
      ["sensor-010", "active"],
      ["pump-1", "pending"],
      ["sensor_x", "revoked"],
    ] as const) {
      await admin.store.create({ id, status });
    }
  });
  after(() => admin.close());

  test("GET /fleet/summary counts the devices by status", async () => {
    const r = await admin.call("GET", "/fleet/summary");
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { devices: { total: 5, active: 2, suspended: 1, revoked: 1, pending: 1 } });
  });

  test("GET /devices?idPrefix= finds ids by prefix, keyset-paged; a bad prefix is 400", async () => {
    const page = await admin.call<{ devices: { id: string }[]; next: string | null }>(
      "GET",
      "/devices?idPrefix=sensor-0&limit=1",
    );
    assert.deepEqual(
      page.json.devices.map((d) => d.id),
      ["sensor-001"],
    );
    const rest = await admin.call<{ devices: { id: string }[]; next: string | null }>(
      "GET",
      `/devices?idPrefix=sensor-0&after=${page.json.next}`,
    );
    assert.deepEqual(
      rest.json.devices.map((d) => d.id),
      ["sensor-002", "sensor-010"],
    );
    assert.equal(rest.json.next, null);
    const both = await admin.call<{ devices: { id: string }[] }>(
      "GET",
      "/devices?idPrefix=sensor&status=active",
    );
    assert.deepEqual(
      both.json.devices.map((d) => d.id),
      ["sensor-001", "sensor-010"],
    );
    for (const bad of ["", "a%25", "a%20b", "x".repeat(257)]) {
      assert.equal((await admin.call("GET", `/devices?idPrefix=${bad}`)).status, 400, bad);
    }
  });

  test("GET /decisions filters by result, reason, route and device, newest first", async () => {
    admin.decisions.clear();
    admin.decisions.record(decision({ route: "a", deviceId: "d1", reason: "unknown_device" }));
    admin.decisions.record(decision({ route: "b", deviceId: "d1", reason: "device_suspended" }));
    admin.decisions.record(decision({ route: "a", deviceId: "d2", allow: true }));
    admin.decisions.record(decision({ route: "a", deviceId: "d1", reason: "device_suspended" }));
    const ids = async (query: string) =>
      (await admin.call<{ decisions: DecisionRecord[] }>("GET", `/decisions?${query}`)).json.decisions.map(
        (d) => `${d.route}/${d.deviceId}/${d.reason ?? "allow"}`,
      );
    assert.deepEqual(await ids("result=deny&route=a"), ["a/d1/device_suspended", "a/d1/unknown_device"]);
    assert.deepEqual(await ids("result=allow"), ["a/d2/allow"]);
    assert.deepEqual(await ids("reason=device_suspended&limit=1"), ["a/d1/device_suspended"]);
    assert.deepEqual(await ids("device=d1&route=b"), ["b/d1/device_suspended"]);
    assert.equal((await ids("limit=2")).length, 2);
    assert.equal((await admin.call("GET", "/decisions?result=nope")).status, 400);
  });

  test("GET /decisions/summary: one entry per minute, zeros included, the current one last", async () => {
    admin.decisions.record(decision({ allow: true }));
    admin.decisions.record(decision({ reason: "no_certificate" }));
    const r = await admin.call<{ minutes: Json[] }>("GET", "/decisions/summary?minutes=5");
    assert.equal(r.status, 200);
    assert.equal(r.json.minutes.length, 5);
    const last = r.json.minutes.at(-1) as { at: string; allow: number; deny: number; reasons: Json };
    assert.ok(last.allow >= 1 && last.deny >= 1);
    assert.ok(Number(last.reasons.no_certificate) >= 1);
    assert.equal(Date.parse(last.at) % 60_000, 0);
    assert.equal(
      (await admin.call<{ minutes: Json[] }>("GET", "/decisions/summary")).json.minutes.length,
      60,
    );
    assert.equal((await admin.call("GET", "/decisions/summary?minutes=61")).status, 400);
  });

  test("GET /fleet/expiry-histogram buckets the days left of the devices seen", async () => {
    const now = Date.now();
    seen.length = 0;
    for (const [i, days] of [-2, 3, 20, 60, 200, 800, 7.5].entries()) {
      seen.push({
        deviceId: `d${i}`,
        notAfter: now + days * DAY_MS,
        seenAt: now,
        fingerprint: "f",
        serial: "s",
      });
    }
    const r = await admin.call("GET", "/fleet/expiry-histogram");
    assert.deepEqual(r.json, {
      total: 7,
      buckets: [
        { label: "expired", count: 1 },
        { label: "0–7 d", count: 2 },
        { label: "8–30 d", count: 1 },
        { label: "31–90 d", count: 1 },
        { label: "91–365 d", count: 1 },
        { label: "> 365 d", count: 1 },
      ],
    });
  });

  test("GET /trust without a trust source lists none", async () => {
    assert.deepEqual((await admin.call("GET", "/trust")).json, { trustStores: [] });
  });

  test("the admin listener's metrics are appended to /metrics", async () => {
    const text = (await admin.call("GET", "/metrics")).text;
    assert.match(text, /^# TYPE portcullis_admin_event_streams gauge$/m);
    assert.match(text, /^portcullis_admin_events_dropped_total 0$/m);
    assert.match(text, /^# TYPE portcullis_decisions_total counter$/m);
  });
});

test("expiryHistogram puts each whole number of days in its bucket", () => {
  const h = expiryHistogram([-1, 0, 7, 8, 30, 31, 90, 91, 365, 366]);
  assert.deepEqual(
    h.buckets.map((b) => b.count),
    [1, 2, 2, 2, 2, 1],
  );
});

test("DecisionSummary: buckets by minute, a minute older than the ring is zero again", () => {
  let now = 10 * 60_000;
  const listeners: ((r: DecisionRecord) => void)[] = [];
  const onRecord = (l: (r: DecisionRecord) => void) => {
    listeners.push(l);
    return () => {};
  };
  const summary = new DecisionSummary({ onRecord }, () => now);
  const record = (r: DecisionRecord) => {
    for (const l of listeners) l(r);
  };
  record(decision({ reason: "no_certificate" }));
  record(decision({ reason: "not-a-code" as "no_certificate" }));
  now += 60_000;
  record(decision({ allow: true }));
  const [before, current] = summary.minutes(2);
  assert.deepEqual(before, {
    at: new Date(10 * 60_000).toISOString(),
    allow: 0,
    deny: 2,
    reasons: { no_certificate: 1, other: 1 },
  });
  assert.deepEqual(current, { at: new Date(11 * 60_000).toISOString(), allow: 1, deny: 0, reasons: {} });
  now += 60 * 60_000;
  assert.ok(summary.minutes(60).every((m) => m.allow === 0 && m.deny === 0));
});

test("GET /trust: CA certificates with their expiry, and the CRLs loaded for each store", async () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-trust-"));
  const pki = await testPki("Trust");
  const revoked = await device("gone", pki.int);
  const crlFile = join(dir, "int.crl");
  writeFileSync(crlFile, await crlPem(pki.int, { revoked: [revoked], crlNumber: 7 }));
  const devices = store(
    pki,
    { mode: "strict", crl: { files: [crlFile], distributionPoints: false } },
    "devices",
  );
  const plain = store(pki, { mode: "off" }, "plain");
  const logger = { info() {}, warn() {}, error() {} };
  const revocation = await RevocationService.create([devices, plain], { logger });
  const admin = await startAdmin({ trust: () => ({ trustStores: [devices, plain], revocation }) });
  try {
    const r = await admin.call<{ trustStores: Json[] }>("GET", "/trust");
    assert.equal(r.status, 200);
    const [first, second] = r.json.trustStores as {
      name: string;
      cas: Json[];
      revocation: { mode: string; crls: Json[]; sources: Json[]; ocsp: Json };
    }[];
    assert.equal(first?.name, "devices");
    assert.deepEqual(
      first?.cas.map((c) => [c.kind, c.subject, c.fingerprint]),
      [
        ["anchor", pki.root.cert.subject, pki.root.cert.fingerprint],
        ["intermediate", pki.int.cert.subject, pki.int.cert.fingerprint],
      ],
    );
    const ca = first?.cas[0] as { notAfter: string; daysLeft: number };
    assert.equal(ca.daysLeft, Math.floor((Date.parse(ca.notAfter) - Date.now()) / DAY_MS));
    assert.equal(first?.revocation.mode, "strict");
    assert.deepEqual(first?.revocation.sources, [{ source: `file:${crlFile}`, loaded: true }]);
    assert.equal(first?.revocation.crls.length, 1);
    const crl = first?.revocation.crls[0] as Json;
    assert.equal(crl.source, `file:${crlFile}`);
    assert.equal(crl.issuer, pki.int.cert.subject);
    assert.equal(crl.fresh, true);
    assert.equal(crl.revoked, 1);
    assert.equal(crl.crlNumber, "7");
    assert.equal(typeof crl.thisUpdate, "string");
    assert.equal(typeof crl.nextUpdate, "string");
    assert.deepEqual(first?.revocation.ocsp, {
      enabled: false,
      responder: null,
      maxAgeSeconds: 3600,
      cachedResponses: 0,
    });
    assert.equal(second?.name, "plain");
    assert.equal(second?.revocation.mode, "off");
    assert.deepEqual(second?.revocation.crls, []);
  } finally {
    await admin.close();
    await revocation.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
