// The console's queries in the DeviceStore contract: counts by status and id-prefix search.
import assert from "node:assert/strict";
import type { WithStore } from "./store-contract.ts";
import { InvalidDeviceError } from "./types.ts";

export function registerQueryCases(withStore: WithStore): void {
  withStore("countByStatus: every status, zeros included, follows changes", async (store) => {
    assert.deepEqual(await store.countByStatus(), { active: 0, suspended: 0, revoked: 0, pending: 0 });
    await store.importDevices(
      Array.from({ length: 30 }, (_, i) => ({
        id: `c-${i}`,
        status: i % 3 === 0 ? ("suspended" as const) : i % 5 === 0 ? ("pending" as const) : undefined,
      })),
    );
    assert.deepEqual(await store.countByStatus(), { active: 16, suspended: 10, revoked: 0, pending: 4 });
    await store.update("c-1", { status: "revoked" });
    await store.delete("c-0");
    assert.deepEqual(await store.countByStatus(), { active: 15, suspended: 9, revoked: 1, pending: 4 });
  });

  withStore("list: idPrefix matches id prefixes exactly, in id order, with keyset pages", async (store) => {
    const ids = [
      "dev",
      "dev-001",
      "dev-002",
      "dev-010",
      "dev.x",
      "dev_a",
      "deu-1",
      "dew-1",
      "Dev-001",
      "devz",
      "de",
      "dev-01%",
    ];
    for (const id of ids) await store.create({ id, status: id === "dev-002" ? "suspended" : "active" });
    const all = async (idPrefix: string, extra: { status?: "active" } = {}) => {
      const seen: string[] = [];
      let after: string | undefined;
      do {
        const page = await store.list({
          limit: 2,
          idPrefix,
          ...extra,
          ...(after !== undefined && { after }),
        });
        seen.push(...page.devices.map((d) => d.id));
        after = page.next;
      } while (after !== undefined);
      return seen;
    };
    assert.deepEqual(await all("dev-0"), ["dev-001", "dev-002", "dev-01%", "dev-010"]);
    assert.deepEqual(await all("dev"), [
      "dev",
      "dev-001",
      "dev-002",
      "dev-01%",
      "dev-010",
      "dev.x",
      "dev_a",
      "devz",
    ]);
    assert.deepEqual(await all("dev-0", { status: "active" }), ["dev-001", "dev-01%", "dev-010"]);
    // Case-sensitive, and characters special to LIKE (`_`, `%`) are plain characters.
    assert.deepEqual(await all("Dev"), ["Dev-001"]);
    assert.deepEqual(await all("dev_"), ["dev_a"]);
    assert.deepEqual(await all("dev-01%"), ["dev-01%"]);
    assert.deepEqual(await all("dev-0%"), []);
    assert.deepEqual(await all("nothing"), []);
    assert.deepEqual(await all("dev-010"), ["dev-010"]);
    await assert.rejects(store.list({ limit: 10, idPrefix: "" }), InvalidDeviceError);
  });
}
