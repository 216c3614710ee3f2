// CRLs fetched over HTTP, end to end: the real gateway loads its trust stores' CRL URLs from a local HTTP
// server (the revocation tests' CRL helper), refreshes them, and follows the CRL Distribution Points of the
// certificates. Revoked and good devices; a CRL published while a device holds a keep-alive connection; a
// stale CRL in strict and soft mode; a distribution point in the certificate.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import {
  crlPem,
  DAY,
  device,
  HOUR,
  type TestPki,
  testPki,
} from "../../src/identity/revocation/testing/pki.ts";
import type { Minted } from "../../src/identity/testing/mint.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { startServer, type TestServer } from "../../src/revocation/testing/http.ts";
import { type CurlResult, curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  type DenyBody,
  keepAliveClient,
  pollUntil,
  writeBundle,
  writeDevice,
} from "../helpers/identity-e2e.ts";

const HOST = "mtls.auth.local.com";
const FAILED = "TLS certificate failed verification";
const FLEET_CRL = "/fleet.crl";
const STALE_CRL = "/stale.crl";
const DP_CRL = "/dp/device-ca.crl";

describe("identity engine: CRLs over HTTP end to end", () => {
  const tmp = tempDir();
  let crls: TestServer;
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  /** Three PKIs: one per CRL source, so that no CRL of one case can answer for another. */
  let fleet: TestPki;
  let stale: TestPki;
  let dp: TestPki;
  const certs: Record<string, Minted> = {};

  const get = (name: string, path: string): Promise<CurlResult> =>
    curl({ port: gw.ports.app ?? 0, dir: tmp.dir, device: name, path });
  const assertDenied = (r: CurlResult, reason: string) => {
    assert.equal(r.status, 401, `${r.status} ${r.body} ${r.stderr}`);
    assert.deepEqual(r.json<DenyBody>(), { message: FAILED, reason });
  };
  const mintDevices = async (pki: TestPki, names: readonly string[], urls: { crl?: string } = {}) => {
    for (const name of names) {
      const cert = await device(name, pki.int, urls);
      certs[name] = cert;
      await writeDevice(tmp.dir, name, cert, [pki.int]);
    }
  };
  const cert = (name: string): Minted => {
    const c = certs[name];
    assert.ok(c, name);
    return c;
  };

  before(async () => {
    await ensureDemoPki(tmp.dir);
    crls = await startServer();
    [fleet, stale, dp] = await Promise.all([testPki("Fleet CRL"), testPki("Stale CRL"), testPki("DP CRL")]);
    await mintDevices(fleet, ["fleet-good", "fleet-revoked", "fleet-later"]);
    await mintDevices(stale, ["stale-device"]);
    await mintDevices(dp, ["dp-good", "dp-revoked"], { crl: crls.url(DP_CRL) });

    crls.set(FLEET_CRL, { body: await crlPem(fleet.int, { revoked: [cert("fleet-revoked")] }) });
    const now = Date.now();
    crls.set(STALE_CRL, {
      body: await crlPem(stale.int, {
        thisUpdate: new Date(now - 2 * DAY),
        nextUpdate: new Date(now - HOUR),
      }),
    });
    crls.set(DP_CRL, { body: await crlPem(dp.int, { revoked: [cert("dp-revoked")] }) });

    echo = await startEchoUpstream();
    const crl = (urls: string[], distributionPoints: boolean) => ({
      urls,
      distributionPoints,
      refreshInterval: "1s",
      timeout: "2s",
    });
    const route = (name: string, store: string) => ({
      name,
      hosts: [HOST],
      paths: [`/${name}`],
      service: "echo",
      auth: { trustStores: [store] },
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
        {
          name: "fleet",
          ca: writeBundle(tmp.dir, "fleet-cas.pem", [fleet.root, fleet.int]),
          revocation: { mode: "strict", crl: crl([crls.url(FLEET_CRL)], false) },
        },
        {
          name: "stale-strict",
          ca: writeBundle(tmp.dir, "stale-cas.pem", [stale.root, stale.int]),
          revocation: { mode: "strict", crl: crl([crls.url(STALE_CRL)], false) },
        },
        {
          name: "stale-soft",
          ca: "stale-cas.pem",
          revocation: { mode: "soft", crl: crl([crls.url(STALE_CRL)], false) },
        },
        {
          name: "dp",
          ca: writeBundle(tmp.dir, "dp-cas.pem", [dp.root, dp.int]),
          revocation: { mode: "strict", crl: crl([], true) },
        },
      ],
      services: [{ name: "echo", targets: [echo.url] }],
      routes: [
        route("fleet", "fleet"),
        route("stale-strict", "stale-strict"),
        route("stale-soft", "stale-soft"),
        route("dp", "dp"),
      ],
    };
    gw = await startGateway(tmp.dir, config);
  });

  after(async () => {
    const code = await gw?.stop();
    await crls?.close();
    await echo?.close();
    tmp.cleanup();
    assert.equal(code, 0, "the gateway stops gracefully");
  });

  test("crl.urls, strict: the revoked device 401 certificate_revoked, the good one 200", async () => {
    assert.ok(crls.hits(FLEET_CRL) >= 1, "the gateway fetched the CRL URL");
    const good = await get("fleet-good", "/fleet/echo");
    assert.equal(good.status, 200, good.body);
    assert.equal(good.json<{ headers: Record<string, string> }>().headers["x-device-id"], "fleet-good");
    assertDenied(await get("fleet-revoked", "/fleet/echo"), "certificate_revoked");
  });

  test("a new CRL published at the URL denies the newly revoked device's next request on its keep-alive connection", async () => {
    const client = keepAliveClient({
      port: gw.ports.app ?? 0,
      host: HOST,
      ca: readFileSync(join(tmp.dir, "ca-chain.crt"), "utf8"),
      certPem: readFileSync(join(tmp.dir, "fleet-later.crt"), "utf8"),
      keyPem: readFileSync(join(tmp.dir, "fleet-later.key"), "utf8"),
    });
    try {
      const first = await client.get("/fleet/echo");
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const hitsBefore = crls.hits(FLEET_CRL);
      crls.set(FLEET_CRL, {
        body: await crlPem(fleet.int, { revoked: [cert("fleet-revoked"), cert("fleet-later")] }),
      });
      const publishedAt = Date.now();
      // refreshInterval is 1s; the gateway never fetches one URL more often than every 10 s, hence the bound.
      const last = await pollUntil(
        () => client.get("/fleet/echo"),
        (r) => r.status !== 200,
        25_000,
        250,
      );
      assert.equal(
        last.status,
        401,
        `still ${last.status} ${Date.now() - publishedAt} ms after publishing; CRL fetches since: ${crls.hits(FLEET_CRL) - hitsBefore}`,
      );
      assert.deepEqual(last.body, { message: FAILED, reason: "certificate_revoked" });
      assert.equal(client.connects(), 1, "every request went over the same keep-alive connection");
      const good = await get("fleet-good", "/fleet/echo");
      assert.equal(good.status, 200, `other devices are not affected: ${good.body}`);
    } finally {
      await client.close();
    }
  });

  test("a stale CRL (nextUpdate passed): strict 401 revocation_unknown, soft 200", async () => {
    assert.ok(crls.hits(STALE_CRL) >= 1, "the gateway fetched the stale CRL");
    assertDenied(await get("stale-device", "/stale-strict/echo"), "revocation_unknown");
    const soft = await get("stale-device", "/stale-soft/echo");
    assert.equal(soft.status, 200, soft.body);
    assert.equal(soft.json<{ headers: Record<string, string> }>().headers["x-device-id"], "stale-device");
  });

  test("the CRL Distribution Point in the certificate (distributionPoints: true): revoked 401, good 200", async () => {
    assertDenied(await get("dp-revoked", "/dp/echo"), "certificate_revoked");
    assert.ok(crls.hits(DP_CRL) >= 1, "the gateway fetched the CRL named in the certificate");
    const good = await get("dp-good", "/dp/echo");
    assert.equal(good.status, 200, good.body);
  });
});
