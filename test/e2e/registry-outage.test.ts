// The PostgreSQL registry cut mid-run, through a TCP proxy the test controls: a device the gateway has seen
// keeps working from its cache within outageGrace, a registered device it has never seen fails closed with
// 503 registry_unavailable, /status says the store is down; once the path is back the gateway recovers by
// itself (no restart), and a change made elsewhere during the outage applies to live connections.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { PostgresDeviceStore } from "../../src/registry/postgres-store.ts";
import { TcpProxy } from "../../src/registry/testing/tcp-proxy.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  AdminApi,
  dropSchema,
  e2eSchema,
  type IssuedDevice,
  KeepAliveDevice,
  PG_URL,
  pgStoreUrl,
  type RegistryPki,
  registryConfig,
  registryPki,
  waitFor,
  within,
} from "../helpers/registry.ts";

const CACHE_TTL_MS = 500;

interface StatusJson {
  store: { kind: string; ok: boolean; error?: string };
}

describe("store outage (PostgreSQL behind a TCP proxy)", () => {
  const tmp = tempDir("portcullis-registry-outage-");
  const schema = e2eSchema();
  let pki: RegistryPki;
  let echo: EchoUpstream;
  let proxy: TcpProxy;
  let gw: GatewayProcess | undefined;
  let admin: AdminApi;
  let other: PostgresDeviceStore | undefined;
  let known: IssuedDevice;
  let unseen: IssuedDevice;
  let known2: IssuedDevice;
  let unseen2: IssuedDevice;
  const clients: KeepAliveDevice[] = [];

  const request = (device: IssuedDevice) =>
    curl({ port: gw?.ports.main ?? 0, dir: tmp.dir, device: device.name, http: "1.1" });
  const timed = async (device: IssuedDevice) => {
    const started = performance.now();
    const r = await request(device);
    return { status: r.status, body: r.body, ms: Math.round(performance.now() - started) };
  };
  const storeOk = async (): Promise<boolean> => {
    const r = await admin.call<StatusJson>("GET", "/status");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.store.kind, "postgres");
    return r.json.store.ok;
  };

  before(async () => {
    pki = await registryPki(tmp.dir);
    known = await pki.issue("dev-known");
    unseen = await pki.issue("dev-unseen");
    known2 = await pki.issue("dev-known-2");
    unseen2 = await pki.issue("dev-unseen-2");
    echo = await startEchoUpstream();
    const target = new URL(PG_URL);
    proxy = await TcpProxy.start(target.hostname, Number(target.port || 5432));
    gw = await startGateway(
      tmp.dir,
      registryConfig({
        upstream: echo.url,
        storeUrl: pgStoreUrl(schema, proxy.port),
        store: { cacheTtl: `${CACHE_TTL_MS}ms`, outageGrace: "30s" },
      }),
    );
    admin = new AdminApi(gw.adminPort, pki.token);
    // Another node, with its own path to the database.
    other = new PostgresDeviceStore({ url: PG_URL, schema });
    await other.migrate();
  });
  after(async () => {
    for (const c of clients) await c.close();
    if (proxy) proxy.mode = "pass";
    await gw?.stop();
    await other?.close();
    await proxy?.close();
    await echo?.close();
    await dropSchema(schema);
    tmp.cleanup();
  });

  test("cached devices pass, unknown ones fail closed, and the gateway recovers without a restart", async () => {
    await admin.register("dev-known", known);
    await admin.register("dev-unseen", unseen);
    assert.equal(await storeOk(), true);
    const live = new KeepAliveDevice(gw?.ports.main ?? 0, tmp.dir, known);
    clients.push(live);
    assert.equal((await live.get()).status, 200);
    const lastLookup = Date.now();

    // The cut: every connection to PostgreSQL is reset, and every new one.
    proxy.mode = "reset";
    await waitFor(async () => !(await storeOk()), 5000, "/status reports the store down");
    const status = await admin.call<StatusJson>("GET", "/status");
    assert.equal(status.json.store.ok, false);
    // A load balancer's probe, without the token: not ready while the store is down.
    const readyz = await fetch(`http://127.0.0.1:${gw?.adminPort}/readyz`);
    assert.equal(readyz.status, 503);
    assert.match(await readyz.text(), /^\[-\]store failed: .*\nreadyz check failed\n$/);
    assert.equal((await fetch(`http://127.0.0.1:${gw?.adminPort}/healthz`)).status, 200, "yet alive");
    // Past the cache TTL, so that answers come from the outage grace, not from a fresh entry.
    const expiry = lastLookup + CACHE_TTL_MS + 200 - Date.now();
    if (expiry > 0) await sleep(expiry);

    const onLive = await live.get();
    assert.equal(onLive.status, 200, "the known device's live connection keeps working");
    const fresh = await request(known);
    assert.equal(fresh.status, 200, `the known device on a new connection: ${fresh.body}`);
    const stranger = await request(unseen);
    assert.equal(stranger.status, 503, stranger.body);
    assert.deepEqual(stranger.json(), {
      message: "The device registry is unavailable",
      reason: "registry_unavailable",
    });
    const write = await admin.call("PATCH", "/devices/dev-known", { status: "suspended" });
    assert.equal(write.status, 503, `an admin write during the outage: ${write.text}`);

    // Meanwhile another node, which still reaches the database, suspends the known device.
    await other?.update("dev-known", { status: "suspended" });
    const closed = live.nextDisconnect();

    proxy.mode = "pass";
    await waitFor(storeOk, 15_000, "/status reports the store back");
    assert.equal((await fetch(`http://127.0.0.1:${gw?.adminPort}/readyz`)).status, 200, "ready again");
    await waitFor(
      async () => (await request(unseen)).status === 200,
      5000,
      "the never-seen device is allowed once the store is back",
    );
    // The change missed during the outage applies once the gateway listens again: the live connection goes.
    await within(closed, 5000, "the suspended device's connection is closed after the recovery");
    const denied = await live.get();
    assert.equal(denied.status, 403);
    assert.equal(denied.body.reason, "device_suspended");
    assert.equal(live.connects, 2);
  });

  test("a black-holed path (no reset, no answer): after the first timeout, answers come at once from cache or fail closed", async () => {
    await admin.register("dev-known-2", known2);
    await admin.register("dev-unseen-2", unseen2);
    assert.equal((await request(known2)).status, 200);
    const lastLookup = Date.now();

    proxy.mode = "blackhole";
    const expiry = lastLookup + CACHE_TTL_MS + 200 - Date.now();
    if (expiry > 0) await sleep(expiry);
    // The first lookup past the TTL waits for the store's connect or query timeout, then uses the grace.
    const first = await timed(known2);
    assert.equal(first.status, 200, first.body);
    // The store was just found unreachable: it is not asked again for a while (outageRetryMs, 1 s), so
    // these answers must not wait for another timeout each.
    const second = await timed(known2);
    assert.equal(second.status, 200, second.body);
    const stranger = await timed(unseen2);
    assert.equal(stranger.status, 503, stranger.body);
    // Had each waited for the store again, the two together would take twice the first one's wait.
    assert.ok(
      second.ms + stranger.ms < first.ms,
      `after a ${first.ms} ms store timeout, the next requests took ${second.ms} ms (cached device) and ` +
        `${stranger.ms} ms (unknown device): each waited for the store again`,
    );

    proxy.mode = "pass";
    await waitFor(
      async () => (await request(unseen2)).status === 200,
      20_000,
      "the never-seen device is allowed once the path is back",
    );
    await waitFor(storeOk, 15_000, "/status reports the store back");
  });
});
