// Client certificates are never verified against the system roots (docs/mtls-modes.md, "A broken CA or CRL
// file silently weakens trust"). The gateway runs with NODE_EXTRA_CA_CERTS naming the unrelated CA that
// issued wrong-device, so that Node's default root store trusts it; every listener still refuses it.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";

const DIAGNOSTICS = "/_portcullis/diagnostics";

describe("client certificates are never verified against the system roots", () => {
  const tmp = tempDir();
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  const get = (listener: string, device: string, path = "/echo") =>
    curl({ port: gw.ports[listener] ?? 0, dir: tmp.dir, device, path });

  before(async () => {
    await ensureDemoPki(tmp.dir);
    echo = await startEchoUpstream();
    const base = { port: 0, certificates: [{ cert: "server.crt", key: "server.key" }] };
    const config: ConfigInput = {
      listeners: [
        { ...base, name: "app", clientAuth: "application", diagnostics: { path: DIAGNOSTICS } },
        // Without CA names OpenSSL is given no CA list: it verifies against Node's default roots.
        {
          ...base,
          name: "app-nonames",
          clientAuth: "application",
          sendCaNames: false,
          diagnostics: { path: DIAGNOSTICS },
        },
        { ...base, name: "hs", clientAuth: "handshake" },
        { ...base, name: "hs-nonames", clientAuth: "handshake", sendCaNames: false },
      ],
      trustStores: [{ name: "devices", ca: ["ca-chain.crt"] }],
      services: [{ name: "echo", targets: [echo.url] }],
      routes: [{ name: "echo", paths: ["/"], service: "echo", auth: { trustStores: ["devices"] } }],
      log: { level: "info", denials: { perInterval: 100_000 } },
    };
    // The child inherits this environment: its default root store trusts the unrelated CA.
    process.env.NODE_EXTRA_CA_CERTS = join(tmp.dir, "wrong-ca.crt");
    try {
      gw = await startGateway(tmp.dir, config);
    } finally {
      delete process.env.NODE_EXTRA_CA_CERTS;
    }
  });
  after(async () => {
    await gw?.stop();
    await echo?.close();
    tmp.cleanup();
  });

  test("the system roots do trust the unrelated CA in that process (OpenSSL without CA names accepts it)", async () => {
    // The control: without it, the refusals below could come from a root store that never trusted it.
    const r = await get("app-nonames", "wrong-device", DIAGNOSTICS);
    assert.equal(r.status, 200, r.body);
    const report = r.json<{
      connection: { openssl: { authorized: boolean } };
      decisions: { allow: boolean; reason?: string }[];
    }>();
    assert.equal(report.connection.openssl.authorized, true, r.body);
    assert.deepEqual(
      report.decisions.map((d) => [d.allow, d.reason]),
      [[false, "untrusted_issuer"]],
    );
  });

  test("application mode: 401 untrusted_issuer, with or without CA names; the demo device passes", async () => {
    for (const listener of ["app", "app-nonames"]) {
      const wrong = await get(listener, "wrong-device");
      assert.equal(wrong.status, 401, `${listener}: ${wrong.body}`);
      assert.equal(wrong.json<{ reason: string }>().reason, "untrusted_issuer", listener);
      assert.equal((await get(listener, "device")).status, 200, listener);
    }
  });

  test("handshake mode: no HTTP answer, with or without CA names; the demo device passes", async () => {
    for (const listener of ["hs", "hs-nonames"]) {
      const wrong = await get(listener, "wrong-device");
      assert.equal(wrong.status, 0, `${listener}: ${wrong.body}`);
      assert.match(wrong.stderr, /^curl: \(\d+\) /, listener);
      assert.equal((await get(listener, "device")).status, 200, listener);
    }
  });
});
