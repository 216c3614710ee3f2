// kill -9 during a burst of SQLite writes: after reopening, every acknowledged write is there.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { SqliteDeviceStore } from "./sqlite-store.ts";

const writer = fileURLToPath(new URL("./testing/durability-writer.ts", import.meta.url));

test("every write acknowledged before SIGKILL survives reopening", async () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-durability-"));
  const file = join(dir, "registry.db");
  try {
    const child = spawn(process.execPath, [writer, file], { stdio: ["ignore", "pipe", "inherit"] });
    const acked: string[] = [];
    let buffered = "";
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on("exit", (_, signal) => resolve(signal)),
    );
    await new Promise<void>((resolve, reject) => {
      child.on("exit", () => reject(new Error("writer exited before it was killed")));
      child.stdout.on("data", (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split("\n");
        buffered = lines.pop() ?? "";
        for (const line of lines) if (line.startsWith("ack ")) acked.push(line.slice(4));
        // Kill mid-burst: well after the first writes, while writes keep coming.
        if (acked.length >= 300) resolve();
      });
    });
    child.kill("SIGKILL");
    assert.equal(await exited, "SIGKILL");
    assert.ok(acked.length >= 300);

    const db = new DatabaseSync(file);
    assert.equal(
      (db.prepare("PRAGMA integrity_check").get() as { integrity_check: string }).integrity_check,
      "ok",
    );
    db.close();
    const store = new SqliteDeviceStore(file);
    await store.migrate();
    for (const id of acked) {
      const device = await store.get(id);
      assert.equal(device?.status, "suspended", `acknowledged device ${id} and its update survived`);
      assert.equal((await store.findByBinding({ kind: "cn", value: id }))?.id, id);
    }
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
