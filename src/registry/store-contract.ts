// The one behavioural contract of DeviceStore, registered as node:test tests for any engine's harness.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MIGRATIONS } from "./migrations.ts";
import { registerLiveCases } from "./store-contract-live.ts";
import { registerQueryCases } from "./store-contract-queries.ts";
import {
  DeviceExistsError,
  DeviceNotFoundError,
  type DeviceStore,
  type ImportProgress,
  ImportRejectedError,
  InvalidDeviceError,
  type NewDevice,
  StoreConflictError,
} from "./types.ts";

/** Registers one test that gets a migrated store on a fresh database (and `open` for more on the same one). */
export type WithStore = (
  title: string,
  body: (store: DeviceStore, open: () => Promise<DeviceStore>) => Promise<void>,
) => void;

/** A fresh, empty database (a temp file, a new schema) that several store instances can open. */
export interface StoreHarness {
  /** A new, not yet migrated store on this harness's database. */
  open(): DeviceStore;
  /** The versions recorded in schema_migrations, read directly. */
  migrationVersions(): Promise<number[]>;
  cleanup(): Promise<void>;
}

const fp = (n: number): string => n.toString(16).padStart(64, "0");

/**
 * Registers tests that each get a migrated store of type S on a fresh database (and `open` for more on the same
 * one), closing every store they opened and cleaning the database up, whatever the outcome.
 */
export function storeTests<S extends DeviceStore>(
  makeHarness: () => Promise<{ open(): S; cleanup(): Promise<void> }>,
): (title: string, body: (store: S, open: () => Promise<S>) => Promise<void>) => void {
  return (title, body) =>
    test(title, async () => {
      const harness = await makeHarness();
      const opened: S[] = [];
      const open = async (): Promise<S> => {
        const store = harness.open();
        opened.push(store);
        await store.migrate();
        return store;
      };
      try {
        await body(await open(), open);
      } finally {
        for (const store of opened) await store.close();
        await harness.cleanup();
      }
    });
}

export function registerStoreContract(name: string, makeHarness: () => Promise<StoreHarness>): void {
  const withStore: WithStore = storeTests(makeHarness);

  describe(`DeviceStore contract: ${name}`, () => {
    test("migrations are idempotent: twice on one instance, then from a second instance", async () => {
      const harness = await makeHarness();
      const a = harness.open();
      const b = harness.open();
      try {
        await a.migrate();
        await a.migrate();
        await b.migrate();
        assert.deepEqual(
          await harness.migrationVersions(),
          MIGRATIONS.map((m) => m.version),
        );
        await a.create({ id: "d1" });
        await b.migrate();
        assert.ok(await b.get("d1"), "re-running migrations keeps the data");
      } finally {
        await a.close();
        await b.close();
        await harness.cleanup();
      }
    });

    withStore("create, get, findByBinding, update, delete", async (store) => {
      const created = await store.create({
        id: "dev-1",
        bindings: [
          {
            kind: "fingerprint",
            value: fp(1)
              .toUpperCase()
              .replace(/(..)(?!$)/g, "$1:"),
          },
          { kind: "cn", value: "dev-1.example" },
        ],
        groups: ["sensors", "eu"],
        metadata: { model: "t1000", nested: { a: [1, 2] } },
      });
      assert.equal(created.status, "active");
      assert.equal(created.version, 1);
      assert.equal(created.lastSeenAt, undefined);
      assert.deepEqual(created.bindings, [
        { kind: "fingerprint", value: fp(1) },
        { kind: "cn", value: "dev-1.example" },
      ]);
      assert.deepEqual(await store.get("dev-1"), created);
      assert.deepEqual(await store.findByBinding({ kind: "fingerprint", value: fp(1) }), created);
      assert.deepEqual(await store.findByBinding({ kind: "cn", value: "dev-1.example" }), created);
      assert.equal(await store.findByBinding({ kind: "cn", value: "DEV-1.example" }), undefined);
      assert.equal(await store.get("nope"), undefined);
      await assert.rejects(store.create({ id: "dev-1" }), DeviceExistsError);
      await assert.rejects(store.create({ id: "" }), InvalidDeviceError);
      await assert.rejects(store.create({ id: "x", status: "gone" as "active" }), InvalidDeviceError);

      const updated = await store.update("dev-1", { status: "suspended", groups: ["eu"] });
      assert.equal(updated.status, "suspended");
      assert.deepEqual(updated.groups, ["eu"]);
      assert.deepEqual(updated.metadata, created.metadata);
      assert.deepEqual(updated.bindings, created.bindings);
      assert.equal(updated.version, 2);
      assert.ok(updated.updatedAt.getTime() >= created.updatedAt.getTime());
      await assert.rejects(store.update("nope", { status: "active" }), DeviceNotFoundError);

      await store.delete("dev-1");
      assert.equal(await store.get("dev-1"), undefined);
      assert.equal(await store.findByBinding({ kind: "cn", value: "dev-1.example" }), undefined);
      await assert.rejects(store.delete("dev-1"), DeviceNotFoundError);
    });

    withStore(
      "findByAnyBinding takes the first candidate, in the given order, that is bound",
      async (store) => {
        await store.create({ id: "a", bindings: [{ kind: "cn", value: "shared-cn" }] });
        await store.create({ id: "b", bindings: [{ kind: "fingerprint", value: fp(2) }] });
        const any = store.findByAnyBinding?.bind(store);
        assert.ok(any, "both engines implement findByAnyBinding");
        const fpB = { kind: "fingerprint", value: fp(2) } as const;
        const cnA = { kind: "cn", value: "shared-cn" } as const;
        assert.equal((await any([{ kind: "fingerprint", value: fp(9) }, fpB, cnA]))?.id, "b");
        assert.equal((await any([cnA, fpB]))?.id, "a");
        assert.equal(await any([{ kind: "dns", value: "x" }]), undefined);
        assert.equal(await any([]), undefined);
      },
    );

    withStore("one binding maps to one device", async (store) => {
      await store.create({ id: "owner", bindings: [{ kind: "uri", value: "spiffe://fleet/owner" }] });
      await assert.rejects(
        store.create({ id: "thief", bindings: [{ kind: "uri", value: "spiffe://fleet/owner" }] }),
        (e: Error) => e instanceof StoreConflictError && /owner/.test(e.message),
      );
      assert.equal(await store.get("thief"), undefined, "a refused create leaves nothing behind");
      await store.create({ id: "other" });
      await assert.rejects(
        store.update("other", { bindings: [{ kind: "uri", value: "spiffe://fleet/owner" }] }),
        (e: Error) => e instanceof StoreConflictError && /owner/.test(e.message),
      );
      // Re-stating one's own binding is no conflict; freeing it lets another device take it.
      await store.update("owner", { bindings: [{ kind: "uri", value: "spiffe://fleet/owner" }] });
      await store.delete("owner");
      const other = await store.update("other", {
        bindings: [{ kind: "uri", value: "spiffe://fleet/owner" }],
      });
      assert.deepEqual(other.bindings, [{ kind: "uri", value: "spiffe://fleet/owner" }]);
      await assert.rejects(
        store.create({
          id: "dup",
          bindings: [
            { kind: "dns", value: "a" },
            { kind: "dns", value: "a" },
          ],
        }),
        InvalidDeviceError,
      );
    });

    withStore("list: keyset pagination by id and filters on status, group and binding", async (store) => {
      const ids = Array.from({ length: 25 }, (_, i) => `dev-${String(i).padStart(2, "0")}`);
      for (const [i, id] of ids.entries()) {
        await store.create({
          id,
          status: i % 5 === 0 ? "suspended" : "active",
          groups: i % 2 === 0 ? ["even"] : ["odd"],
          bindings: [{ kind: "dns", value: `${id}.fleet` }],
        });
      }
      await store.create({ id: "A-upper" }); // byte order: upper case sorts before "dev-"
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      do {
        const page = await store.list({ limit: 10, ...(after !== undefined && { after }) });
        seen.push(...page.devices.map((d) => d.id));
        after = page.next;
        pages++;
      } while (after !== undefined);
      assert.deepEqual(seen, ["A-upper", ...ids]);
      assert.equal(pages, 3);
      const exact = await store.list({ limit: 26 });
      assert.equal(exact.next, undefined, "a page that ends exactly at the last device has no next");

      const suspended = await store.list({ limit: 100, status: "suspended" });
      assert.deepEqual(
        suspended.devices.map((d) => d.id),
        ids.filter((_, i) => i % 5 === 0),
      );
      const evenActive = await store.list({ limit: 3, status: "active", group: "even" });
      assert.deepEqual(
        evenActive.devices.map((d) => d.id),
        ["dev-02", "dev-04", "dev-06"],
      );
      const next = await store.list({ limit: 3, status: "active", group: "even", after: evenActive.next });
      assert.deepEqual(
        next.devices.map((d) => d.id),
        ["dev-08", "dev-12", "dev-14"],
      );
      const byBinding = await store.list({ limit: 10, binding: { kind: "dns", value: "dev-07.fleet" } });
      assert.deepEqual(
        byBinding.devices.map((d) => d.id),
        ["dev-07"],
      );
      assert.deepEqual((await store.list({ limit: 10, group: "none" })).devices, []);
      await assert.rejects(store.list({ limit: 0 }), InvalidDeviceError);
    });

    withStore("importDevices is all or nothing and names every failing device", async (store) => {
      await store.create({ id: "exists", bindings: [{ kind: "cn", value: "taken" }] });
      const batch: NewDevice[] = [
        { id: "ok-1", groups: ["import"] },
        { id: "bad-status", status: "unknown" as "active" },
        { id: "exists" },
        { id: "steals", bindings: [{ kind: "cn", value: "taken" }] },
        { id: "ok-2", bindings: [{ kind: "fingerprint", value: "not-hex" }] },
        { id: "ok-1" },
      ];
      const error = await store.importDevices(batch).then(
        () => assert.fail("import should be refused"),
        (e: unknown) => e,
      );
      assert.ok(error instanceof ImportRejectedError);
      assert.deepEqual(
        error.failures.map((f) => [f.index, f.id]),
        [
          [1, "bad-status"],
          [2, "exists"],
          [3, "steals"],
          [4, "ok-2"],
          [5, "ok-1"],
        ],
      );
      assert.match(error.failures.find((f) => f.index === 3)?.message ?? "", /exists/);
      assert.equal(await store.get("ok-1"), undefined, "nothing of a refused batch is imported");
      assert.equal((await store.list({ limit: 10 })).devices.length, 1);

      const many = Array.from({ length: 250 }, (_, i) => ({
        id: `imp-${i}`,
        bindings: [{ kind: "fingerprint" as const, value: fp(1000 + i) }],
      }));
      assert.equal(await store.importDevices(many), 250);
      assert.equal((await store.findByBinding({ kind: "fingerprint", value: fp(1249) }))?.id, "imp-249");
      assert.equal(await store.importDevices([]), 0);
    });

    withStore(
      "a large import: reads go on and see none of it before it commits; writes meanwhile wait or are refused cleanly",
      async (store) => {
        await store.create({ id: "early", bindings: [{ kind: "cn", value: "early" }] });
        const count = 5000;
        const batch: NewDevice[] = Array.from({ length: count }, (_, i) => ({
          id: `bulk-${String(i).padStart(5, "0")}`,
          bindings: [
            { kind: "fingerprint" as const, value: fp(50_000 + i) },
            ...(i === 0 ? [{ kind: "cn" as const, value: "contested" }] : []),
          ],
        }));
        const progress: ImportProgress[] = [];
        let midway: () => void = () => undefined;
        const started = new Promise<void>((resolve) => {
          midway = resolve;
        });
        let importDone = false;
        const importing = store
          .importDevices(batch, {
            onProgress: (p) => {
              progress.push(p);
              if (p.written < p.total) midway();
            },
          })
          .finally(() => {
            importDone = true;
          });
        await started;

        // Part of the batch is written: reads are answered (before the import ends), without any of it.
        assert.equal((await store.get("early"))?.id, "early");
        assert.equal(await store.findByBinding({ kind: "fingerprint", value: fp(50_000) }), undefined);
        assert.equal(await store.get("bulk-00000"), undefined, "nothing is visible before the commit");
        assert.equal(importDone, false, "the reads were answered while the import was in flight");

        // Writes meanwhile: unrelated ones succeed; one taking a binding of the batch, or an id of it, is
        // refused (after the import committed, or when it finds the import's uncommitted row).
        const settle = <T>(p: Promise<T>) =>
          p.then(
            (value) => ({ ok: true as const, value }),
            (error: unknown) => ({ ok: false as const, error }),
          );
        const [imported, during, rival, patched, again] = await Promise.all([
          importing,
          settle(store.create({ id: "during" })),
          settle(store.create({ id: "rival", bindings: [{ kind: "cn", value: "contested" }] })),
          settle(store.update("early", { status: "suspended" })),
          settle(store.importDevices([{ id: "bulk-00001" }])),
        ]);
        assert.equal(imported, count);
        assert.ok(during.ok, "an unrelated create succeeds");
        assert.ok(!rival.ok && rival.error instanceof StoreConflictError, "the contested binding is refused");
        assert.ok(patched.ok && patched.value.version === 2, "an update of another device succeeds");
        assert.ok(
          !again.ok &&
            (again.error instanceof ImportRejectedError || again.error instanceof StoreConflictError),
          "a second import of an id of the first is refused",
        );

        // No partial import, nothing lost, each binding owned once.
        assert.equal(await store.get("rival"), undefined);
        assert.equal((await store.findByBinding({ kind: "cn", value: "contested" }))?.id, "bulk-00000");
        assert.equal((await store.get("early"))?.status, "suspended");
        const all = await store.list({ limit: count + 10 });
        assert.equal(all.devices.length, count + 2);
        assert.equal(
          (await store.findByBinding({ kind: "fingerprint", value: fp(50_000 + count - 1) }))?.id,
          "bulk-04999",
        );

        // Progress: in order, partial first, the whole batch last.
        assert.ok(progress.length >= 2);
        assert.ok(
          progress.every((p, i) => p.total === count && p.written >= (progress[i - 1]?.written ?? 0)),
        );
        assert.deepEqual(progress.at(-1), { written: count, total: count });
      },
    );

    withStore("ifVersion: a stale version is a conflict and changes nothing", async (store) => {
      await store.create({ id: "v" });
      const v2 = await store.update("v", { status: "pending", ifVersion: 1 });
      assert.equal(v2.version, 2);
      await assert.rejects(store.update("v", { status: "revoked", ifVersion: 1 }), StoreConflictError);
      const now = await store.get("v");
      assert.equal(now?.status, "pending");
      assert.equal(now?.version, 2);
    });

    registerLiveCases(withStore);
    registerQueryCases(withStore);
  });
}
