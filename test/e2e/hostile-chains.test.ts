// End-to-end proof that hostile client chains cannot stall the gateway (issue 7, point 1).
// While attacker loops present hostile chains (60 huge-exponent RSA candidate issuers, 60 same-named CAs,
// and 9-certificate variants under every limit) on fresh TLS connections, a registered device keeps
// getting 200s within a stated latency bound, and every hostile connection is refused (application mode:
// 401 with a reason; handshake mode without CA names: closed before any HTTP byte), the chains over the
// default limits with chain_too_complex.
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { after, before, describe, type TestContext, test } from "node:test";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { x509 } from "../../src/identity/x509.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  controlKit,
  DEFAULT_LIMITS,
  type DeviceCredentials,
  type DeviceSample,
  demoDevice,
  demoIssuer,
  EXPONENT_BITS,
  type HostileKit,
  type HostileOutcome,
  hostileGatewayConfig,
  hostileKit,
  latencyStats,
  MODULUS_BITS,
  metricSamples,
  parseAllWithNode,
  presentedPem,
  sampleDevice,
  showStats,
  startHostileLoad,
  tally,
} from "../helpers/hostile-chains.ts";
import { AdminApi, registryPki } from "../helpers/registry.ts";

/** Issue 7's aim for the registered device's worst latency while hostile chains are presented. */
const AIM_MS = 250;
/**
 * The bound is the aim, or REFERENCE_FACTOR × the device's worst latency under a reference load (the same
 * attacker loops presenting an ordinary untrusted leaf, measured just before and just after the hostile
 * phase, so that a noisy spell around it counts) when this VM is noisier than that (the e2e suite runs two
 * files at once on 2 cores, other work may share them), but never above MAX_BOUND_MS. The regression this
 * test exists for blocked the event loop ~0.35 s (here; ~1 s in the report) per 60-certificate hostile
 * connection, and with several of them queued the device waited ~1 s or more: a bound under that still
 * catches it. The factor is generous because this is a wall-clock figure on a shared 2-core machine (a
 * clean CI run saw 451 ms against a reference worst of 90 ms, with nothing stalled); the speed itself is
 * bench/hostile.bench.ts's job.
 */
const REFERENCE_FACTOR = 8;
const MAX_BOUND_MS = 900;
/** Concurrent attacker loops: about the report's six connections. */
const HOSTILE_LOOPS = 5;
/**
 * Each loop starts a fresh connection at most this often: 20 hostile handshakes a second in all, several
 * times what the old engine could absorb (it took ~0.1 s of CPU per connection on average over the
 * variants, 0.35 s for the 60-certificate one), while a bounded engine spends a few ms on each. A handshake
 * flood as such is the job of connection limits, not of this test.
 */
const HOSTILE_INTERVAL_MS = 250;
/** A device's pace, per connection kind (keep-alive, fresh): often enough to land in every stall. */
const DEVICE_INTERVAL_MS = 50;
const REFERENCE_MS = 1500;
const ATTACK_MS = 3500;
/** Reasons a hostile chain may be refused with (which one depends on the check that stops it first). */
const HOSTILE_REASONS: ReadonlySet<string> = new Set([
  "chain_too_complex",
  "weak_algorithm",
  "untrusted_issuer",
  "bad_signature",
  "bad_certificate",
]);
const FAILED = "TLS certificate failed verification";

describe("hostile chains cannot stall the gateway (issue 7)", () => {
  const tmp = tempDir("portcullis-hostile-");
  let kit: HostileKit;
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let admin: AdminApi;
  let device: DeviceCredentials;

  const portOf = (listener: string): number => {
    const port = gw.ports[listener];
    assert.ok(port, `listener ${listener} is bound`);
    return port;
  };

  before(async () => {
    const pki = await registryPki(tmp.dir);
    kit = hostileKit(demoIssuer(tmp.dir));
    echo = await startEchoUpstream();
    gw = await startGateway(tmp.dir, hostileGatewayConfig(echo.url));
    admin = new AdminApi(gw.adminPort, pki.token);
    await admin.register("device-001", pki.existing("device"));
    device = demoDevice(tmp.dir);
  });

  after(async () => {
    await gw?.stop();
    await echo?.close();
    tmp.cleanup();
  });

  test("the hostile material is what the report describes, and OpenSSL parses all of it", () => {
    const byName = new Map(kit.variants.map((v) => [v.name, v]));
    const huge = byName.get("huge-exponent-60");
    assert.ok(
      huge && byName.get("same-name-60") && byName.get("huge-exponent-9") && byName.get("same-name-9"),
    );
    assert.equal(huge.count, 61);
    assert.ok(huge.overLimits);
    for (const v of kit.variants) {
      const certs = parseAllWithNode(v.chainPem);
      assert.equal(certs.length, v.count - 1, v.name);
      for (const cert of certs) {
        // Named like the leaf's issuer and self-issued, so that Node's peer-chain walk keeps every one.
        assert.equal(cert.subject, cert.issuer, v.name);
        assert.equal(cert.ca, true, v.name);
        const jwk = cert.publicKey.export({ format: "jwk" });
        if (v.name.startsWith("huge-exponent")) {
          assert.equal(Buffer.from(jwk.n ?? "", "base64url").length * 8, MODULUS_BITS);
          const e = Buffer.from(jwk.e ?? "", "base64url");
          assert.ok(e.length * 8 >= EXPONENT_BITS - 7, `exponent of ${e.length * 8} bits`);
        } else assert.equal(jwk.crv, "P-256");
      }
    }
    // The leaf claims the real CA's key identifier, and so does every hostile CA: key ids prune none of them.
    const leaf = new x509.X509Certificate(presentedPem(kit, huge, createPrivateKey(kit.keyPem)));
    const aki = leaf.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
    assert.equal(aki, kit.issuer.keyId.toString("hex"));
    assert.equal(leaf.subject, "CN=attacker");
    for (const v of kit.variants) {
      for (const cert of parseAllWithNode(v.chainPem)) {
        const ski = new x509.X509Certificate(cert.raw).getExtension(x509.SubjectKeyIdentifierExtension);
        assert.equal(ski?.keyId, aki, v.name);
      }
    }
    // The variants under every default limit must be stopped by the key policy or the budgets instead.
    for (const name of ["huge-exponent-9", "same-name-9"]) {
      const v = byName.get(name);
      assert.ok(v && v.count <= DEFAULT_LIMITS.maxCertificates && v.bytes <= DEFAULT_LIMITS.maxBytes, name);
      assert.equal(v.overLimits, false);
    }
  });

  /** The device sampled while `kit`'s loops run on `port`; what the loops got. */
  async function deviceUnder(
    port: number,
    loopKit: HostileKit,
    durationMs: number,
  ): Promise<{ samples: DeviceSample[]; outcomes: HostileOutcome[] }> {
    const load = await startHostileLoad({
      port,
      loops: HOSTILE_LOOPS,
      kit: loopKit,
      intervalMs: HOSTILE_INTERVAL_MS,
    });
    let samples: DeviceSample[] = [];
    let outcomes: HostileOutcome[] = [];
    try {
      samples = await sampleDevice({ port, device, durationMs, intervalMs: DEVICE_INTERVAL_MS });
    } finally {
      // Stopped even when sampling failed, so that the worker never outlives the test.
      outcomes = await load.stop();
    }
    return { samples, outcomes };
  }

  /**
   * The device under the reference load, under the hostile loops, and under the reference load again;
   * prints every figure, then asserts what holds in both modes (200s, the attack ran, the latency bound).
   * Returns the hostile outcomes.
   */
  async function underAttack(t: TestContext, listener: string): Promise<HostileOutcome[]> {
    const port = portOf(listener);
    // Warm-up (JIT, registry cache, first handshakes), not measured.
    await sampleDevice({ port, device, durationMs: 300, intervalMs: DEVICE_INTERVAL_MS });
    const before = await deviceUnder(port, controlKit(kit), REFERENCE_MS);
    const attacked = await deviceUnder(port, kit, ATTACK_MS);
    const afterwards = await deviceUnder(port, controlKit(kit), REFERENCE_MS);
    const outcomes = attacked.outcomes;
    const reference = { samples: [...before.samples, ...afterwards.samples] };

    const ref = latencyStats(reference.samples.map((s) => s.ms));
    const bound = Math.min(MAX_BOUND_MS, Math.max(AIM_MS, REFERENCE_FACTOR * ref.max));
    const worst = latencyStats(attacked.samples.map((s) => s.ms));
    const loops = `${HOSTILE_LOOPS} loops, a connection each per ${HOSTILE_INTERVAL_MS} ms`;
    t.diagnostic(
      `${listener}: device under reference load (${loops}, leaf alone), before and after: ${showStats(ref)}`,
    );
    for (const via of ["keep-alive", "fresh"] as const) {
      const stats = latencyStats(attacked.samples.filter((s) => s.via === via).map((s) => s.ms));
      t.diagnostic(`${listener}: device under hostile chains (${loops}), ${via}: ${showStats(stats)}`);
    }
    t.diagnostic(
      `${listener}: device worst ${worst.max.toFixed(1)} ms, bound ${bound.toFixed(0)} ms (aim ${AIM_MS} ms; ${REFERENCE_FACTOR} × reference worst ${ref.max.toFixed(1)} ms; cap ${MAX_BOUND_MS} ms)`,
    );
    for (const name of new Set(outcomes.map((o) => o.variant))) {
      const stats = latencyStats(outcomes.filter((o) => o.variant === name).map((o) => o.ms));
      t.diagnostic(`${listener}: hostile ${name}, time per connection: ${showStats(stats)}`);
    }
    for (const [what, n] of tally(outcomes)) t.diagnostic(`${listener}: hostile ${what}: ${n}`);

    const failed = [...reference.samples, ...attacked.samples].filter((s) => s.status !== 200);
    assert.equal(
      failed.length,
      0,
      `device requests that did not get 200: ${JSON.stringify(failed.slice(0, 5))}`,
    );
    // The attack really ran: every loop got through at least one connection, every variant was presented.
    assert.ok(outcomes.length >= HOSTILE_LOOPS, `only ${outcomes.length} hostile connections completed`);
    for (const v of kit.variants) {
      assert.ok(
        outcomes.some((o) => o.variant === v.name),
        `variant ${v.name} was never presented`,
      );
    }
    assert.ok(
      worst.max < bound,
      `the registered device's worst latency was ${worst.max.toFixed(0)} ms under hostile chains, bound ${bound.toFixed(0)} ms (${showStats(worst)})`,
    );
    return outcomes;
  }

  test("application mode: the device keeps its latency; hostile chains get 401 with a reason", async (t) => {
    const outcomes = await underAttack(t, "app");
    for (const o of outcomes) {
      assert.equal(o.status, 401, `${o.variant}: ${o.status} ${o.body ?? o.error}`);
      assert.ok(HOSTILE_REASONS.has(o.reason ?? ""), `${o.variant}: reason ${o.reason}`);
      assert.deepEqual(JSON.parse(o.body ?? "{}"), { message: FAILED, reason: o.reason });
    }
    // A chain over the default limits is refused for that, before any work on it.
    for (const v of kit.variants.filter((x) => x.overLimits)) {
      const reasons = new Set(outcomes.filter((o) => o.variant === v.name).map((o) => o.reason));
      assert.deepEqual(
        [...reasons],
        ["chain_too_complex"],
        `${v.name} (${v.count} certificates, ${v.bytes} bytes)`,
      );
    }
    // The gateway's own account agrees: denials on /echo, counted by reason.
    const metrics = await admin.call("GET", "/metrics");
    const denials = metricSamples(metrics.text, "portcullis_decisions_total").filter(
      (s) => s.labels.result === "deny" && s.labels.route === "echo",
    );
    for (const s of denials)
      t.diagnostic(`app: portcullis_decisions_total{reason="${s.labels.reason}"} ${s.value}`);
    const counted = (reason: string) => denials.find((s) => s.labels.reason === reason)?.value ?? 0;
    assert.ok(
      counted("chain_too_complex") >= outcomes.filter((o) => o.reason === "chain_too_complex").length,
    );
    for (const s of denials)
      assert.ok(HOSTILE_REASONS.has(s.labels.reason ?? ""), `denied for ${s.labels.reason}`);
    // Which limit stopped them is counted, and the event-loop delay an operator watches is exposed.
    const hits = metricSamples(metrics.text, "portcullis_chain_limit_hits_total");
    for (const s of hits)
      t.diagnostic(`app: portcullis_chain_limit_hits_total{limit="${s.labels.limit}"} ${s.value}`);
    assert.ok(
      (hits.find((s) => s.labels.limit === "maxCertificates")?.value ?? 0) > 0,
      "maxCertificates hits",
    );
    assert.equal(metricSamples(metrics.text, "nodejs_eventloop_lag_p99_seconds").length, 1);
    assert.equal(metricSamples(metrics.text, "nodejs_eventloop_lag_max_seconds").length, 1);
  });

  test("handshake mode without CA names: hostile connections closed before any HTTP byte; the device keeps its latency", async (t) => {
    const outcomes = await underAttack(t, "hs");
    for (const o of outcomes) {
      assert.equal(o.status, undefined, `${o.variant} got an HTTP answer: ${o.body}`);
      assert.equal(o.bytes, 0, `${o.variant}: ${o.bytes} bytes read after the handshake`);
    }
    const metrics = await admin.call("GET", "/metrics");
    const failures = metricSamples(metrics.text, "portcullis_handshake_failures_total").filter(
      (s) => s.labels.listener === "hs",
    );
    for (const s of failures)
      t.diagnostic(`hs: portcullis_handshake_failures_total{reason="${s.labels.reason}"} ${s.value}`);
    const total = failures.reduce((sum, s) => sum + s.value, 0);
    assert.ok(
      total >= outcomes.length,
      `${total} handshake refusals counted for ${outcomes.length} hostile connections`,
    );
    for (const s of failures)
      assert.ok(HOSTILE_REASONS.has(s.labels.reason ?? ""), `refused for ${s.labels.reason}`);
    assert.ok(
      (failures.find((s) => s.labels.reason === "chain_too_complex")?.value ?? 0) > 0,
      "no hostile connection was refused with chain_too_complex",
    );
  });
});
