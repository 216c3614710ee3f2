// The admin API on the real embedded store (SqliteDeviceStore in a temp dir): CRUD, optimistic
// concurrency, and an all-or-nothing import of 10,000 devices.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type AdminHarness, startAdmin } from "../../src/admin/testing/harness.ts";
import { SqliteDeviceStore } from "../../src/registry/sqlite-store.ts";
import { tempDir } from "../helpers/gateway-process.ts";

interface DeviceBody {
  id: string;
  status: string;
  groups: string[];
  version: number;
  lastSeenAt: string | null;
}
const fp = (n: number) => n.toString(16).padStart(64, "0");
const NDJSON = { "content-type": "application/x-ndjson" };

describe("admin API on SQLite", () => {
  const tmp = tempDir();
  let store: SqliteDeviceStore;
  let admin: AdminHarness;
  before(async () => {
    store = new SqliteDeviceStore(join(tmp.dir, "registry.db"));
    await store.migrate();
    admin = await startAdmin({ store });
  });
  after(async () => {
    await admin.close();
    await store.close();
    tmp.cleanup();
  });

  test("create, get, patch with If-Match, list by binding, delete", async () => {
    const created = await admin.call<DeviceBody>("POST", "/devices", {
      body: { id: "sq-1", groups: ["g"], bindings: [{ kind: "fingerprint", value: fp(1) }] },
    });
    assert.equal(created.status, 201);
    assert.equal(created.json.version, 1);
    assert.equal((await admin.call("POST", "/devices", { body: { id: "sq-1" } })).status, 409);
    const taken = await admin.call("POST", "/devices", {
      body: { id: "sq-2", bindings: [{ kind: "fingerprint", value: fp(1) }] },
    });
    assert.equal(taken.status, 409);
    const patched = await admin.call<DeviceBody>("PATCH", "/devices/sq-1", {
      body: { status: "revoked" },
      headers: { "if-match": '"1"' },
    });
    assert.equal(patched.json.status, "revoked");
    assert.equal(patched.json.version, 2);
    assert.equal(
      (
        await admin.call("PATCH", "/devices/sq-1", {
          body: { status: "active" },
          headers: { "if-match": '"1"' },
        })
      ).status,
      409,
    );
    const found = await admin.call<{ devices: DeviceBody[] }>("GET", `/devices?binding=fingerprint:${fp(1)}`);
    assert.deepEqual(
      found.json.devices.map((d) => d.id),
      ["sq-1"],
    );
    assert.equal((await admin.call("DELETE", "/devices/sq-1")).status, 204);
    assert.equal((await admin.call("GET", "/devices/sq-1")).status, 404);
    assert.equal((await admin.call("DELETE", "/devices/sq-1")).status, 404);
  });

  test("20 concurrent read-modify-write PATCHes end with every change and version 21", async () => {
    await admin.call("POST", "/devices", { body: { id: "sq-busy" } });
    const addGroup = async (group: string): Promise<void> => {
      for (;;) {
        const current = await admin.call<DeviceBody>("GET", "/devices/sq-busy");
        const r = await admin.call("PATCH", "/devices/sq-busy", {
          body: { groups: [...current.json.groups, group], ifVersion: current.json.version },
        });
        if (r.status === 200) return;
        assert.equal(r.status, 409);
      }
    };
    await Promise.all(Array.from({ length: 20 }, (_, i) => addGroup(`g${i}`)));
    const final = await admin.call<DeviceBody>("GET", "/devices/sq-busy");
    assert.equal(final.json.version, 21);
    assert.equal(new Set(final.json.groups).size, 20);
  });

  test("import of 10,000: an existing id and a bad line refuse all of it; the fixed file imports 10,000", async () => {
    await admin.call("POST", "/devices", { body: { id: "sq-imp-00010" } });
    const lines = Array.from({ length: 10_000 }, (_, i) =>
      JSON.stringify({
        id: `sq-imp-${String(i).padStart(5, "0")}`,
        bindings: [{ kind: "fingerprint", value: fp(100 + i) }],
      }),
    );
    const withBadLine = [...lines];
    withBadLine[500] = '{"id": 5}';
    const bad = await admin.call<{ errors: { line: number }[] }>("POST", "/devices/import", {
      raw: withBadLine.join("\n"),
      headers: NDJSON,
    });
    assert.equal(bad.status, 422);
    assert.deepEqual(
      bad.json.errors.map((e) => e.line),
      [501],
    );
    // Valid lines, but line 11 is a device the store already has: refused by the store, named by line.
    const exists = await admin.call<{ errors: { line: number; message: string }[] }>(
      "POST",
      "/devices/import",
      {
        raw: lines.join("\n"),
        headers: NDJSON,
      },
    );
    assert.equal(exists.status, 422);
    assert.deepEqual(
      exists.json.errors.map((e) => e.line),
      [11],
    );
    assert.match(exists.json.errors[0]?.message ?? "", /exists/);
    const page = await admin.call<{ devices: DeviceBody[] }>("GET", "/devices?after=sq-imp&limit=1000");
    assert.deepEqual(
      page.json.devices.map((d) => d.id),
      ["sq-imp-00010"],
    );
    await admin.call("DELETE", "/devices/sq-imp-00010");
    const ok = await admin.call("POST", "/devices/import", { raw: lines.join("\n"), headers: NDJSON });
    assert.equal(ok.status, 200, ok.text.slice(0, 300));
    assert.deepEqual(ok.json, { imported: 10_000 });
    const count = await admin.call<{ devices: DeviceBody[]; next: string | null }>(
      "GET",
      "/devices?after=sq-imp-09000&limit=1000",
    );
    assert.equal(count.json.devices.length, 999);
  });

  test("/status reports the SQLite store's health", async () => {
    const r = await admin.call<{ store: { kind: string; ok: boolean } }>("GET", "/status");
    assert.deepEqual([r.json.store.kind, r.json.store.ok], ["sqlite", true]);
  });
});
