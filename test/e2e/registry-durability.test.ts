// kill -9 of a gateway (SQLite store) during a burst of admin writes: after a restart on the same config,
// every write whose answer arrived (201 for a create, 200 for a status change) is there.
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { after, before, describe, test } from "node:test";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  AdminApi,
  type DeviceJson,
  KeepAliveDevice,
  type RegistryPki,
  registryConfig,
  registryPki,
} from "../helpers/registry.ts";

/** Acknowledged writes before the kill; the burst goes on while the signal is sent. */
const KILL_AFTER = 300;

describe("durability of acknowledged admin writes across kill -9 (SQLite)", () => {
  const tmp = tempDir("portcullis-registry-durability-");
  let pki: RegistryPki;
  let echo: EchoUpstream;
  let gw: GatewayProcess | undefined;

  before(async () => {
    pki = await registryPki(tmp.dir);
    echo = await startEchoUpstream();
  });
  after(async () => {
    await gw?.stop();
    await echo?.close();
    tmp.cleanup();
  });

  test("every acknowledged create and update survives SIGKILL mid-burst", async (t) => {
    const config = registryConfig({ upstream: echo.url, storeUrl: "sqlite:state/registry.db" });
    gw = await startGateway(tmp.dir, config);
    const first = gw;
    const admin = new AdminApi(first.adminPort, pki.token);
    await admin.register("dev-durable", pki.existing("device"));

    const created: string[] = [];
    const suspended = new Set<string>();
    let killedAt = -1;
    let failure: unknown;
    for (let n = 0; ; n++) {
      const id = `burst-${String(n).padStart(5, "0")}`;
      if (created.length === KILL_AFTER && killedAt < 0) {
        // Sent while this create is on its way: the kill lands mid-burst, likely mid-write.
        killedAt = n;
        setImmediate(() => first.child.kill("SIGKILL"));
      }
      try {
        const r = await admin.call("POST", "/devices", {
          id,
          groups: ["burst"],
          bindings: [{ kind: "cn", value: id }],
          metadata: { n },
        });
        if (r.status !== 201) {
          failure = new Error(`POST ${id}: ${r.status} ${r.text}`);
          break;
        }
        created.push(id);
        if (n % 3 === 0) {
          const p = await admin.call("PATCH", `/devices/${id}`, { status: "suspended" });
          if (p.status !== 200) {
            failure = new Error(`PATCH ${id}: ${p.status} ${p.text}`);
            break;
          }
          suspended.add(id);
        }
      } catch (err) {
        failure = err;
        break;
      }
    }
    assert.ok(killedAt >= 0, `the burst failed before the kill: ${String(failure)}`);
    assert.equal(await first.stop(), null);
    assert.equal(first.child.signalCode, "SIGKILL");
    assert.ok(created.length >= KILL_AFTER, `${created.length} creates acknowledged`);
    t.diagnostic(`${created.length} creates and ${suspended.size} updates acknowledged before SIGKILL`);

    // The file is intact before the gateway opens it again.
    const db = new DatabaseSync(join(tmp.dir, "state", "registry.db"));
    const integrity = db.prepare("PRAGMA integrity_check").get() as { integrity_check: string };
    db.close();
    assert.equal(integrity.integrity_check, "ok");

    gw = await startGateway(tmp.dir, config);
    const again = new AdminApi(gw.adminPort, pki.token);
    const missing: string[] = [];
    const wrong: string[] = [];
    const queue = [...created];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
          const r = await again.call<DeviceJson>("GET", `/devices/${id}`);
          if (r.status !== 200) missing.push(`${id} (${r.status})`);
          else if (r.json.status !== (suspended.has(id) ? "suspended" : "active")) wrong.push(id);
        }
      }),
    );
    assert.deepEqual(missing, [], `acknowledged creates lost after kill -9 (of ${created.length})`);
    assert.deepEqual(wrong, [], "acknowledged status changes lost after kill -9");

    // And the restarted gateway serves from that store.
    const client = new KeepAliveDevice(gw.ports.main ?? 0, tmp.dir, pki.existing("device"));
    try {
      const r = await client.get();
      assert.equal(r.status, 200);
      assert.equal(r.body.headers?.["x-device-id"], "dev-durable");
    } finally {
      await client.close();
    }
  });
});
