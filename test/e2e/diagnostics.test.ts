// The installer diagnostics endpoint: off unless configured; when on, it tells a device what the gateway
// saw on its connection and how the policies judge it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";

const HOST = "mtls.auth.local.com";
const PATH = "/_portcullis/diagnostics";

interface Report {
  connection: { sni: string | null; tlsProtocol: string };
  certificate: { sent: boolean; chain: { subject: string; fingerprint: string }[] };
  decisions: { policy: string; allow: boolean; reason?: string; detail?: string; trustStore?: string }[];
  validity: { secondsUntilNotAfter?: number } | null;
}

describe("diagnostics endpoint", () => {
  const tmp = tempDir();
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  const listener = (name: string, hideReason: boolean, diagnostics: boolean) => ({
    name,
    port: 0,
    clientAuth: "application" as const,
    hideReason,
    certificates: [{ cert: "server.crt", key: "server.key" }],
    ...(diagnostics ? { diagnostics: { path: PATH } } : {}),
  });

  before(async () => {
    await ensureDemoPki(tmp.dir);
    echo = await startEchoUpstream();
    gw = await startGateway(tmp.dir, {
      listeners: [listener("on", false, true), listener("hidden", true, true), listener("off", false, false)],
      trustStores: [{ name: "devices", ca: ["ca-chain.crt"] }],
      services: [{ name: "echo", targets: [echo.url] }],
      routes: [
        { name: "echo", hosts: [HOST], paths: ["/"], service: "echo", auth: { trustStores: ["devices"] } },
      ],
    });
  });
  after(async () => {
    await gw.stop();
    await echo.close();
    tmp.cleanup();
  });

  test("a device sees its SNI, its chain and the verdict of the listener and route policies", async () => {
    const r = await curl({
      port: gw.ports.on ?? 0,
      dir: tmp.dir,
      device: "device",
      path: `${PATH}?path=/echo`,
    });
    assert.equal(r.status, 200, r.body);
    const report = r.json<Report>();
    assert.equal(report.connection.sni, HOST);
    assert.equal(report.certificate.sent, true);
    assert.equal(report.certificate.chain[0]?.subject, "CN=device-001");
    assert.equal(report.decisions.length, 2);
    assert.ok(report.decisions.every((d) => d.allow));
  });

  test("an expired device is told why, even though the route would refuse it", async () => {
    const r = await curl({ port: gw.ports.on ?? 0, dir: tmp.dir, device: "expired-device", path: PATH });
    assert.equal(r.status, 200, r.body);
    const [decision] = r.json<Report>().decisions;
    assert.equal(decision?.allow, false);
    assert.equal(decision?.reason, "certificate_expired");
    assert.match(decision?.detail ?? "", /expired/);
  });

  test("a listener that hides reasons leaves reason and detail out", async () => {
    const r = await curl({
      port: gw.ports.hidden ?? 0,
      dir: tmp.dir,
      device: "expired-device",
      path: `${PATH}?path=/echo`,
    });
    assert.equal(r.status, 200, r.body);
    assert.doesNotMatch(r.body, /"reason"|"detail"/);
    // Nor anything else that says why: OpenSSL's error, the validity against the server clock, a store.
    assert.doesNotMatch(r.body, /CERT_HAS_EXPIRED|"expired"|"trustStore"/);
    const report = r.json<Report & { connection: { openssl: { error: string | null } } }>();
    assert.equal(report.connection.openssl.error, null);
    assert.equal(report.validity, null);
    assert.deepEqual(
      report.decisions.map((d) => Object.keys(d).sort()),
      [
        ["allow", "policy"],
        ["allow", "policy"],
      ],
    );
    assert.ok(report.decisions.every((d) => !d.allow));
  });

  test("no certificate: OpenSSL's error is not shown (it judged nothing), hidden or not", async () => {
    for (const port of [gw.ports.on, gw.ports.hidden]) {
      const r = await curl({ port: port ?? 0, dir: tmp.dir, path: PATH });
      assert.equal(r.status, 200, r.body);
      const report = r.json<Report & { connection: { openssl: { error: string | null } } }>();
      assert.equal(report.certificate.sent, false);
      assert.equal(report.connection.openssl.error, null, r.body);
    }
  });

  test("hideReason: a refused device gets Kong's message alone; the decision log keeps the reason", async () => {
    const r = await curl({
      port: gw.ports.hidden ?? 0,
      dir: tmp.dir,
      device: "expired-device",
      path: "/echo",
    });
    assert.equal(r.status, 401, r.body);
    assert.deepEqual(r.json(), { message: "TLS certificate failed verification" });
    const shown = await curl({
      port: gw.ports.on ?? 0,
      dir: tmp.dir,
      device: "expired-device",
      path: "/echo",
    });
    assert.equal(
      shown.json<{ reason?: string }>().reason,
      "certificate_expired",
      "a listener without it tells",
    );
    assert.match(
      gw.output(),
      /"listener":"hidden"[^\n]*"reason":"certificate_expired"|"reason":"certificate_expired"[^\n]*"listener":"hidden"/,
    );
  });

  test("off unless configured: the path is proxied like any other", async () => {
    const r = await curl({ port: gw.ports.off ?? 0, dir: tmp.dir, device: "device", path: PATH });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json<{ path: string }>().path, PATH, "the echo upstream answered");
  });
});
