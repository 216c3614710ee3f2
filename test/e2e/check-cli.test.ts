// `portcullis check --config FILE [--json]`: validates as start would (files, keys, trust stores, CRL
// files, routes, port clashes) without binding anything; exit 0 on a good config, 2 with each problem.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { demoConfigYaml } from "../../src/demo/demo-config.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { runCli, tempDir } from "../helpers/gateway-process.ts";

describe("portcullis check", () => {
  const tmp = tempDir("portcullis-check-");
  const good = join(tmp.dir, "portcullis.yaml");
  const bad = join(tmp.dir, "bad.yaml");
  let yaml = "";

  before(async () => {
    await ensureDemoPki(tmp.dir);
    yaml = demoConfigYaml({
      mode: "application",
      port: 8443,
      adminPort: 8444,
      upstream: "http://127.0.0.1:8445",
      store: "sqlite:portcullis.db",
    });
    writeFileSync(good, yaml);
  });
  after(() => tmp.cleanup());

  test("a good config: exit 0 and a summary, without binding its ports", async () => {
    // The config's port is taken: check must not try to bind it.
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const { port } = blocker.address() as { port: number };
    const file = join(tmp.dir, "taken.yaml");
    const config = parse(yaml);
    config.listeners[0].port = port;
    writeFileSync(file, stringify(config));
    try {
      const r = await runCli(["check", "--config", file]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /: ok\n/);
      assert.match(r.stdout, new RegExp(`listeners +demo 127\\.0\\.0\\.1:${port} \\(application\\)`));
      assert.match(r.stdout, /routes +echo, public-echo, limited-echo, ws-echo/);
    } finally {
      blocker.close();
    }
    const json = await runCli(["check", "--config", good, "--json"]);
    assert.equal(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout) as { ok: boolean; routes: string[]; trustStores: string[] };
    assert.equal(out.ok, true);
    assert.deepEqual(out.routes, ["echo", "public-echo", "limited-echo", "ws-echo"]);
    assert.deepEqual(out.trustStores, ["devices"]);
  });

  test("a bad config: exit 2 with each problem, also as JSON", async () => {
    const config = parse(yaml);
    config.listeners[0].certificates[0].cert = "missing.crt";
    config.admin.port = 8443;
    writeFileSync(bad, stringify(config));
    const r = await runCli(["check", "--config", bad]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /listeners\[0\]\.certificates\[0\]\.cert: .*missing\.crt/);
    assert.match(r.stderr, /admin\.port: port 8443 on 127\.0\.0\.1 is already listener "demo"'s/);
    assert.match(r.stderr, /start would refuse this config/);
    const json = await runCli(["check", "--json", "-c", bad]);
    assert.equal(json.code, 2);
    const out = JSON.parse(json.stdout) as { ok: boolean; errors: { path: string; message: string }[] };
    assert.equal(out.ok, false);
    assert.ok(
      out.errors.some((e) => e.path === "admin.port"),
      json.stdout,
    );
  });

  test("a broken CRL file is found, as start would find it", async () => {
    const dir = join(tmp.dir, "crl");
    await ensureDemoPki(dir);
    writeFileSync(join(dir, "portcullis.yaml"), yaml);
    writeFileSync(
      join(dir, "pki", "crl.pem"),
      "-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n",
    );
    const r = await runCli(["check", join(dir, "portcullis.yaml")]);
    assert.equal(r.code, 2, r.stdout);
    assert.match(r.stderr, /crl\.pem/);
  });

  test("no config named: usage error, exit 2", async () => {
    const r = await runCli(["check"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /portcullis check --config FILE/);
  });
});
