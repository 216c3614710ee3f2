// The fleet's certificate expiry end to end: devices whose certificates expire in 5 and 40 days make one
// request each; the scrape-time histogram and gauges count them, and `portcullis devices expiring
// --within 30d` (GET /fleet/expiring) lists only the 5-day one.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { issueToFiles, loadPki } from "../../src/pki/store.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, runCli, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { AdminApi, metricValue, type RegistryPki, registryConfig, registryPki } from "../helpers/registry.ts";

interface ExpiringJson {
  within: string;
  devices: { deviceId: string; daysLeft: number; source: string; notAfter: string; serial: string }[];
}

/** The value of an unlabelled series (`name value`). */
function plainValue(text: string, name: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe("fleet certificate expiry", () => {
  const tmp = tempDir("portcullis-fleet-expiry-");
  let pki: RegistryPki;
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let admin: AdminApi;
  const serials: Record<string, string> = {};

  before(async () => {
    pki = await registryPki(tmp.dir);
    const ca = await loadPki(pki.demo.pkiDir);
    for (const [id, days] of [
      ["dev-5d", 5],
      ["dev-40d", 40],
    ] as const) {
      const issued = await issueToFiles(
        ca,
        { kind: "device", deviceId: id },
        { out: join(tmp.dir, id), days },
      );
      serials[id] = issued.serialNumber;
    }
    echo = await startEchoUpstream();
    gw = await startGateway(
      tmp.dir,
      registryConfig({ upstream: echo.url, storeUrl: "sqlite:data/registry.db" }),
    );
    admin = new AdminApi(gw.adminPort, pki.token);
    for (const id of ["dev-5d", "dev-40d"]) await admin.register(id, pki.existing(id));
    for (const id of ["dev-5d", "dev-40d"]) {
      const r = await curl({
        port: gw.ports.main ?? 0,
        dir: tmp.dir,
        device: id,
        path: "/echo",
        http: "1.1",
      });
      assert.equal(r.status, 200, `${id}: ${r.body}`);
    }
  });
  after(async () => {
    await gw?.stop();
    await echo?.close();
    tmp.cleanup();
  });

  test("the days-left histogram and the expiring gauges count the devices seen", async () => {
    const text = (await admin.call("GET", "/metrics")).text;
    const bucket = (le: string) => metricValue(text, "portcullis_fleet_certificate_days_left_bucket", { le });
    assert.equal(bucket("1"), 0);
    assert.equal(bucket("7"), 1, "the 5-day certificate");
    assert.equal(bucket("30"), 1);
    assert.equal(bucket("60"), 2, "and the 40-day one");
    assert.equal(bucket("+Inf"), 2);
    assert.equal(plainValue(text, "portcullis_fleet_certificate_days_left_count"), 2);
    const expiring = (within: string, source: string) =>
      metricValue(text, "portcullis_fleet_certificates_expiring", { within, source });
    assert.equal(expiring("7d", "seen"), 1);
    assert.equal(expiring("30d", "seen"), 1);
    assert.equal(expiring("7d", "enrolled"), 0, "no enrollment-issued certificate");
    assert.equal(expiring("30d", "enrolled"), 0);
    assert.doesNotMatch(text, /dev-5d|dev-40d/, "no device id in a label");
  });

  test("portcullis devices expiring --within 30d lists only the 5-day device", async () => {
    const auth = ["--url", admin.base, "--token", pki.token];
    const json = await runCli(["devices", "expiring", "--within", "30d", "--json", ...auth]);
    assert.equal(json.code, 0, json.stderr);
    const answer = JSON.parse(json.stdout) as ExpiringJson;
    assert.equal(answer.within, "30d");
    assert.deepEqual(
      answer.devices.map((d) => [d.deviceId, d.daysLeft, d.source, d.serial]),
      [["dev-5d", 4, "seen", serials["dev-5d"]]],
    );
    const human = await runCli(["devices", "expiring", "--within", "30d", ...auth]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /DEVICE\s+NOT AFTER\s+DAYS LEFT\s+SOURCE/);
    assert.match(human.stdout, /dev-5d/);
    assert.doesNotMatch(human.stdout, /dev-40d/);
    // A wider window takes both, soonest first.
    const wide = await admin.call<ExpiringJson>("GET", "/fleet/expiring?within=60d");
    assert.equal(wide.status, 200, wide.text);
    assert.deepEqual(
      wide.json.devices.map((d) => d.deviceId),
      ["dev-5d", "dev-40d"],
    );
  });

  test("a malformed window is a 400, on the API and the CLI (usage error)", async () => {
    const r = await admin.call("GET", "/fleet/expiring?within=soon");
    assert.equal(r.status, 400, r.text);
    const cli = await runCli([
      "devices",
      "expiring",
      "--within",
      "soon",
      "--url",
      admin.base,
      "--token",
      pki.token,
    ]);
    assert.equal(cli.code, 2, cli.stderr);
  });
});
