// Operator probes and reload visibility: GET /healthz and /readyz answer without the admin token (Kubernetes'
// conventions), unless admin.publicHealth is false; a rejected reload shows in GET /status (lastReload) and
// in portcullis_config_reload_total{result}. (/readyz failing while the store is down: registry-outage.test.ts.)
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";

function config(upstream: string, publicHealth?: boolean): ConfigInput {
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
    trustStores: [{ name: "devices", ca: ["ca-chain.crt"] }],
    services: [{ name: "echo", targets: [upstream] }],
    routes: [{ name: "echo", hosts: ["localhost"], paths: ["/echo"], service: "echo", public: true }],
    admin: { port: 0, tokenFile: "admin.token", ...(publicHealth === undefined ? {} : { publicHealth }) },
  };
}

async function waitFor(what: string, predicate: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("health probes and reload status", () => {
  const tmp = tempDir();
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let token = "";
  const admin = (path: string, auth = true) =>
    fetch(`http://127.0.0.1:${gw.adminPort}${path}`, {
      headers: auth ? { authorization: `Bearer ${token}` } : {},
    });
  const reloadMetric = async (result: string) => {
    const text = await (await admin("/metrics")).text();
    return Number(
      new RegExp(`^portcullis_config_reload_total\\{result="${result}"\\} (\\d+)$`, "m").exec(text)?.[1],
    );
  };

  before(async () => {
    await ensureDemoPki(tmp.dir);
    token = readFileSync(join(tmp.dir, "admin.token"), "utf8").trim();
    echo = await startEchoUpstream();
    gw = await startGateway(tmp.dir, config(echo.url));
  });
  after(async () => {
    await gw.stop();
    await echo.close();
    tmp.cleanup();
  });

  test("/healthz and /readyz answer 200 ok without the token; /status still needs it", async () => {
    const healthz = await admin("/healthz", false);
    assert.equal(healthz.status, 200);
    assert.equal(await healthz.text(), "ok\n");
    const readyz = await admin("/readyz", false);
    assert.equal(readyz.status, 200);
    assert.equal(await readyz.text(), "ok\n");
    const verbose = await (await admin("/readyz?verbose", false)).text();
    assert.equal(verbose, "[+]config ok\n[+]listeners ok\n[+]store ok\nok\n");
    assert.equal((await admin("/status", false)).status, 401);
  });

  test("a rejected reload shows in /status and the metric; the next good one clears it", async () => {
    assert.equal(await reloadMetric("error"), 0);
    const before = (await (await admin("/status")).json()) as { lastReload?: unknown };
    assert.equal(before.lastReload, undefined, "no reload yet");

    const file = join(tmp.dir, "portcullis.yaml");
    writeFileSync(file, stringify({ ...config(echo.url), routes: [{ name: "echo", hosts: ["localhost"] }] }));
    gw.child.kill("SIGHUP");
    await waitFor("a rejected reload counted", async () => (await reloadMetric("error")) === 1);
    const status = (await (await admin("/status")).json()) as {
      status: string;
      lastReload: { result: string; at: string; error: string };
    };
    assert.equal(status.lastReload.result, "error");
    assert.match(status.lastReload.error, /routes/);
    assert.ok(!Number.isNaN(Date.parse(status.lastReload.at)));
    assert.equal((await admin("/readyz", false)).status, 200, "the old config keeps serving: still ready");

    writeFileSync(file, stringify(config(echo.url)));
    gw.child.kill("SIGHUP");
    await waitFor("a good reload counted", async () => (await reloadMetric("ok")) >= 1);
    const after = (await (await admin("/status")).json()) as { lastReload: { result: string } };
    assert.equal(after.lastReload.result, "ok");
  });
});

describe("admin.publicHealth: false", () => {
  const tmp = tempDir();
  let echo: EchoUpstream;
  let gw: GatewayProcess;

  before(async () => {
    await ensureDemoPki(tmp.dir);
    echo = await startEchoUpstream();
    gw = await startGateway(tmp.dir, config(echo.url, false));
  });
  after(async () => {
    await gw.stop();
    await echo.close();
    tmp.cleanup();
  });

  test("the probes need the token too", async () => {
    const token = readFileSync(join(tmp.dir, "admin.token"), "utf8").trim();
    const url = `http://127.0.0.1:${gw.adminPort}/readyz`;
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status, 200);
  });
});
