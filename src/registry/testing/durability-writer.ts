// Child process of the durability test: writes devices to SQLite as fast as it can, printing each acknowledged id.
import { SqliteDeviceStore } from "../sqlite-store.ts";

const path = process.argv[2];
if (path === undefined) throw new Error("usage: durability-writer.ts DB_PATH");
const store = new SqliteDeviceStore(path);
await store.migrate();
process.stdout.write("ready\n");
for (let n = 0; ; n++) {
  const id = `dev-${n}`;
  await store.create({ id, bindings: [{ kind: "cn", value: id }], groups: ["burst"] });
  // A status change per device too, so updates are covered as well as inserts.
  await store.update(id, { status: "suspended", ifVersion: 1 });
  // Printed only after both writes resolved: every id on stdout was acknowledged.
  process.stdout.write(`ack ${id}\n`);
}
