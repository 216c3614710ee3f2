// Two gateway processes sharing one PostgreSQL registry (a fresh schema): a change made through A's admin
// API reaches B through LISTEN/NOTIFY — B closes the device's already-open keep-alive connection and denies
// it at once (within 5 s on a loaded machine, far below the 60 s cache TTL), allows it again once re-activated, and learns of a device registered on A at once.
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  AdminApi,
  dropSchema,
  e2eSchema,
  type IssuedDevice,
  KeepAliveDevice,
  pgStoreUrl,
  type RegistryPki,
  registryConfig,
  registryPki,
  waitFor,
  within,
} from "../helpers/registry.ts";

/**
 * A change reaches the other node by LISTEN/NOTIFY, in milliseconds; the bound is generous for a loaded
 * machine and still far below the 60 s device cache TTL that a node without the feed would wait for.
 */
const PROPAGATION_MS = 5_000;

describe("two gateways on one PostgreSQL registry", () => {
  const tmpA = tempDir("portcullis-registry-cluster-a-");
  const tmpB = tempDir("portcullis-registry-cluster-b-");
  const schema = e2eSchema();
  let pki: RegistryPki;
  let echo: EchoUpstream;
  let gwA: GatewayProcess | undefined;
  let gwB: GatewayProcess | undefined;
  let adminA: AdminApi;
  let adminB: AdminApi;
  let portB = 0;
  let dev: IssuedDevice;
  let late: IssuedDevice;
  const clients: KeepAliveDevice[] = [];

  before(async () => {
    pki = await registryPki(tmpA.dir);
    dev = await pki.issue("dev-cluster");
    late = await pki.issue("dev-late");
    // Same CA and server certificate for B, in its own directory.
    mkdirSync(tmpB.dir, { recursive: true });
    for (const f of ["ca-chain.crt", "server.crt", "server.key", "admin.token"]) {
      copyFileSync(join(tmpA.dir, f), join(tmpB.dir, f));
    }
    echo = await startEchoUpstream();
    const config = registryConfig({ upstream: echo.url, storeUrl: pgStoreUrl(schema) });
    gwA = await startGateway(tmpA.dir, config);
    gwB = await startGateway(tmpB.dir, config);
    portB = gwB.ports.main ?? 0;
    adminA = new AdminApi(gwA.adminPort, pki.token);
    adminB = new AdminApi(gwB.adminPort, pki.token);
  });
  after(async () => {
    for (const c of clients) await c.close();
    await gwA?.stop();
    await gwB?.stop();
    await echo?.close();
    await dropSchema(schema);
    tmpA.cleanup();
    tmpB.cleanup();
  });

  test("both nodes report the shared PostgreSQL store", async () => {
    for (const admin of [adminA, adminB]) {
      const r = await admin.call<{ store: { kind: string; ok: boolean } }>("GET", "/status");
      assert.equal(r.status, 200, r.text);
      assert.deepEqual([r.json.store.kind, r.json.store.ok], ["postgres", true]);
    }
  });

  test("suspend through A: B closes the open keep-alive connection and denies at once; re-activate: allowed", async (t) => {
    await adminA.register("dev-cluster", dev);
    const onB = new KeepAliveDevice(portB, tmpB.dir, dev);
    clients.push(onB);
    assert.equal((await onB.get()).status, 200, "B serves a device registered through A");
    assert.equal((await adminB.call("GET", "/devices/dev-cluster")).status, 200);

    const closed = onB.nextDisconnect();
    const sent = performance.now();
    await adminA.patch("dev-cluster", { status: "suspended" });
    const answered = performance.now();
    const closedAt = await within(closed, 5000, "B closes the suspended device's connection");
    const elapsed = closedAt - answered;
    t.diagnostic(
      `B closed the connection ${(closedAt - sent).toFixed(1)} ms after A's PATCH was sent (${elapsed.toFixed(1)} ms after its answer)`,
    );
    assert.ok(elapsed < PROPAGATION_MS, `B closed the connection ${Math.round(elapsed)} ms after the PATCH`);
    const denied = await onB.get();
    assert.ok(performance.now() - answered < PROPAGATION_MS, "denied promptly");
    assert.equal(denied.status, 403);
    assert.equal(denied.body.reason, "device_suspended");
    assert.equal(onB.connects, 2, "the denial came on a new connection");

    const activated = performance.now();
    await adminA.patch("dev-cluster", { status: "active" });
    await waitFor(async () => (await onB.get()).status === 200, PROPAGATION_MS, "B allows the device again");
    assert.ok(performance.now() - activated < PROPAGATION_MS);
  });

  test("a device B has just refused as unknown is allowed on B as soon as A registers it", async () => {
    const first = await curl({ port: portB, dir: tmpA.dir, device: late.name, http: "1.1" });
    assert.equal(first.status, 401, first.body);
    assert.equal(first.json<{ reason: string }>().reason, "unknown_device");
    // B now caches "unknown" for this certificate (5 s): only the NOTIFY can make it ask again sooner.
    await adminA.register("dev-late", late);
    await waitFor(
      async () => (await curl({ port: portB, dir: tmpA.dir, device: late.name, http: "1.1" })).status === 200,
      PROPAGATION_MS,
      "B learns of the new device",
    );
  });

  test("delete through B closes the connection on A", async () => {
    const onA = new KeepAliveDevice(gwA?.ports.main ?? 0, tmpA.dir, late);
    clients.push(onA);
    assert.equal((await onA.get()).status, 200);
    const closed = onA.nextDisconnect();
    const r = await adminB.call("DELETE", "/devices/dev-late");
    assert.equal(r.status, 204, r.text);
    const answered = performance.now();
    const closedAt = await within(closed, 5000, "A closes the deleted device's connection");
    assert.ok(closedAt - answered < PROPAGATION_MS, `closed after ${Math.round(closedAt - answered)} ms`);
    const denied = await onA.get();
    assert.equal(denied.status, 401);
    assert.equal(denied.body.reason, "unknown_device");
  });
});
