// Route certificate matchers end to end, through the real gateway and curl: SAN URI glob, subject CN regex,
// SPKI pins, certificate fingerprints, allowed intermediates, and `auth.enforce: report-only` (the request
// passes without identity headers; the gateway logs what it would have denied, with the reason).
// Pins and fingerprints are computed by node:crypto from the PEM files, independently of the engine.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { createIntermediateCa, issueDeviceCertificate } from "../../src/pki/issue.ts";
import { toPem } from "../../src/pki/pem.ts";
import { issueToFiles, loadPki } from "../../src/pki/store.ts";
import { type CurlResult, curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { type DenyBody, fingerprintOf, logLinesWith, spkiPinOf } from "../helpers/identity-e2e.ts";
import { pem } from "../helpers/tls-fixtures.ts";

const HOST = "mtls.auth.local.com";
const FORBIDDEN = "You cannot consume this service";
const REPORT_ONLY = "request would be denied (report-only)";

interface Echo {
  headers: Record<string, string | undefined>;
}

describe("identity engine: route certificate matchers end to end", () => {
  const tmp = tempDir();
  let echo: EchoUpstream;
  let gw: GatewayProcess;

  const get = (device: string, path: string): Promise<CurlResult> =>
    curl({ port: gw.ports.app ?? 0, dir: tmp.dir, device, path });
  const assertAllowed = (r: CurlResult, deviceId: string) => {
    assert.equal(r.status, 200, `${r.status} ${r.body} ${r.stderr}`);
    assert.equal(r.json<Echo>().headers["x-device-id"], deviceId);
  };
  const assertForbidden = (r: CurlResult, reason: string) => {
    assert.equal(r.status, 403, `${r.status} ${r.body} ${r.stderr}`);
    assert.deepEqual(r.json<DenyBody>(), { message: FORBIDDEN, reason });
  };

  before(async () => {
    const demo = await ensureDemoPki(tmp.dir);
    const pki = await loadPki(demo.pkiDir);
    // fleet-1: SAN URI urn:device:fleet-1, CN fleet-1, under the demo intermediate (as device-001).
    await issueToFiles(pki, { kind: "device", deviceId: "fleet-1" }, { out: join(tmp.dir, "fleet-1") });
    // CN fleet-7-retired: only an unanchored regex would let it in.
    await issueToFiles(
      pki,
      { kind: "device", deviceId: "fleet-7-retired" },
      { out: join(tmp.dir, "fleet-7-retired") },
    );
    // Another intermediate of the same demo root, and a device under it.
    const otherInt = await createIntermediateCa(pki.root, {
      subject: "CN=Portcullis Demo Other Intermediate CA",
    });
    const otherIntPem = toPem(otherInt.cert.rawData, "CERTIFICATE");
    const otherDevice = await issueDeviceCertificate(otherInt, { deviceId: "fleet-2" });
    writeFileSync(join(tmp.dir, "other-int-device.crt"), otherDevice.certPem + otherIntPem);
    writeFileSync(join(tmp.dir, "other-int-device.key"), otherDevice.keyPem, { mode: 0o600 });
    writeFileSync(join(tmp.dir, "demo-plus-other.pem"), pem(tmp.dir, "ca-chain.crt") + otherIntPem);

    const demoIntermediate = fingerprintOf(pem(tmp.dir, "ca-chain.crt"));
    const device001 = fingerprintOf(pem(tmp.dir, "device.crt"));
    // As operators paste it from `openssl x509 -fingerprint -sha256`: upper case with colons.
    const device001Colons = (device001.toUpperCase().match(/../g) ?? []).join(":");
    const fleet1Pin = await spkiPinOf(pem(tmp.dir, "fleet-1.crt"));

    echo = await startEchoUpstream();
    const route = (name: string, auth: Record<string, unknown>) => ({
      name,
      hosts: [HOST],
      paths: [`/${name}`],
      service: "echo",
      auth: { trustStores: ["demo"], ...auth },
    });
    const config: ConfigInput = {
      listeners: [
        {
          name: "app",
          port: 0,
          clientAuth: "application",
          certificates: [{ cert: "server.crt", key: "server.key" }],
        },
      ],
      trustStores: [
        { name: "demo", ca: "ca-chain.crt" },
        // The demo CAs plus the other intermediate, so that its devices validate and only the matcher decides.
        { name: "demo-plus-other", ca: "demo-plus-other.pem" },
      ],
      services: [{ name: "echo", targets: [echo.url] }],
      routes: [
        route("glob", { match: { san: { uri: [{ glob: "urn:device:fleet-*" }] } } }),
        route("cn", { match: { subject: { CN: [{ regex: "fleet-[0-9]+" }] } } }),
        route("spki", { match: { spki: [fleet1Pin] } }),
        route("fp", { match: { fingerprints: [device001Colons] } }),
        route("int", { trustStores: ["demo-plus-other"], match: { intermediates: [demoIntermediate] } }),
        route("report", {
          enforce: "report-only",
          match: { san: { uri: [{ glob: "urn:device:fleet-*" }] } },
        }),
      ],
    };
    gw = await startGateway(tmp.dir, config);
  });

  after(async () => {
    const code = await gw?.stop();
    await echo?.close();
    tmp.cleanup();
    assert.equal(code, 0, "the gateway stops gracefully");
  });

  test("SAN URI glob urn:device:fleet-*: fleet-1 200, device-001 403 subject_not_allowed", async () => {
    assertAllowed(await get("fleet-1", "/glob/echo"), "fleet-1");
    assertForbidden(await get("device", "/glob/echo"), "subject_not_allowed");
  });

  test("subject CN regex fleet-[0-9]+ (anchored): fleet-1 200, device-001 and fleet-7-retired 403", async () => {
    assertAllowed(await get("fleet-1", "/cn/echo"), "fleet-1");
    assertForbidden(await get("device", "/cn/echo"), "subject_not_allowed");
    assertForbidden(await get("fleet-7-retired", "/cn/echo"), "subject_not_allowed");
  });

  test("SPKI pin allow-list: the pinned key 200, another key 403 subject_not_allowed", async () => {
    assertAllowed(await get("fleet-1", "/spki/echo"), "fleet-1");
    assertForbidden(await get("device", "/spki/echo"), "subject_not_allowed");
  });

  test("fingerprint allow-list (upper case, colons): the listed certificate 200, another 403", async () => {
    assertAllowed(await get("device", "/fp/echo"), "device-001");
    assertForbidden(await get("fleet-1", "/fp/echo"), "subject_not_allowed");
  });

  test("intermediates allow-list: a chain through another intermediate of the same root 403 ca_not_allowed_for_route", async () => {
    assertAllowed(await get("device", "/int/echo"), "device-001");
    assertForbidden(await get("other-int-device", "/int/echo"), "ca_not_allowed_for_route");
  });

  test("report-only: a non-matching device passes without identity headers, and the would-be denial is logged", async () => {
    const matching = await get("fleet-1", "/report/echo");
    assertAllowed(matching, "fleet-1");
    assert.ok(matching.json<Echo>().headers["x-forwarded-client-cert"], "an allowed device gets XFCC");

    const r = await get("device", "/report/echo");
    assert.equal(r.status, 200, `${r.status} ${r.body}`);
    const headers = r.json<Echo>().headers;
    for (const name of ["x-device-id", "x-forwarded-client-cert", "x-consumer-id", "x-consumer-username"]) {
      assert.equal(
        headers[name],
        undefined,
        `${name} is not sent for a request that passed only as report-only`,
      );
    }
    const lines = await waitForLog(gw, REPORT_ONLY);
    const line = lines.find((l) => l.route === "report" && l.subject === "CN=device-001");
    assert.ok(line, `a "${REPORT_ONLY}" line for device-001 on route report:\n${gw.output().slice(-3000)}`);
    assert.equal(line.reason, "subject_not_allowed");
    assert.equal(line.allow, false);
    assert.equal(line.enforced, false);
  });
});

/** The log lines with `msg`, waiting (bounded) for the gateway's asynchronous log to flush them. */
async function waitForLog(gw: GatewayProcess, msg: string): Promise<ReturnType<typeof logLinesWith>> {
  const deadline = Date.now() + 5_000;
  let lines = logLinesWith(gw.output(), msg);
  while (lines.length === 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    lines = logLinesWith(gw.output(), msg);
  }
  return lines;
}
