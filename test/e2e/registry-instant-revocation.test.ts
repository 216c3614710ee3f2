// Instant revocation on one gateway (SQLite): when a device is suspended, loses its binding or is deleted
// through the admin API, its open HTTP/1.1 keep-alive connection and HTTP/2 session are closed by the
// gateway at once and its next request is denied; other devices' connections stay open.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  AdminApi,
  Http2Device,
  type IssuedDevice,
  KeepAliveDevice,
  type RegistryPki,
  registryConfig,
  registryPki,
  within,
} from "../helpers/registry.ts";

/** "At once": milliseconds in practice; generous for a loaded machine, far below the 60 s cache TTL. */
const CLOSE_WITHIN_MS = 5_000;
const OTHER_FINGERPRINT = "ab".repeat(32);

describe("instant revocation of live connections (one gateway)", () => {
  const tmp = tempDir("portcullis-registry-revocation-");
  let pki: RegistryPki;
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let admin: AdminApi;
  let port = 0;
  const devices = new Map<string, IssuedDevice>();
  const open: { close(): unknown }[] = [];
  let bystander: KeepAliveDevice;

  const device = (id: string): IssuedDevice => {
    const found = devices.get(id);
    if (!found) throw new Error(`no device ${id}`);
    return found;
  };
  const keepAlive = (id: string): KeepAliveDevice => {
    const c = new KeepAliveDevice(port, tmp.dir, device(id));
    open.push(c);
    return c;
  };
  const h2 = (id: string): Http2Device => {
    const s = new Http2Device(port, tmp.dir, device(id));
    open.push(s);
    return s;
  };

  /** Both connections of `id` answer 200 on /echo, then `change` runs; both must be closed at once (CLOSE_WITHIN_MS). */
  async function expectClosedBy(id: string, change: () => Promise<unknown>) {
    const h1 = keepAlive(id);
    const session = h2(id);
    assert.equal((await h1.get()).status, 200);
    assert.equal((await session.get()).status, 200);
    assert.equal(h1.connects, 1);
    const h1Closed = h1.nextDisconnect();
    const started = performance.now();
    await change();
    const answered = performance.now();
    const [h1At, h2At] = await within(
      Promise.all([h1Closed, session.closed]),
      CLOSE_WITHIN_MS,
      `the gateway closes ${id}'s HTTP/1.1 and HTTP/2 connections`,
    );
    assert.ok(h1At - started < CLOSE_WITHIN_MS, `HTTP/1.1 closed ${Math.round(h1At - answered)} ms after`);
    assert.ok(h2At - started < CLOSE_WITHIN_MS, `HTTP/2 closed ${Math.round(h2At - answered)} ms after`);
    assert.ok(session.isClosed);
    return h1;
  }

  before(async () => {
    pki = await registryPki(tmp.dir);
    echo = await startEchoUpstream();
    for (const id of ["dev-suspend", "dev-rebind", "dev-delete", "dev-sentinel"])
      devices.set(id, await pki.issue(id));
    devices.set("bystander", pki.existing("device"));
    gw = await startGateway(tmp.dir, registryConfig({ upstream: echo.url, storeUrl: "sqlite:registry.db" }));
    port = gw.ports.main ?? 0;
    admin = new AdminApi(gw.adminPort, pki.token);
    for (const [id, files] of devices) await admin.register(id, files);
    bystander = keepAlive("bystander");
    assert.equal((await bystander.get()).status, 200);
  });
  after(async () => {
    for (const c of open) await c.close();
    await gw?.stop();
    await echo?.close();
    tmp.cleanup();
  });

  test("suspend closes HTTP/1.1 keep-alive and HTTP/2 at once; denied 403 until re-activated", async () => {
    const h1 = await expectClosedBy("dev-suspend", () => admin.patch("dev-suspend", { status: "suspended" }));
    // The same client reconnects: the new connection's request is denied.
    const denied = await h1.get();
    assert.equal(denied.status, 403);
    assert.equal(denied.body.reason, "device_suspended");
    assert.equal(h1.connects, 2, "the request went over a new connection");
    const deniedH2 = await h2("dev-suspend").get();
    assert.equal(deniedH2.status, 403);
    assert.equal(deniedH2.body.reason, "device_suspended");

    await admin.patch("dev-suspend", { status: "active" });
    assert.equal((await h1.get()).status, 200);
    assert.equal((await h2("dev-suspend").get()).status, 200);
  });

  test("revoke closes the connections too; the next request is 403 device_revoked", async () => {
    const h1 = await expectClosedBy("dev-suspend", () => admin.patch("dev-suspend", { status: "revoked" }));
    const denied = await h1.get();
    assert.equal(denied.status, 403);
    assert.equal(denied.body.reason, "device_revoked");
  });

  test("adding a binding (rotation) keeps the connection; removing the certificate's binding closes it", async () => {
    const h1 = keepAlive("dev-rebind");
    assert.equal((await h1.get()).status, 200);
    const before = await admin.call<{ bindings: { kind: string; value: string }[] }>(
      "GET",
      "/devices/dev-rebind",
    );
    const own = before.json.bindings;
    await admin.patch("dev-rebind", {
      bindings: [...own, { kind: "fingerprint", value: OTHER_FINGERPRINT }],
    });
    assert.equal((await h1.get()).status, 200);
    // A wrongful close would come from the re-check that runs after the change, which has no event of its
    // own: a later change of the same kind (another device's binding removed) closing its connection
    // shows that the re-checks up to it have run.
    await expectClosedBy("dev-sentinel", () =>
      admin.patch("dev-sentinel", { bindings: [{ kind: "fingerprint", value: "cd".repeat(32) }] }),
    );
    assert.equal((await h1.get()).status, 200);
    assert.equal(h1.connects, 1, "a binding added for rotation leaves the live connection alone");
    await h1.close();

    const again = await expectClosedBy("dev-rebind", () =>
      admin.patch("dev-rebind", { bindings: [{ kind: "fingerprint", value: OTHER_FINGERPRINT }] }),
    );
    const denied = await again.get();
    assert.equal(denied.status, 401);
    assert.equal(denied.body.reason, "unknown_device");
  });

  test("DELETE closes the device's connections; the next request is 401 unknown_device", async () => {
    const h1 = await expectClosedBy("dev-delete", async () => {
      const r = await admin.call("DELETE", "/devices/dev-delete");
      assert.equal(r.status, 204, r.text);
    });
    const denied = await h1.get();
    assert.equal(denied.status, 401);
    assert.equal(denied.body.reason, "unknown_device");
  });

  test("another device's keep-alive connection was never closed", async () => {
    assert.equal((await bystander.get()).status, 200);
    assert.equal(bystander.connects, 1);
    assert.equal(bystander.disconnects, 0);
  });
});
