// GatewayMetrics: the series each recorder produces, bounded labels, no identities in the text, own registry.
import assert from "node:assert/strict";
import { test } from "node:test";
import { register as globalRegistry } from "prom-client";
import * as c from "../identity/testing/corpus.ts";
import type { DecisionRecord } from "./decision-log.ts";
import { GatewayMetrics } from "./metrics.ts";

const base: DecisionRecord = {
  at: c.NOW.toISOString(),
  listener: "main",
  host: "secret-host.example",
  sni: "secret-host.example",
  allow: true,
  enforced: true,
  fingerprint: c.good.cert.fingerprint,
  subject: c.good.cert.subject,
  deviceId: "device-001",
};

const decisions: { desc: string; record: DecisionRecord; series: string }[] = [
  {
    desc: "an allow",
    record: { ...base, route: "echo" },
    series:
      'portcullis_decisions_total{result="allow",reason="none",route="echo",enforced="true",protocol="http"} 1',
  },
  {
    desc: "an enforced denial",
    record: { ...base, route: "echo", allow: false, reason: "certificate_expired", detail: "expired" },
    series:
      'portcullis_decisions_total{result="deny",reason="certificate_expired",route="echo",enforced="true",protocol="http"} 1',
  },
  {
    desc: "a report-only denial",
    record: { ...base, route: "echo", allow: false, enforced: false, reason: "subject_not_allowed" },
    series:
      'portcullis_decisions_total{result="deny",reason="subject_not_allowed",route="echo",enforced="false",protocol="http"} 1',
  },
  {
    desc: "a listener-level denial without a route",
    record: { ...base, allow: false, reason: "no_certificate" },
    series:
      'portcullis_decisions_total{result="deny",reason="no_certificate",route="(none)",enforced="true",protocol="http"} 1',
  },
  {
    desc: "an unknown reason string is folded into other",
    record: { ...base, route: "echo", allow: false, reason: "made_up" as DecisionRecord["reason"] },
    series:
      'portcullis_decisions_total{result="deny",reason="other",route="echo",enforced="true",protocol="http"} 1',
  },
];

for (const row of decisions) {
  test(`GatewayMetrics.recordDecision: ${row.desc}`, async () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    metrics.recordDecision(row.record);
    const text = await metrics.text();
    assert.ok(text.includes(row.series), text);
    assert.ok(!text.includes(c.good.cert.fingerprint), "fingerprint leaked into metrics");
    assert.ok(!text.includes("secret-host"), "host leaked into metrics");
    assert.ok(!text.includes("device-001"), "device id leaked into metrics");
  });
}

test("GatewayMetrics: decisions accumulate per label set", async () => {
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  for (let i = 0; i < 3; i++) metrics.recordDecision({ ...base, route: "echo" });
  assert.match(await metrics.text(), /portcullis_decisions_total\{result="allow",[^}]*route="echo"[^}]*\} 3/);
});

test("GatewayMetrics: request durations in 1ms..10s buckets, status bounded", async () => {
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  metrics.observeRequest("echo", 200, 0.0042);
  metrics.observeRequest(undefined, 404, 0.0001);
  metrics.observeRequest("echo", 9999, 1);
  const text = await metrics.text();
  assert.match(text, /portcullis_request_duration_seconds_bucket\{le="0\.001",route="echo",status="200"\} 0/);
  assert.match(text, /portcullis_request_duration_seconds_bucket\{le="0\.005",route="echo",status="200"\} 1/);
  assert.match(text, /portcullis_request_duration_seconds_bucket\{le="10",route="echo",status="200"\} 1/);
  assert.match(text, /portcullis_request_duration_seconds_count\{route="\(none\)",status="404"\} 1/);
  assert.match(text, /portcullis_request_duration_seconds_count\{route="echo",status="other"\} 1/);
});

test("GatewayMetrics: handshake failures, connections, revocation soft failures, registry lookups", async () => {
  const metrics = new GatewayMetrics({ defaultMetrics: false });
  metrics.recordHandshakeFailure("mtls", "untrusted_issuer");
  metrics.recordHandshakeFailure("mtls", undefined);
  const a = metrics.trackConnection("main", true);
  const b = metrics.trackConnection("main", true);
  const c = metrics.trackConnection("main", true);
  c.standing(false); // denied: the connection moves to authenticated="false"
  c.standing(false);
  a.close();
  a.close(); // a second close must not count twice
  a.standing(false); // nor a change after it closed
  metrics.revocationSoftFailures.inc({ store: "acme" });
  metrics.registryLookups.inc({ result: "hit" });
  metrics.registryLookups.inc({ result: "miss" });
  const text = await metrics.text();
  for (const series of [
    'portcullis_handshake_failures_total{listener="mtls",reason="untrusted_issuer"} 1',
    'portcullis_handshake_failures_total{listener="mtls",reason="tls"} 1',
    'portcullis_connections{listener="main",authenticated="true"} 1',
    'portcullis_connections{listener="main",authenticated="false"} 1',
    'portcullis_revocation_soft_failures_total{store="acme"} 1',
    'portcullis_registry_lookups_total{result="hit"} 1',
    'portcullis_registry_lookups_total{result="miss"} 1',
  ]) {
    assert.ok(text.includes(series), `missing ${series}`);
  }
  b.close();
  assert.ok(
    (await metrics.text()).includes('portcullis_connections{listener="main",authenticated="true"} 0'),
  );
});

test("GatewayMetrics: default process metrics, Prometheus content type", async () => {
  const metrics = new GatewayMetrics();
  const text = await metrics.text();
  assert.match(text, /^process_cpu_user_seconds_total /m);
  assert.match(text, /^nodejs_heap_size_used_bytes /m);
  assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
});

test("GatewayMetrics: two instances in one process do not clash nor touch the global registry", async () => {
  const a = new GatewayMetrics();
  const b = new GatewayMetrics();
  a.recordDecision({ ...base, route: "a" });
  assert.ok((await a.text()).includes('route="a"'));
  assert.ok(!(await b.text()).includes('route="a"'));
  assert.equal(globalRegistry.getSingleMetric("portcullis_decisions_total"), undefined);
});
