// OCSP end to end: the real gateway asks Debian's `openssl ocsp` (started by the test) about each device,
// through the OCSP URL in the device's AIA or the responder configured on the trust store: good, revoked,
// unknown, responder down in strict and soft mode (counted in GET /metrics), and a revocation published at
// the responder while a device holds a keep-alive connection, effective once the cached answer expires.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { device, type TestPki, testPki } from "../../src/identity/revocation/testing/pki.ts";
import type { Minted } from "../../src/identity/testing/mint.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { REFUSED_URL } from "../../src/revocation/testing/http.ts";
import {
  type IndexEntry,
  type OpensslResponder,
  startOpensslOcsp,
} from "../../src/revocation/testing/openssl-ocsp.ts";
import { type CurlResult, curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  adminGet,
  type DenyBody,
  keepAliveClient,
  logLinesWith,
  metricValue,
  type OcspFront,
  pollUntil,
  startOcspFront,
  writeBundle,
  writeDevice,
} from "../helpers/identity-e2e.ts";

const HOST = "mtls.auth.local.com";
const FAILED = "TLS certificate failed verification";
const SOFT_FAILURES = "portcullis_revocation_soft_failures_total";
/** How long an answer without nextUpdate (openssl ocsp without -nmin gives none) is cached by strict/soft. */
const MAX_AGE_MS = 2_000;

describe("identity engine: OCSP end to end (openssl ocsp responder)", () => {
  const tmp = tempDir();
  let pki: TestPki;
  let echo: EchoUpstream;
  let front: OcspFront;
  let gw: GatewayProcess;
  const responders: OpensslResponder[] = [];
  const certs: Record<string, Minted> = {};
  let token = "";

  const get = (name: string, path: string): Promise<CurlResult> =>
    curl({ port: gw.ports.app ?? 0, dir: tmp.dir, device: name, path });
  const assertDenied = (r: CurlResult, reason: string) => {
    assert.equal(r.status, 401, `${r.status} ${r.body} ${r.stderr}`);
    assert.deepEqual(r.json<DenyBody>(), { message: FAILED, reason });
  };
  const revokedEntry = (cert: Minted): IndexEntry => ({
    cert,
    revokedAt: new Date(Date.now() - 60_000),
    reason: "keyCompromise",
  });
  /** Starts a fresh `openssl ocsp` with this index and points the front at it. */
  const publish = async (entries: readonly IndexEntry[]): Promise<void> => {
    const dir = join(tmp.dir, `ocsp-${responders.length}`);
    mkdirSync(dir);
    const responder = await startOpensslOcsp({ dir, ca: pki.int, entries });
    responders.push(responder);
    front.setTarget(responder.url);
  };

  before(async () => {
    const demo = await ensureDemoPki(tmp.dir);
    token = readFileSync(demo.adminToken, "utf8").trim();
    pki = await testPki("Fleet OCSP");
    front = await startOcspFront();
    const dead = REFUSED_URL;
    const aia = { ocsp: front.url };
    for (const name of ["good", "revoked", "unlisted", "later", "soft-good"])
      certs[name] = await device(name, pki.int, aia);
    certs.dead = await device("dead", pki.int, { ocsp: dead });
    // No AIA: only the responder configured on the trust store can answer for these.
    for (const name of ["cfg-good", "cfg-revoked"]) certs[name] = await device(name, pki.int);
    for (const [name, cert] of Object.entries(certs)) await writeDevice(tmp.dir, name, cert, [pki.int]);
    const { good, revoked, later, ...rest } = certs;
    assert.ok(good && revoked && later && rest["cfg-good"] && rest["cfg-revoked"] && rest["soft-good"]);
    await publish([
      { cert: good },
      { cert: rest["soft-good"] },
      revokedEntry(revoked),
      { cert: later },
      { cert: rest["cfg-good"] },
      revokedEntry(rest["cfg-revoked"]),
    ]);

    echo = await startEchoUpstream();
    const ca = writeBundle(tmp.dir, "fleet-ocsp-cas.pem", [pki.root, pki.int]);
    const ocsp = { enabled: true, maxAge: MAX_AGE_MS, timeout: "2s" };
    const route = (name: string) => ({
      name,
      hosts: [HOST],
      paths: [`/${name}`],
      service: "echo",
      auth: { trustStores: [`ocsp-${name}`] },
    });
    const config: ConfigInput = {
      listeners: [
        {
          name: "app",
          port: 0,
          clientAuth: "application",
          certificates: [{ cert: "server.crt", key: "server.key" }],
        },
        {
          // Its connections are judged at admission against the soft store alone (no OCSP answer yet).
          name: "soft",
          port: 0,
          clientAuth: "application",
          certificates: [{ cert: "server.crt", key: "server.key" }],
          trustStores: ["ocsp-soft"],
        },
      ],
      trustStores: [
        { name: "ocsp-strict", ca, revocation: { mode: "strict", ocsp } },
        { name: "ocsp-soft", ca, revocation: { mode: "soft", ocsp } },
        {
          name: "ocsp-config",
          ca,
          revocation: { mode: "strict", ocsp: { ...ocsp, responder: front.url } },
        },
      ],
      services: [{ name: "echo", targets: [echo.url] }],
      routes: [route("strict"), route("soft"), route("config")],
      admin: { port: 0, tokenFile: "admin.token" },
    };
    gw = await startGateway(tmp.dir, config);
  });

  after(async () => {
    const code = await gw?.stop();
    await Promise.all(responders.map((r) => r.close()));
    await front?.close();
    await echo?.close();
    tmp.cleanup();
    assert.equal(code, 0, "the gateway stops gracefully");
  });

  test("responder from the AIA, strict: good 200, revoked 401 certificate_revoked, unknown 401 revocation_unknown", async () => {
    const before = front.requests();
    const good = await get("good", "/strict/echo");
    assert.equal(good.status, 200, good.body);
    assert.equal(good.json<{ headers: Record<string, string> }>().headers["x-device-id"], "good");
    assertDenied(await get("revoked", "/strict/echo"), "certificate_revoked");
    assertDenied(await get("unlisted", "/strict/echo"), "revocation_unknown");
    assert.ok(front.requests() >= before + 3, "the gateway asked the responder named in each AIA");
  });

  test("soft mode, healthy responder answering good: 200, and no soft failure is logged or counted", async () => {
    assert.ok(gw.adminPort, "the admin listener is bound");
    const count = async () =>
      metricValue((await adminGet(gw.adminPort ?? 0, "/metrics", token)).text, SOFT_FAILURES, {
        store: "ocsp-soft",
      }) ?? 0;
    const soft = () => logLinesWith(gw.output(), "revocation status unknown, allowed (soft mode)").length;
    const [countBefore, linesBefore, asked] = [await count(), soft(), front.requests()];
    // A device the gateway has never asked about, on a listener whose admission judges it by the soft store.
    const r = await curl({ port: gw.ports.soft ?? 0, dir: tmp.dir, device: "soft-good", path: "/soft/echo" });
    assert.equal(r.status, 200, `${r.status} ${r.body} ${r.stderr}`);
    assert.equal(r.json<{ headers: Record<string, string> }>().headers["x-device-id"], "soft-good");
    assert.ok(front.requests() > asked, "the responder was asked");
    assert.equal(await count(), countBefore, `${SOFT_FAILURES}{store="ocsp-soft"} unchanged`);
    assert.equal(soft(), linesBefore, `no soft-mode line:\n${gw.output().slice(-2000)}`);
  });

  test("responder from the trust store's config (no AIA in the certificates): good 200, revoked 401", async () => {
    const good = await get("cfg-good", "/config/echo");
    assert.equal(good.status, 200, good.body);
    assertDenied(await get("cfg-revoked", "/config/echo"), "certificate_revoked");
  });

  test("responder down: strict 401 revocation_unknown; soft 200, logged and counted in /metrics", async () => {
    assert.ok(gw.adminPort, "the admin listener is bound");
    const metricsBefore = await adminGet(gw.adminPort, "/metrics", token);
    assert.equal(metricsBefore.status, 200, metricsBefore.text);
    const countBefore = metricValue(metricsBefore.text, SOFT_FAILURES, { store: "ocsp-soft" }) ?? 0;

    assertDenied(await get("dead", "/strict/echo"), "revocation_unknown");
    const soft = await get("dead", "/soft/echo");
    assert.equal(soft.status, 200, soft.body);
    assert.equal(soft.json<{ headers: Record<string, string> }>().headers["x-device-id"], "dead");
    // Soft mode still denies what the responder says is revoked.
    assertDenied(await get("revoked", "/soft/echo"), "certificate_revoked");

    const metricsAfter = await adminGet(gw.adminPort, "/metrics", token);
    const countAfter = metricValue(metricsAfter.text, SOFT_FAILURES, { store: "ocsp-soft" });
    assert.ok(
      countAfter !== undefined && countAfter > countBefore,
      `${SOFT_FAILURES}{store="ocsp-soft"} went from ${countBefore} to ${countAfter}`,
    );
    const logged = logLinesWith(gw.output(), "revocation status unknown, allowed (soft mode)");
    assert.ok(
      logged.some((l) => l.store === "ocsp-soft"),
      `a soft-mode allowance is logged for store ocsp-soft:\n${gw.output().slice(-2000)}`,
    );
  });

  test("a revocation published at the responder while a keep-alive connection is open denies a later request on it", async () => {
    const { good, revoked, later } = certs;
    assert.ok(good && revoked && later);
    const client = keepAliveClient({
      port: gw.ports.app ?? 0,
      host: HOST,
      ca: readFileSync(join(tmp.dir, "ca-chain.crt"), "utf8"),
      certPem: readFileSync(join(tmp.dir, "later.crt"), "utf8"),
      keyPem: readFileSync(join(tmp.dir, "later.key"), "utf8"),
    });
    try {
      const first = await client.get("/strict/echo");
      assert.equal(first.status, 200, JSON.stringify(first.body));
      // The responder is restarted with an index that lists the device as revoked.
      await publish([
        { cert: good },
        { cert: certs["soft-good"] as Minted },
        revokedEntry(revoked),
        revokedEntry(later),
      ]);
      const publishedAt = Date.now();
      const last = await pollUntil(
        () => client.get("/strict/echo"),
        (r) => r.status !== 200,
        MAX_AGE_MS + 10_000,
      );
      assert.equal(last.status, 401, `still ${last.status} ${Date.now() - publishedAt} ms after publishing`);
      assert.deepEqual(last.body, { message: FAILED, reason: "certificate_revoked" });
      assert.equal(client.connects(), 1, "every request went over the same keep-alive connection");
      // Other devices are not affected.
      assert.equal((await get("good", "/strict/echo")).status, 200);
    } finally {
      await client.close();
    }
  });
});
