// The SQLite registry and its -wal/-shm files are owner-only (0600), whatever the umask.
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { openDeviceStore } from "./open-store.ts";
import { databaseFiles, prepareDatabaseFile } from "./sqlite-file-mode.ts";

const mode = (file: string) => statSync(file).mode & 0o777;
const dir = mkdtempSync(join(tmpdir(), "portcullis-dbmode-"));
let umask: number;
// The usual umask (022) would leave new files 0644: the test must not pass because of a strict umask.
before(() => {
  umask = process.umask(0o022);
});
after(() => {
  process.umask(umask);
  rmSync(dir, { recursive: true, force: true });
});

/** Opens the store through the production path, writes a device so the WAL is in use, and keeps it open. */
async function openAndWrite(file: string) {
  const store = openDeviceStore(`sqlite:${file}`);
  await store.migrate();
  await store.create({ id: `d-${Math.random().toString(36).slice(2)}` });
  return store;
}

test("a new database and its -wal and -shm files are created 0600", async () => {
  const file = join(dir, "fresh", "portcullis.db");
  const store = await openAndWrite(file);
  try {
    for (const f of databaseFiles(file)) {
      assert.ok(existsSync(f), `${f} exists while the store is open`);
      assert.equal(mode(f).toString(8), "600", f);
    }
  } finally {
    await store.close();
  }
});

test("an existing database readable by others is tightened to 0600, with a warning", async () => {
  const file = join(dir, "old.db");
  const first = await openAndWrite(file);
  await first.close();
  chmodSync(file, 0o644);
  // A -wal/-shm pair left by a crashed run with loose bits (SQLite keeps an existing file's mode).
  writeFileSync(`${file}-wal`, "");
  chmodSync(`${file}-wal`, 0o664);
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on("warning", onWarning);
  try {
    const store = await openAndWrite(file);
    try {
      for (const f of databaseFiles(file)) assert.equal(mode(f).toString(8), "600", f);
    } finally {
      await store.close();
    }
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off("warning", onWarning);
  }
  assert.deepEqual(warnings.sort(), [
    `device registry ${file} was mode 0644; changed to 0600`,
    `device registry ${file}-wal was mode 0664; changed to 0600`,
  ]);
});

test("a database already owner-only is left as it is, silently; in-memory databases are skipped", () => {
  const file = join(dir, "quiet.db");
  assert.deepEqual(prepareDatabaseFile(file), []);
  chmodSync(file, 0o400);
  assert.deepEqual(prepareDatabaseFile(file), []);
  assert.equal(mode(file).toString(8), "400");
  assert.deepEqual(prepareDatabaseFile(":memory:"), []);
  assert.deepEqual(prepareDatabaseFile(join(dir, "no-such-dir", "x.db")), [], "left to SQLite to report");
});
