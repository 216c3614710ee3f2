// Config reload: on a change of the config file (or a file it references) and on SIGHUP the new config is
// swapped in atomically; a bad one is rejected and the old one keeps serving; live connections survive.
import assert from "node:assert/strict";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { keepAliveClient } from "../helpers/keep-alive.ts";

const HOST = "mtls.auth.local.com";

function configWith(upstream: string, opts: { publicEcho: boolean }): ConfigInput {
  return {
    listeners: [
      {
        name: "main",
        port: 0,
        clientAuth: "application",
        certificates: [{ cert: "server.crt", key: "server.key" }],
        trustStores: ["devices"],
      },
    ],
    trustStores: [{ name: "devices", ca: ["trust.crt"] }],
    services: [{ name: "echo", targets: [upstream] }],
    routes: [
      opts.publicEcho
        ? { name: "echo", hosts: [HOST], paths: ["/echo"], service: "echo", public: true }
        : {
            name: "echo",
            hosts: [HOST],
            paths: ["/echo"],
            service: "echo",
            auth: { trustStores: ["devices"] },
          },
    ],
  };
}

/** Waits until the gateway's output holds `count` occurrences of `text`. */
async function waitForLog(
  gw: GatewayProcess,
  text: string,
  count: number,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (gw.output().split(text).length - 1 < count) {
    if (Date.now() > deadline) throw new Error(`no ${count}× "${text}" in:\n${gw.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("config reload", () => {
  const tmp = tempDir();
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let port = 0;
  const file = () => join(tmp.dir, "portcullis.yaml");

  before(async () => {
    await ensureDemoPki(tmp.dir);
    copyFileSync(join(tmp.dir, "ca-chain.crt"), join(tmp.dir, "trust.crt"));
    echo = await startEchoUpstream();
    gw = await startGateway(tmp.dir, configWith(echo.url, { publicEcho: false }));
    port = gw.ports.main ?? 0;
  });
  after(async () => {
    await gw.stop();
    await echo.close();
    tmp.cleanup();
  });

  test("a changed config file is swapped in: the route becomes public", async () => {
    assert.equal((await curl({ port, dir: tmp.dir })).status, 401);
    writeFileSync(file(), stringify(configWith(echo.url, { publicEcho: true })));
    await waitForLog(gw, '"config reloaded"', 1);
    assert.equal((await curl({ port, dir: tmp.dir })).status, 200);
  });

  test("a bad config is rejected with its error and the old one keeps serving", async () => {
    writeFileSync(file(), "listeners: []\nbogus: 1\n");
    await waitForLog(gw, '"reload rejected"', 1);
    assert.match(gw.output(), /bogus/);
    assert.equal((await curl({ port, dir: tmp.dir })).status, 200);
  });

  test("SIGHUP reloads; a trust store change applies to new connections and keeps live ones open", async () => {
    writeFileSync(file(), stringify(configWith(echo.url, { publicEcho: false })));
    await waitForLog(gw, '"config reloaded"', 2);
    // A keep-alive connection made under the old trust.
    const client = keepAliveClient(port, tmp.dir, "device");
    try {
      assert.equal((await client.get()).status, 200);
      // Trust only the unrelated CA from now on, then SIGHUP.
      copyFileSync(join(tmp.dir, "wrong-ca.crt"), join(tmp.dir, "trust.crt"));
      gw.child.kill("SIGHUP");
      await waitForLog(gw, '"config reloaded"', 3);
      const fresh = await curl({ port, dir: tmp.dir, device: "device" });
      assert.equal(fresh.status, 401, fresh.body);
      assert.equal(fresh.json<{ reason: string }>().reason, "untrusted_issuer");
      const wrong = await curl({ port, dir: tmp.dir, device: "wrong-device" });
      assert.equal(wrong.status, 200, wrong.body);
      // The live connection was not dropped; its next request is judged under the new trust.
      const again = await client.get();
      assert.equal(again.status, 401);
      assert.equal(again.body.reason, "untrusted_issuer");
      assert.equal(client.connects, 1, "the keep-alive connection survived the reload");
    } finally {
      await client.close();
    }
  });

  test("a change of a referenced file (the trust store's CA file) reloads without a signal", async () => {
    const before = gw.output().split('"config reloaded"').length - 1;
    copyFileSync(join(tmp.dir, "ca-chain.crt"), join(tmp.dir, "trust.crt"));
    await waitForLog(gw, '"config reloaded"', before + 1);
    const r = await curl({ port, dir: tmp.dir, device: "device" });
    assert.equal(r.status, 200, r.body);
  });

  test("a change that needs a restart (the device store) is rejected, naming why; the old config keeps serving", async () => {
    const before = gw.output().split('"reload rejected"').length - 1;
    writeFileSync(
      file(),
      stringify({ ...configWith(echo.url, { publicEcho: false }), store: { url: "sqlite:other.db" } }),
    );
    await waitForLog(gw, '"reload rejected"', before + 1);
    assert.match(gw.output(), /device store settings changed: restart to apply/);
    assert.equal((await curl({ port, dir: tmp.dir, device: "device" })).status, 200);
  });
});
