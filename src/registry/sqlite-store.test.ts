// SqliteDeviceStore: the shared contract on a temp-dir file, plus SQLite's cross-process change feed.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { type EnrollmentHarness, registerEnrollmentContract } from "./enrollment-contract.ts";
import { migrateSqlite } from "./migrations.ts";
import { prepareDatabaseFile } from "./sqlite-file-mode.ts";
import { SqliteDeviceStore } from "./sqlite-store.ts";
import { registerStoreContract } from "./store-contract.ts";
import { type DeviceChange, StoreUnavailableError } from "./types.ts";

function sqliteHarness(): EnrollmentHarness {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-registry-"));
  const file = join(dir, "registry.db");
  return {
    open: () => new SqliteDeviceStore(file, { pollIntervalMs: 50 }),
    async migrationVersions() {
      const db = new DatabaseSync(file, { readOnly: true });
      try {
        return (
          db.prepare("SELECT version FROM schema_migrations ORDER BY version").all() as { version: number }[]
        ).map((r) => r.version);
      } finally {
        db.close();
      }
    },
    async seedAtVersion(version, device) {
      prepareDatabaseFile(file);
      const db = new DatabaseSync(file);
      try {
        migrateSqlite(db, version);
        db.prepare("INSERT INTO devices (id, status, created_at, updated_at) VALUES (?, 'active', ?, ?)").run(
          device.id,
          Date.now(),
          Date.now(),
        );
        db.prepare("INSERT INTO bindings (device_id, kind, value, pos) VALUES (?, 'cn', ?, 0)").run(
          device.id,
          device.cn,
        );
      } finally {
        db.close();
      }
    },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

registerStoreContract("sqlite", async () => sqliteHarness());
registerEnrollmentContract("sqlite", async () => sqliteHarness());

test("sqlite: WAL with synchronous=FULL", async () => {
  const harness = sqliteHarness();
  const store = harness.open();
  await store.migrate();
  await store.close();
  await harness.cleanup();
  // Checked through a second connection on a fresh file: journal_mode is persistent in the file.
  const dir = mkdtempSync(join(tmpdir(), "portcullis-registry-"));
  const file = join(dir, "r.db");
  const s = new SqliteDeviceStore(file);
  await s.migrate();
  const db = new DatabaseSync(file);
  assert.equal((db.prepare("PRAGMA journal_mode").get() as { journal_mode: string }).journal_mode, "wal");
  db.close();
  await s.close();
  rmSync(dir, { recursive: true, force: true });
});

test("sqlite: another process's changes arrive through the polled feed; its own are not repeated", async () => {
  const harness = sqliteHarness();
  const a = harness.open() as SqliteDeviceStore;
  const b = harness.open() as SqliteDeviceStore;
  await a.migrate();
  await b.migrate();
  const atA: DeviceChange[] = [];
  const atB: DeviceChange[] = [];
  a.onChange((c) => atA.push(c));
  b.onChange((c) => atB.push(c));
  await a.create({ id: "x", bindings: [{ kind: "cn", value: "x" }] });
  assert.equal(atB.length, 0, "nothing before B polls");
  b.pollChanges();
  a.pollChanges();
  assert.deepEqual(atB, [
    { id: "x", kind: "created", bindings: [{ kind: "cn", value: "x" }], status: "active" },
  ]);
  assert.equal(atA.length, 1, "A's own change is emitted once, at commit");
  // A bulk import is announced as one resync.
  await a.importDevices(Array.from({ length: 101 }, (_, i) => ({ id: `bulk-${i}` })));
  b.pollChanges();
  assert.deepEqual(atB.at(-1), { id: "", kind: "resync", bindings: [] });
  await a.close();
  await b.close();
  await harness.cleanup();
});

test("sqlite: a closed or unopenable database is StoreUnavailableError, and health says so", async () => {
  assert.throws(() => new SqliteDeviceStore("/nonexistent-dir/x/registry.db"), StoreUnavailableError);
  const harness = sqliteHarness();
  const store = harness.open();
  await store.migrate();
  await store.close();
  await assert.rejects(store.get("x"), StoreUnavailableError);
  assert.equal(store.health().ok, false);
  assert.equal(store.health().kind, "sqlite");
  await harness.cleanup();
});
