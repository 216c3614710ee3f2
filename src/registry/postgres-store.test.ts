// PostgresDeviceStore: the shared contract on a fresh schema, plus NOTIFY scoping and LISTEN reconnection.
import assert from "node:assert/strict";
import { test } from "node:test";
import pg from "pg";
import { type EnrollmentHarness, registerEnrollmentContract } from "./enrollment-contract.ts";
import { migratePostgres } from "./migrations.ts";
import { PostgresDeviceStore } from "./postgres-store.ts";
import { registerStoreContract } from "./store-contract.ts";
import { eventually } from "./testing/eventually.ts";
import { dropSchema, freshSchema, PG_URL, pgQuery } from "./testing/pg.ts";
import { type DeviceChange, StoreUnavailableError } from "./types.ts";

function pgHarness(): EnrollmentHarness {
  const schema = freshSchema();
  return {
    open: () => new PostgresDeviceStore({ url: PG_URL, schema, poolSize: 4 }),
    async migrationVersions() {
      const rows = await pgQuery<{ version: number }>(
        `SELECT version FROM ${schema}.schema_migrations ORDER BY version`,
      );
      return rows.map((r) => r.version);
    },
    async seedAtVersion(version, device) {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        await migratePostgres(client, schema, version);
        await client.query(
          `INSERT INTO ${schema}.devices (id, status, created_at, updated_at) VALUES ($1, 'active', now(), now())`,
          [device.id],
        );
        await client.query(
          `INSERT INTO ${schema}.bindings (device_id, kind, value, pos) VALUES ($1, 'cn', $2, 0)`,
          [device.id, device.cn],
        );
      } finally {
        await client.end();
      }
    },
    cleanup: () => dropSchema(schema),
  };
}

registerStoreContract("postgres", async () => pgHarness());
registerEnrollmentContract("postgres", async () => pgHarness());

test("postgres: notifications of another schema on the shared channel are ignored", async () => {
  const a = pgHarness();
  const b = pgHarness();
  const sa = a.open();
  const sb = b.open();
  try {
    await sa.migrate();
    await sb.migrate();
    const atB: DeviceChange[] = [];
    sb.onChange((c) => atB.push(c));
    const atA: DeviceChange[] = [];
    const probe = a.open();
    await probe.migrate();
    probe.onChange((c) => atA.push(c));
    await sa.create({ id: "only-in-a" });
    await eventually(() => atA.length === 1, 1000, "A's second instance hears A");
    assert.deepEqual(atB, []);
    await probe.close();
  } finally {
    await sa.close();
    await sb.close();
    await a.cleanup();
    await b.cleanup();
  }
});

test("postgres: the LISTEN connection comes back by itself and announces a resync", async () => {
  const h = pgHarness();
  const store = h.open() as PostgresDeviceStore;
  const writer = h.open();
  try {
    await store.migrate();
    await writer.migrate();
    const changes: DeviceChange[] = [];
    store.onChange((c) => changes.push(c));
    await pgQuery("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [
      `portcullis-listen-${store.schema}`,
    ]);
    await eventually(() => changes.some((c) => c.kind === "resync"), 3000, "a resync after reconnecting");
    assert.equal(store.health().ok, true);
    await writer.create({ id: "after-reconnect" });
    await eventually(
      () => changes.some((c) => c.id === "after-reconnect"),
      1000,
      "NOTIFY after reconnecting",
    );
  } finally {
    await store.close();
    await writer.close();
    await h.cleanup();
  }
});

test("postgres: an unreachable server fails fast with StoreUnavailableError; health reports it", async () => {
  const store = new PostgresDeviceStore({
    url: "postgres://postgres@127.0.0.1:1/test",
    connectTimeoutMs: 500,
  });
  const started = Date.now();
  await assert.rejects(store.findByBinding({ kind: "cn", value: "x" }), StoreUnavailableError);
  await assert.rejects(store.create({ id: "x" }), StoreUnavailableError);
  await assert.rejects(store.migrate(), StoreUnavailableError);
  assert.ok(Date.now() - started < 3000, "fails within the connect timeout");
  const health = store.health();
  assert.equal(health.ok, false);
  assert.equal(health.kind, "postgres");
  assert.match(health.error ?? "", /ECONNREFUSED|connect/);
  await store.close();
});

test("postgres: a schema name that is not a plain identifier is refused", () => {
  assert.throws(() => new PostgresDeviceStore({ url: PG_URL, schema: 'x"; drop' }), RangeError);
});
