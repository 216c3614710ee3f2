// The live half of the DeviceStore contract: concurrency, last-seen batches and change propagation.
import assert from "node:assert/strict";
import type { WithStore } from "./store-contract.ts";
import { eventually } from "./testing/eventually.ts";
import { type DeviceChange, StoreConflictError } from "./types.ts";

export function registerLiveCases(withStore: WithStore): void {
  withStore("20 concurrent updates of one device: version 21, no lost update", async (store, open) => {
    const other = await open();
    await store.create({ id: "hot", metadata: {} });
    const stores = [store, other];
    // Each writer appends its group with read-modify-write guarded by ifVersion, retrying on conflict.
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const s = stores[i % 2] ?? store;
        for (;;) {
          const current = await s.get("hot");
          assert.ok(current);
          try {
            await s.update("hot", { groups: [...current.groups, `g${i}`], ifVersion: current.version });
            return;
          } catch (error) {
            if (!(error instanceof StoreConflictError)) throw error;
          }
        }
      }),
    );
    const hot = await store.get("hot");
    assert.equal(hot?.version, 21);
    assert.equal(hot?.groups.length, 20);
    // Blind concurrent updates still increment atomically.
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => stores[i % 2]?.update("hot", { metadata: { i } })),
    );
    assert.equal((await store.get("hot"))?.version, 41);
  });

  withStore(
    "touch writes last seen in a batch, never backwards, without a version or change",
    async (store) => {
      await store.create({ id: "t1" });
      await store.create({ id: "t2" });
      const changes: DeviceChange[] = [];
      store.onChange((c) => changes.push(c));
      const t = new Date("2030-01-01T00:00:00.123Z");
      await store.touch(
        new Map([
          ["t1", t],
          ["t2", t],
          ["ghost", t],
        ]),
      );
      await store.touch(new Map([["t1", new Date(t.getTime() - 60_000)]]));
      await store.touch(new Map());
      const t1 = await store.get("t1");
      assert.equal(t1?.lastSeenAt?.getTime(), t.getTime());
      assert.equal(t1?.version, 1);
      assert.equal((await store.get("t2"))?.lastSeenAt?.getTime(), t.getTime());
      assert.deepEqual(changes, []);
    },
  );

  withStore("onChange: this instance at once, another instance within 1 s", async (store, open) => {
    const remote = await open();
    const local: DeviceChange[] = [];
    const far: DeviceChange[] = [];
    const stop = store.onChange((c) => local.push(c));
    remote.onChange((c) => far.push(c));
    const b1 = { kind: "cn", value: "c1" } as const;
    const b2 = { kind: "cn", value: "c2" } as const;
    await store.create({ id: "w", bindings: [b1] });
    assert.deepEqual(local, [{ id: "w", kind: "created", bindings: [b1], status: "active" }]);
    await store.update("w", { bindings: [b2], status: "suspended" });
    assert.deepEqual(local[1], { id: "w", kind: "updated", bindings: [b1, b2], status: "suspended" });
    await store.delete("w");
    assert.deepEqual(local[2], { id: "w", kind: "deleted", bindings: [b2] });
    await eventually(() => far.length >= 3, 1000, "three changes at the other instance");
    assert.deepEqual(far, local);
    stop();
    await store.create({ id: "quiet" });
    assert.equal(local.length, 3);
    // Changes made by the other instance come back here too.
    const back: DeviceChange[] = [];
    store.onChange((c) => back.push(c));
    await remote.update("quiet", { status: "revoked" });
    await eventually(() => back.length === 1, 1000, "the remote update");
    assert.equal(back[0]?.status, "revoked");
    assert.equal(store.health().ok, true);
  });
}
