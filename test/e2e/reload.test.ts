// Config reload: on a change of the config file (or a file it references) and on SIGHUP the new config is
// swapped in atomically; a bad one is rejected and the old one keeps serving; live connections survive.
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { keepAliveClient } from "../helpers/keep-alive.ts";
import { lastSession, tlsHttp } from "../helpers/tls-http.ts";

const HOST = "mtls.auth.local.com";

function configWith(upstream: string, opts: { publicEcho: boolean; ca?: string }): ConfigInput {
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
    trustStores: [{ name: "devices", ca: [opts.ca ?? "trust.crt"] }],
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

/** A whole-second mtime in the past: a file given it again after a rewrite looks unchanged to stat. */
const STILL = Math.floor(Date.now() / 1000) - 60;

/**
 * Writes `text` padded to `size` bytes (a YAML comment) with mtime STILL: two such writes of one file
 * keep its size, inode and mtime, so the config watcher's stat polling cannot tell them apart.
 */
function writeStill(path: string, text: string, size: number): void {
  const pad = size - Buffer.byteLength(text) - 2;
  assert.ok(pad >= 0, `the config fits in ${size} bytes`);
  writeFileSync(path, `${text}#${"x".repeat(pad)}\n`);
  utimesSync(path, STILL, STILL);
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
    // Its own starting point: the route is public.
    const reloaded = gw.output().split('"config reloaded"').length - 1;
    writeFileSync(file(), stringify(configWith(echo.url, { publicEcho: true })));
    await waitForLog(gw, '"config reloaded"', reloaded + 1);
    const rejected = gw.output().split('"reload rejected"').length - 1;
    writeFileSync(file(), "listeners: []\nbogus: 1\n");
    await waitForLog(gw, '"reload rejected"', rejected + 1);
    assert.match(gw.output(), /bogus/);
    assert.equal((await curl({ port, dir: tmp.dir })).status, 200);
  });

  test("SIGHUP reloads a change the file watcher cannot see; a trust store change applies to new connections, keeps live ones open and rotates the ticket keys", async () => {
    const reloads = () => gw.output().split('"config reloaded"').length - 1;
    const SIZE = 4096;
    // The device-trusting config, seen by the watcher (the file's mtime moves to STILL).
    let n = reloads();
    writeStill(file(), stringify(configWith(echo.url, { publicEcho: false })), SIZE);
    await waitForLog(gw, '"config reloaded"', n + 1);
    // A keep-alive connection and a TLS 1.3 session made under the old trust.
    const client = keepAliveClient(port, tmp.dir, "device");
    try {
      assert.equal((await client.get()).status, 200);
      const creds = {
        cert: readFileSync(join(tmp.dir, "device.crt"), "utf8"),
        key: readFileSync(join(tmp.dir, "device.key"), "utf8"),
      };
      const full = await tlsHttp({ port, servername: HOST, ...creds, maxVersion: "TLSv1.3" });
      assert.equal(full.http?.status, 200, full.http?.body);
      // Trust only the unrelated CA from now on: same size, inode and mtime, so only SIGHUP can load it.
      n = reloads();
      writeStill(file(), stringify(configWith(echo.url, { publicEcho: false, ca: "wrong-ca.crt" })), SIZE);
      const stat = statSync(file());
      assert.equal(stat.mtimeMs, STILL * 1000);
      gw.child.kill("SIGHUP");
      await waitForLog(gw, '"config reloaded"', n + 1);
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
      // The trust changed, so the ticket keys rotated: the old session is not resumed.
      const offered = await tlsHttp({ port, servername: HOST, ...creds, session: lastSession(full) });
      assert.equal(offered.reused, false, "a session of the old trust is not resumed");
      assert.equal(offered.http?.status, 401, offered.http?.body);
    } finally {
      await client.close();
    }
  });

  test("a reload that keeps the listener's trust keeps its sessions: one made before resumes after", async () => {
    const reloads = () => gw.output().split('"config reloaded"').length - 1;
    let n = reloads();
    writeFileSync(file(), stringify(configWith(echo.url, { publicEcho: false, ca: "ca-chain.crt" })));
    await waitForLog(gw, '"config reloaded"', n + 1);
    const creds = {
      cert: readFileSync(join(tmp.dir, "device.crt"), "utf8"),
      key: readFileSync(join(tmp.dir, "device.key"), "utf8"),
    };
    const full = await tlsHttp({ port, servername: HOST, ...creds, maxVersion: "TLSv1.3" });
    assert.equal(full.http?.status, 200, full.http?.body);
    // Only the route changes (it becomes public); the trust stores stay as they are.
    n = reloads();
    writeFileSync(file(), stringify(configWith(echo.url, { publicEcho: true, ca: "ca-chain.crt" })));
    await waitForLog(gw, '"config reloaded"', n + 1);
    const resumed = await tlsHttp({ port, servername: HOST, ...creds, session: lastSession(full) });
    assert.equal(resumed.reused, true, "the session made before the reload resumes");
    assert.equal(resumed.http?.status, 200, resumed.http?.body);
  });

  test("a change of a referenced file (the trust store's CA file) reloads without a signal", async () => {
    const reloads = () => gw.output().split('"config reloaded"').length - 1;
    // Its own starting point: the route trusts trust.crt, which holds the unrelated CA.
    copyFileSync(join(tmp.dir, "wrong-ca.crt"), join(tmp.dir, "trust.crt"));
    let n = reloads();
    writeFileSync(file(), stringify(configWith(echo.url, { publicEcho: false })));
    await waitForLog(gw, '"config reloaded"', n + 1);
    assert.equal((await curl({ port, dir: tmp.dir, device: "device" })).status, 401);
    n = reloads();
    copyFileSync(join(tmp.dir, "ca-chain.crt"), join(tmp.dir, "trust.crt"));
    await waitForLog(gw, '"config reloaded"', n + 1);
    const r = await curl({ port, dir: tmp.dir, device: "device" });
    assert.equal(r.status, 200, r.body);
  });

  test("a broken CA file is rejected at reload, naming the trust store; the old config keeps serving (fail closed)", async (t) => {
    const reloads = (what: string) => gw.output().split(what).length - 1;
    copyFileSync(join(tmp.dir, "ca-chain.crt"), join(tmp.dir, "trust.crt"));
    let n = reloads('"config reloaded"');
    writeFileSync(file(), stringify(configWith(echo.url, { publicEcho: false })));
    await waitForLog(gw, '"config reloaded"', n + 1);
    assert.equal((await curl({ port, dir: tmp.dir, device: "device" })).status, 200);
    // The CA file becomes a corrupt PEM block: the watcher's reload is rejected.
    t.after(() => copyFileSync(join(tmp.dir, "ca-chain.crt"), join(tmp.dir, "trust.crt")));
    n = reloads('"reload rejected"');
    writeFileSync(
      join(tmp.dir, "trust.crt"),
      "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    );
    await waitForLog(gw, '"reload rejected"', n + 1);
    assert.match(
      gw
        .output()
        .split("\n")
        .filter((l) => l.includes('"reload rejected"'))
        .at(-1) ?? "",
      /trustStores\[0\]\.ca: trust store \\"devices\\": PEM block #1 does not parse/,
    );
    // The trust loaded before the change still applies: the device is served, the wrong one still refused.
    const device = await curl({ port, dir: tmp.dir, device: "device" });
    assert.equal(device.status, 200, device.body);
    const wrong = await curl({ port, dir: tmp.dir, device: "wrong-device" });
    assert.equal(wrong.status, 401, wrong.body);
    // And SIGHUP with the same broken file is rejected as well.
    n = reloads('"reload rejected"');
    gw.child.kill("SIGHUP");
    await waitForLog(gw, '"reload rejected"', n + 1);
    assert.equal((await curl({ port, dir: tmp.dir, device: "device" })).status, 200);
  });

  test("a change that needs a restart (the device store) is rejected, naming why; the old config keeps serving", async () => {
    copyFileSync(join(tmp.dir, "ca-chain.crt"), join(tmp.dir, "trust.crt"));
    const reloaded = gw.output().split('"config reloaded"').length - 1;
    writeFileSync(file(), stringify(configWith(echo.url, { publicEcho: false })));
    await waitForLog(gw, '"config reloaded"', reloaded + 1);
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
