// The behavioural contract of EnrollmentStore (tokens, issuance, retirement, revocation), registered as node:test
// tests for any engine's harness, next to the DeviceStore contract.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import {
  CertificateNotFoundError,
  type Issuance,
  type RegistryStore,
  TokenNotFoundError,
  TokenUnusableError,
} from "./enrollment-types.ts";
import { MIGRATIONS } from "./migrations.ts";
import { type StoreHarness, storeTests } from "./store-contract.ts";
import { eventually } from "./testing/eventually.ts";
import { type Binding, type DeviceChange, InvalidDeviceError, StoreConflictError } from "./types.ts";

/** A StoreHarness whose stores are registries, and that can leave a database as an older Portcullis did. */
export interface EnrollmentHarness extends StoreHarness {
  open(): RegistryStore;
  /**
   * Migrates the fresh database to `version` only and writes one device bound by a cn there with plain SQL, as
   * a Portcullis of that schema version left it.
   */
  seedAtVersion(version: number, device: { readonly id: string; readonly cn: string }): Promise<void>;
}

const NOW = new Date("2030-01-01T00:00:00.000Z");
const LATER = (ms: number): Date => new Date(NOW.getTime() + ms);
const HOUR = 3_600_000;
const PROFILE = "devices";

const fp = (n: number): string => n.toString(16).padStart(64, "0");
const fpBinding = (n: number): Binding => ({ kind: "fingerprint", value: fp(n) });
const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");
const tokenId = (n: number): string => `tok_${n.toString(16).padStart(16, "0")}`;

/** The certificate number `n` of a device: serial and fingerprint derive from n. */
function certificate(n: number, deviceId: string, profile = PROFILE): Issuance["certificate"] {
  return {
    serial: n.toString(16),
    deviceId,
    profile,
    fingerprint: fp(n),
    subject: `CN=${deviceId}`,
    notBefore: NOW,
    notAfter: LATER(90 * 24 * HOUR),
    issuedAt: NOW,
    operation: "enroll",
    pem: `-----BEGIN CERTIFICATE-----\nMIIB${n}\n-----END CERTIFICATE-----\n`,
  };
}

/** An issuance creating the device, active in group "fleet". */
function firstIssuance(n: number, deviceId: string, token?: string): Issuance {
  return {
    certificate: certificate(n, deviceId),
    ...(token !== undefined && { tokenId: token }),
    expect: { absent: true },
    create: { status: "active", groups: ["fleet"] },
  };
}

async function createToken(
  store: RegistryStore,
  n: number,
  deviceId: string,
  expiresAt = LATER(HOUR),
): Promise<string> {
  const id = tokenId(n);
  await store.createEnrollmentToken({
    id,
    secretHash: sha256(`secret-${n}`),
    deviceId,
    profile: PROFILE,
    expiresAt,
  });
  return id;
}

/** Issues certificate n to the device as it is now (creating it when missing). */
async function issue(store: RegistryStore, n: number, deviceId: string, profile = PROFILE): Promise<void> {
  const device = await store.get(deviceId);
  await store.recordIssuance(
    {
      certificate: certificate(n, deviceId, profile),
      ...(device === undefined
        ? { expect: { absent: true }, create: { status: "active", groups: [] } }
        : { expect: { version: device.version } }),
    },
    NOW,
  );
}

export function registerEnrollmentContract(
  name: string,
  makeHarness: () => Promise<EnrollmentHarness>,
): void {
  const withRegistry = storeTests(makeHarness);

  describe(`EnrollmentStore contract: ${name}`, () => {
    test("migration 2 upgrades a version-1 database and keeps its devices and bindings", async () => {
      const harness = await makeHarness();
      const store = harness.open();
      try {
        await harness.seedAtVersion(1, { id: "old", cn: "old.example" });
        assert.deepEqual(await harness.migrationVersions(), [1]);
        await store.migrate();
        assert.deepEqual(
          await harness.migrationVersions(),
          MIGRATIONS.map((m) => m.version),
        );
        const old = await store.get("old");
        assert.deepEqual(old?.bindings, [{ kind: "cn", value: "old.example" }]);
        assert.equal((await store.findByBinding({ kind: "cn", value: "old.example" }))?.id, "old");
        assert.equal(await store.nextBindingRetirement(), undefined);
        // The old device renews onto a fingerprint binding, its name binding retiring later.
        await store.recordIssuance(
          {
            certificate: certificate(1, "old"),
            expect: { version: old?.version ?? 0 },
            retire: [{ binding: { kind: "cn", value: "old.example" }, at: LATER(HOUR) }],
          },
          NOW,
        );
        assert.deepEqual((await store.get("old"))?.bindings, [
          { kind: "cn", value: "old.example" },
          fpBinding(1),
        ]);
        assert.deepEqual(await store.nextBindingRetirement(), LATER(HOUR));
      } finally {
        await store.close();
        await harness.cleanup();
      }
    });

    withRegistry("enrollment tokens: create, find, list by page and device, revoke", async (store) => {
      const created = await store.createEnrollmentToken({
        id: tokenId(1),
        secretHash: sha256("s1"),
        deviceId: "dev-a",
        profile: PROFILE,
        expiresAt: LATER(HOUR),
      });
      assert.equal(created.id, tokenId(1));
      assert.equal(created.deviceId, "dev-a");
      assert.equal(created.profile, PROFILE);
      assert.deepEqual(created.expiresAt, LATER(HOUR));
      assert.equal(created.usedAt, undefined);
      assert.equal(created.revokedAt, undefined);
      assert.ok(created.createdAt instanceof Date);
      await createToken(store, 2, "dev-b");
      await createToken(store, 3, "dev-a");
      await assert.rejects(createToken(store, 1, "dev-c"), StoreConflictError);
      await assert.rejects(
        store.createEnrollmentToken({
          id: tokenId(9),
          secretHash: "not-a-hash",
          deviceId: "d",
          profile: PROFILE,
          expiresAt: NOW,
        }),
        InvalidDeviceError,
      );

      assert.deepEqual(await store.findEnrollmentToken(tokenId(1)), {
        token: created,
        secretHash: sha256("s1"),
      });
      assert.equal(await store.findEnrollmentToken("tok_unknown"), undefined);

      const first = await store.listEnrollmentTokens({ limit: 2 });
      assert.deepEqual(
        first.tokens.map((t) => t.id),
        [tokenId(1), tokenId(2)],
      );
      assert.equal(first.next, tokenId(2));
      const second = await store.listEnrollmentTokens({ limit: 2, after: first.next });
      assert.deepEqual(
        second.tokens.map((t) => t.id),
        [tokenId(3)],
      );
      assert.equal(second.next, undefined);
      const forA = await store.listEnrollmentTokens({ limit: 10, deviceId: "dev-a" });
      assert.deepEqual(
        forA.tokens.map((t) => t.id),
        [tokenId(1), tokenId(3)],
      );
      await assert.rejects(store.listEnrollmentTokens({ limit: 0 }), InvalidDeviceError);

      const revoked = await store.revokeEnrollmentToken(tokenId(1), NOW);
      assert.deepEqual(revoked.revokedAt, NOW);
      const again = await store.revokeEnrollmentToken(tokenId(1), LATER(HOUR));
      assert.deepEqual(again.revokedAt, NOW, "revoking twice keeps the first revocation");
      assert.deepEqual((await store.findEnrollmentToken(tokenId(1)))?.token.revokedAt, NOW);
      await assert.rejects(store.revokeEnrollmentToken("tok_unknown", NOW), TokenNotFoundError);
    });

    withRegistry("recordIssuance spends a token once; a refused token writes nothing", async (store) => {
      const changes: DeviceChange[] = [];
      store.onChange((c) => changes.push(c));
      const token = await createToken(store, 1, "dev-new");
      const issued = await store.recordIssuance(firstIssuance(1, "dev-new", token), NOW);
      assert.deepEqual(issued, {
        ...certificate(1, "dev-new"),
        revokedAt: undefined,
        revocationReason: undefined,
      });
      assert.deepEqual(await store.getIssuedCertificate("1"), issued);
      const device = await store.get("dev-new");
      assert.equal(device?.status, "active");
      assert.deepEqual(device?.groups, ["fleet"]);
      assert.deepEqual(device?.bindings, [fpBinding(1)]);
      assert.equal(device?.version, 1);
      assert.equal((await store.findByBinding(fpBinding(1)))?.id, "dev-new");
      assert.deepEqual((await store.findEnrollmentToken(token))?.token.usedAt, NOW);
      assert.deepEqual(changes, [
        { id: "dev-new", kind: "created", bindings: [fpBinding(1)], status: "active" },
      ]);

      // Spent: a second enrollment with it is refused and changes nothing.
      await assert.rejects(
        store.recordIssuance({ ...firstIssuance(2, "dev-new", token), expect: { version: 1 } }, NOW),
        (e: Error) => e instanceof TokenUnusableError && /used/.test(e.message),
      );
      assert.equal((await store.get("dev-new"))?.version, 1);
      assert.equal(await store.getIssuedCertificate("2"), undefined);
      assert.equal(await store.findByBinding(fpBinding(2)), undefined);

      const refusals: [string, Promise<string>, RegExp][] = [
        ["expired", createToken(store, 3, "dev-exp", NOW), /expired/],
        ["for another device", createToken(store, 4, "dev-other"), /for device dev-other/],
        [
          "revoked",
          createToken(store, 5, "dev-rev").then(
            async (id) => (await store.revokeEnrollmentToken(id, NOW)).id,
          ),
          /revoked/,
        ],
        ["unknown", Promise.resolve("tok_ffffffffffffffff"), /unknown/],
      ];
      for (const [n, [what, made, message]] of refusals.entries()) {
        const id = await made;
        const deviceId = `dev-refused-${n}`;
        const target = what === "expired" ? "dev-exp" : what === "revoked" ? "dev-rev" : deviceId;
        await assert.rejects(
          store.recordIssuance(firstIssuance(10 + n, target, id), NOW),
          (e: Error) => e instanceof TokenUnusableError && message.test(e.message),
          `a token ${what} is refused`,
        );
        assert.equal(await store.get(target), undefined, `no device for a token ${what}`);
        assert.equal(await store.getIssuedCertificate((10 + n).toString(16)), undefined);
        assert.equal(
          (await store.findEnrollmentToken(id))?.token.usedAt,
          undefined,
          `a token ${what} stays unspent`,
        );
      }

      // A good token and an issuance refused later in the transaction: nothing written, the token not spent.
      const good = await createToken(store, 6, "dev-late");
      await assert.rejects(
        store.recordIssuance(
          { ...firstIssuance(20, "dev-late", good), certificate: certificate(1, "dev-late") },
          NOW,
        ),
        StoreConflictError,
      );
      await assert.rejects(
        store.recordIssuance(
          {
            ...firstIssuance(21, "dev-late", good),
            retire: [{ binding: fpBinding(1), at: LATER(HOUR) }],
          },
          NOW,
        ),
        (e: Error) => e instanceof StoreConflictError && /dev-new/.test(e.message),
      );
      assert.equal((await store.findEnrollmentToken(good))?.token.usedAt, undefined);
      assert.equal(await store.get("dev-late"), undefined);
      assert.equal(await store.getIssuedCertificate((21).toString(16)), undefined);
      assert.deepEqual((await store.listIssuedCertificates({ limit: 10 })).certificates, [issued]);
      assert.equal(changes.length, 1, "refused issuances announce nothing");
    });

    withRegistry(
      "expect: absent creates the device, a version must match, bindings stay unique",
      async (store) => {
        const pending = await store.recordIssuance(
          {
            certificate: certificate(1, "fresh"),
            expect: { absent: true },
            create: { status: "pending", groups: ["new"] },
          },
          NOW,
        );
        assert.equal(pending.deviceId, "fresh");
        assert.deepEqual(await store.get("fresh").then((d) => [d?.status, d?.bindings]), [
          "pending",
          [fpBinding(1)],
        ]);
        await assert.rejects(store.recordIssuance(firstIssuance(2, "fresh"), NOW), StoreConflictError);
        await assert.rejects(
          store.recordIssuance({ certificate: certificate(2, "x"), expect: { absent: true } }, NOW),
          InvalidDeviceError,
          "create is required with expect absent",
        );

        const cn = { kind: "cn", value: "named.example" } as const;
        await store.create({ id: "named", status: "pending", bindings: [cn] });
        const changes: DeviceChange[] = [];
        store.onChange((c) => changes.push(c));
        const renewal = (n: number, version: number): Issuance => ({
          certificate: { ...certificate(n, "named"), operation: "reenroll" },
          expect: { version },
          status: "active",
          unbind: [cn],
        });
        await assert.rejects(store.recordIssuance(renewal(3, 7), NOW), (e: Error) => {
          return e instanceof StoreConflictError && /version 1, not 7/.test(e.message);
        });
        const untouched = await store.get("named");
        assert.deepEqual([untouched?.version, untouched?.status, untouched?.bindings], [1, "pending", [cn]]);
        assert.equal(await store.getIssuedCertificate("3"), undefined);
        assert.deepEqual(changes, []);

        await store.create({ id: "holder", bindings: [fpBinding(9)] }); // announced: changes[0]
        await assert.rejects(
          store.recordIssuance({ ...renewal(3, 1), certificate: certificate(9, "named") }, NOW),
          (e: Error) => e instanceof StoreConflictError && /holder/.test(e.message),
        );
        assert.equal((await store.findByBinding(fpBinding(9)))?.id, "holder");
        assert.equal((await store.get("named"))?.version, 1);

        const before = await store.get("named");
        await store.recordIssuance(renewal(3, 1), NOW);
        const after = await store.get("named");
        assert.deepEqual([after?.version, after?.status, after?.bindings], [2, "active", [fpBinding(3)]]);
        assert.ok((after?.updatedAt.getTime() ?? 0) >= (before?.updatedAt.getTime() ?? Infinity));
        assert.equal(await store.findByBinding(cn), undefined);
        assert.deepEqual(changes.slice(1), [
          { id: "named", kind: "updated", bindings: [cn, fpBinding(3)], status: "active" },
        ]);
        assert.equal((await store.getIssuedCertificate("3"))?.operation, "reenroll");

        await assert.rejects(
          store.recordIssuance({ certificate: certificate(4, "ghost"), expect: { version: 1 } }, NOW),
          StoreConflictError,
          "a device expected at a version must exist",
        );
        await assert.rejects(
          store.recordIssuance(
            { certificate: { ...certificate(5, "named"), serial: "3" }, expect: { version: 2 } },
            NOW,
          ),
          StoreConflictError,
          "a serial is recorded once",
        );
        assert.equal((await store.get("named"))?.version, 2);
      },
    );

    withRegistry(
      "retiring bindings: bound until their time, then removed and announced",
      async (store, open) => {
        const remote = await open();
        const far: DeviceChange[] = [];
        remote.onChange((c) => far.push(c));
        await store.recordIssuance(firstIssuance(1, "rot"), NOW);
        const v1 = await store.get("rot");
        const at = LATER(HOUR);
        await store.recordIssuance(
          {
            certificate: { ...certificate(2, "rot"), operation: "reenroll" },
            expect: { version: v1?.version ?? 0 },
            retire: [
              { binding: fpBinding(1), at },
              // A binding the device did not have yet (an older certificate known by name): added, retiring.
              { binding: fpBinding(100), at: LATER(2 * HOUR) },
            ],
          },
          NOW,
        );
        assert.deepEqual((await store.get("rot"))?.bindings, [fpBinding(1), fpBinding(2), fpBinding(100)]);
        assert.equal((await store.findByBinding(fpBinding(1)))?.id, "rot");
        assert.deepEqual(await store.nextBindingRetirement(), at);

        const local: DeviceChange[] = [];
        store.onChange((c) => local.push(c));
        assert.equal(await store.retireBindings(LATER(HOUR - 1)), 0);
        assert.deepEqual(local, []);
        const v2 = await store.get("rot");
        assert.equal(await store.retireBindings(at), 1);
        const v3 = await store.get("rot");
        assert.equal(await store.findByBinding(fpBinding(1)), undefined);
        assert.equal((await store.findByBinding(fpBinding(2)))?.id, "rot");
        assert.deepEqual(v3?.bindings, [fpBinding(2), fpBinding(100)]);
        assert.equal(v3?.version, (v2?.version ?? 0) + 1);
        assert.ok((v3?.updatedAt.getTime() ?? 0) >= (v2?.updatedAt.getTime() ?? Infinity));
        assert.deepEqual(local, [
          {
            id: "rot",
            kind: "updated",
            bindings: [fpBinding(1), fpBinding(2), fpBinding(100)],
            status: "active",
          },
        ]);
        assert.deepEqual(await store.nextBindingRetirement(), LATER(2 * HOUR));
        // Created, renewed, retired: the other instance hears all three.
        await eventually(() => far.length >= 3, 1000, "the retirement at the other instance");
        assert.deepEqual(far.at(-1), local[0]);

        // A renewal that binds a retiring fingerprint for good clears its retirement.
        await store.recordIssuance(
          { certificate: certificate(100, "rot"), expect: { version: v3?.version ?? 0 } },
          NOW,
        );
        assert.equal(await store.nextBindingRetirement(), undefined);
        assert.equal(await store.retireBindings(LATER(10 * HOUR)), 0);
        assert.equal((await store.findByBinding(fpBinding(100)))?.id, "rot");
      },
    );

    withRegistry(
      "revokeIssuedCertificate removes the binding at once, announced; idempotent",
      async (store, open) => {
        const remote = await open();
        const far: DeviceChange[] = [];
        remote.onChange((c) => far.push(c));
        await store.recordIssuance(firstIssuance(5, "rv"), NOW);
        const changes: DeviceChange[] = [];
        store.onChange((c) => changes.push(c));
        const before = await store.get("rv");
        const revoked = await store.revokeIssuedCertificate("5", "keyCompromise", LATER(1000));
        assert.deepEqual(revoked.revokedAt, LATER(1000));
        assert.equal(revoked.revocationReason, "keyCompromise");
        assert.deepEqual(await store.getIssuedCertificate("5"), revoked);
        assert.equal(await store.findByBinding(fpBinding(5)), undefined);
        const after = await store.get("rv");
        assert.deepEqual(after?.bindings, []);
        assert.equal(after?.version, (before?.version ?? 0) + 1);
        assert.deepEqual(changes, [
          { id: "rv", kind: "updated", bindings: [fpBinding(5)], status: "active" },
        ]);
        await eventually(() => far.length >= 2, 1000, "the revocation at the other instance");
        assert.deepEqual(far[1], changes[0]);

        const again = await store.revokeIssuedCertificate("5", "superseded", LATER(HOUR));
        assert.deepEqual(again, revoked, "a revoked certificate stays as it was revoked");
        assert.equal(changes.length, 1);
        assert.equal((await store.get("rv"))?.version, after?.version);
        await assert.rejects(
          store.revokeIssuedCertificate("abc", "keyCompromise", NOW),
          CertificateNotFoundError,
        );
        await assert.rejects(store.revokeIssuedCertificate("5", "", NOW), InvalidDeviceError);

        // The record outlives its device; revoking it then changes no device.
        await store.recordIssuance(firstIssuance(6, "gone"), NOW);
        await store.delete("gone");
        assert.equal(
          (await store.revokeIssuedCertificate("6", "cessationOfOperation", NOW)).deviceId,
          "gone",
        );
        assert.equal(changes.filter((c) => c.kind === "updated").length, 1);
      },
    );

    withRegistry(
      "listIssuedCertificates: filters on device, profile and revocation; keyset by serial",
      async (store) => {
        await issue(store, 0xa1, "d1");
        await issue(store, 0xa2, "d1", "gateways");
        await issue(store, 0xb1, "d2");
        await issue(store, 0xa3, "d1");
        await issue(store, 0xb2, "d2", "gateways");
        await store.revokeIssuedCertificate("a2", "superseded", NOW);
        await store.revokeIssuedCertificate("b1", "keyCompromise", NOW);
        const serials = async (query: Parameters<RegistryStore["listIssuedCertificates"]>[0]) =>
          (await store.listIssuedCertificates(query)).certificates.map((c) => c.serial);

        const seen: string[] = [];
        let after: string | undefined;
        let pages = 0;
        do {
          const page = await store.listIssuedCertificates({
            limit: 2,
            ...(after !== undefined && { after }),
          });
          seen.push(...page.certificates.map((c) => c.serial));
          after = page.next;
          pages++;
        } while (after !== undefined);
        assert.deepEqual(seen, ["a1", "a2", "a3", "b1", "b2"]);
        assert.equal(pages, 3);
        assert.equal((await store.listIssuedCertificates({ limit: 5 })).next, undefined);
        assert.deepEqual(await serials({ limit: 10, deviceId: "d1" }), ["a1", "a2", "a3"]);
        assert.deepEqual(await serials({ limit: 10, profile: "gateways" }), ["a2", "b2"]);
        assert.deepEqual(await serials({ limit: 10, revoked: true }), ["a2", "b1"]);
        assert.deepEqual(await serials({ limit: 10, revoked: false }), ["a1", "a3", "b2"]);
        assert.deepEqual(await serials({ limit: 10, profile: PROFILE, revoked: true }), ["b1"]);
        assert.deepEqual(await serials({ limit: 1, deviceId: "d1", after: "a1" }), ["a2"]);
        await assert.rejects(store.listIssuedCertificates({ limit: 0 }), InvalidDeviceError);
      },
    );

    withRegistry(
      "one token, concurrent issuances on two instances: exactly one succeeds",
      async (store, open) => {
        const other = await open();
        const token = await createToken(store, 1, "race");
        const stores = [store, other];
        const outcomes = await Promise.allSettled(
          Array.from({ length: 6 }, (_, i) =>
            (stores[i % 2] ?? store).recordIssuance(firstIssuance(1 + i, "race", token), NOW),
          ),
        );
        const won = outcomes.filter((o) => o.status === "fulfilled");
        const lost = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason as Error] : []));
        assert.equal(won.length, 1);
        assert.ok(
          lost.every((e) => e instanceof TokenUnusableError && /used/.test(e.message)),
          lost.map((e) => e.message).join("; "),
        );
        assert.equal((await store.listIssuedCertificates({ limit: 10 })).certificates.length, 1);
        assert.equal((await store.get("race"))?.bindings.length, 1);
      },
    );
  });
}
