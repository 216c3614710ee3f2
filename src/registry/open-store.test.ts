// openDeviceStore: the engine and its location from a store URL.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { openDeviceStore } from "./open-store.ts";
import { PostgresDeviceStore } from "./postgres-store.ts";
import { SqliteDeviceStore } from "./sqlite-store.ts";
import { dropSchema, freshSchema, PG_URL } from "./testing/pg.ts";

test("sqlite:PATH resolves against baseDir and creates the directory", async () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-open-"));
  try {
    const store = openDeviceStore("sqlite:data/registry.db", { baseDir: dir });
    assert.ok(store instanceof SqliteDeviceStore);
    await store.migrate();
    await store.create({ id: "x" });
    await store.close();
    const again = openDeviceStore(`sqlite:${join(dir, "data/registry.db")}`);
    await again.migrate();
    assert.ok(await again.get("x"));
    await again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("postgres://…?schema=NAME uses that schema", async () => {
  const schema = freshSchema();
  const url = new URL(PG_URL);
  url.searchParams.set("schema", schema);
  const store = openDeviceStore(url.href);
  try {
    assert.ok(store instanceof PostgresDeviceStore);
    assert.equal(store.schema, schema);
    await store.migrate();
    await store.create({ id: "y" });
    assert.equal((await store.get("y"))?.id, "y");
  } finally {
    await store.close();
    await dropSchema(schema);
  }
});

test("other URLs are refused", () => {
  assert.throws(() => openDeviceStore("mysql://x"), RangeError);
});
