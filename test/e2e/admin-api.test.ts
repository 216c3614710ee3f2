// Admin API against an in-memory store: error bodies with field paths, device CRUD with filters and keyset
// pagination, optimistic concurrency, and the limits on bodies.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type AdminHarness, startAdmin } from "../../src/admin/testing/harness.ts";
import { MemoryDeviceStore } from "../../src/admin/testing/memory-store.ts";
import { mint } from "../../src/identity/testing/mint.ts";

interface DeviceBody {
  id: string;
  status: string;
  groups: string[];
  bindings: { kind: string; value: string }[];
  metadata: Record<string, unknown>;
  version: number;
  lastSeenAt: string | null;
}
interface ErrorBody {
  message: string;
  errors?: { path: string; message: string }[];
}

const fp = (n: number) => n.toString(16).padStart(64, "0");

describe("admin API: devices", () => {
  let admin: AdminHarness;
  before(async () => {
    admin = await startAdmin();
  });
  after(() => admin.close());

  test("create answers 201 with Location and ETag; get returns the device; unknown device 404", async () => {
    const created = await admin.call<DeviceBody>("POST", "/devices", {
      body: { id: "dev-1", groups: ["sensors"], metadata: { site: "lab" } },
    });
    assert.equal(created.status, 201);
    assert.equal(created.headers.get("location"), "/devices/dev-1");
    assert.equal(created.headers.get("etag"), '"1"');
    assert.equal(created.json.status, "active");
    assert.equal(created.json.lastSeenAt, null);
    const got = await admin.call<DeviceBody>("GET", "/devices/dev-1");
    assert.equal(got.status, 200);
    assert.deepEqual(got.json, created.json);
    const missing = await admin.call<ErrorBody>("GET", "/devices/no-such-device");
    assert.equal(missing.status, 404);
    assert.match(missing.json.message, /no-such-device/);
    assert.equal((await admin.call("PATCH", "/devices/no-such", { body: { status: "active" } })).status, 404);
    assert.equal((await admin.call("DELETE", "/devices/no-such")).status, 404);
  });

  test("creating an existing id answers 409", async () => {
    await admin.call("POST", "/devices", { body: { id: "dup-1" } });
    const again = await admin.call<ErrorBody>("POST", "/devices", { body: { id: "dup-1" } });
    assert.equal(again.status, 409);
    assert.match(again.json.message, /dup-1/);
  });

  test("a PEM certificate becomes a fingerprint and an SPKI binding; a binding held by another device is 409", async () => {
    const leaf = await mint({ subject: "CN=cert-device" });
    const r = await admin.call<DeviceBody>("POST", "/devices", {
      body: { id: "cert-1", certificate: leaf.pem },
    });
    assert.equal(r.status, 201);
    assert.deepEqual(r.json.bindings, [
      { kind: "fingerprint", value: leaf.cert.fingerprint },
      { kind: "spki", value: leaf.cert.spkiSha256 },
    ]);
    const byBinding = await admin.call<{ devices: DeviceBody[] }>(
      "GET",
      `/devices?binding=${encodeURIComponent(`spki:${leaf.cert.spkiSha256}`)}`,
    );
    assert.deepEqual(
      byBinding.json.devices.map((d) => d.id),
      ["cert-1"],
    );
    const taken = await admin.call("POST", "/devices", { body: { id: "cert-2", certificate: leaf.pem } });
    assert.equal(taken.status, 409);
    const bad = await admin.call<ErrorBody>("POST", "/devices", {
      body: { id: "cert-3", certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" },
    });
    assert.equal(bad.status, 422);
    assert.equal(bad.json.errors?.[0]?.path, "certificate");
    const none = await admin.call<ErrorBody>("POST", "/devices", {
      body: { id: "cert-4", certificate: "hello" },
    });
    assert.equal(none.status, 422);
    assert.match(none.json.errors?.[0]?.message ?? "", /PEM/);
  });

  test("malformed JSON answers 400 with a message saying where it broke", async () => {
    const r = await admin.call<ErrorBody>("POST", "/devices", {
      raw: '{"id": "x",',
      headers: { "content-type": "application/json" },
    });
    assert.equal(r.status, 400);
    assert.match(r.json.message, /^Malformed JSON: .*(position|end)/i);
    const empty = await admin.call<ErrorBody>("PATCH", "/devices/dev-1", {
      raw: "",
      headers: { "content-type": "application/json" },
    });
    assert.equal(empty.status, 400);
    assert.match(empty.json.message, /empty/);
  });

  test("validation errors list each problem with its field path", async () => {
    const r = await admin.call<ErrorBody>("POST", "/devices", {
      body: {
        id: "ok-id",
        status: "sleeping",
        bindings: [
          { kind: "fingerprint", value: fp(1) },
          { kind: "serial", value: "1" },
          { kind: "fingerprint", value: "zz" },
        ],
        groups: ["fine", ""],
        colour: "blue",
      },
    });
    assert.equal(r.status, 422);
    const paths = (r.json.errors ?? []).map((e) => e.path).sort();
    assert.deepEqual(paths, ["bindings[1].kind", "bindings[2].value", "colour", "groups[1]", "status"]);
    const patch = await admin.call<ErrorBody>("PATCH", "/devices/dev-1", { body: { metadata: [] } });
    assert.equal(patch.status, 422);
    assert.equal(patch.json.errors?.[0]?.path, "metadata");
    const nothing = await admin.call<ErrorBody>("PATCH", "/devices/dev-1", { body: {} });
    assert.equal(nothing.status, 422);
    const query = await admin.call<ErrorBody>("GET", "/devices?limit=5000&status=on&binding=serial:1&x=1");
    assert.equal(query.status, 400);
    assert.deepEqual((query.json.errors ?? []).map((e) => e.path).sort(), [
      "binding",
      "limit",
      "status",
      "x",
    ]);
  });

  test("metadata nested 5,000 or 100,000 deep answers 422 at `metadata`, never 500", async () => {
    const nest = (open: string, close: string, n: number) => `${open.repeat(n)}1${close.repeat(n)}`;
    assert.equal((await admin.call("POST", "/devices", { body: { id: "deep-target" } })).status, 201);
    for (const n of [5_000, 100_000]) {
      for (const [open, close] of [
        ["[", "]"],
        ['{"a":', "}"],
      ] as const) {
        const deep = nest(open, close, n);
        const post = await admin.call<ErrorBody>("POST", "/devices", {
          raw: `{"id":"deep-${n}","metadata":{"m":${deep}}}`,
          headers: { "content-type": "application/json" },
        });
        assert.equal(post.status, 422, `POST ${n} ${open}: ${post.text.slice(0, 300)}`);
        assert.equal(post.json.errors?.length, 1, post.text.slice(0, 300));
        assert.equal(post.json.errors?.[0]?.path, "metadata");
        assert.match(
          post.json.errors?.[0]?.message ?? "",
          /at most 8 levels deep.*metadata\.m[[.].* is level 9/,
        );
        const patch = await admin.call<ErrorBody>("PATCH", "/devices/deep-target", {
          raw: `{"metadata":{"m":${deep}}}`,
          headers: { "content-type": "application/json" },
        });
        assert.equal(patch.status, 422, `PATCH ${n} ${open}: ${patch.text.slice(0, 300)}`);
        assert.equal(patch.json.errors?.[0]?.path, "metadata");
        // Deep nesting elsewhere in the body, or as the whole body, is refused without walking it either.
        const elsewhere = await admin.call<ErrorBody>("POST", "/devices", {
          raw: `{"id":"deep-x","colour":${deep}}`,
          headers: { "content-type": "application/json" },
        });
        assert.equal(elsewhere.status, 422);
        assert.equal(elsewhere.json.errors?.[0]?.path, "colour");
        const whole = await admin.call<ErrorBody>("POST", "/devices", {
          raw: deep,
          headers: { "content-type": "application/json" },
        });
        assert.equal(whole.status, 422, whole.text.slice(0, 300));
      }
    }
    assert.equal((await admin.call("GET", "/devices/deep-5000")).status, 404, "nothing was created");
    // The gateway is still answering.
    const target = await admin.call<DeviceBody>("GET", "/devices/deep-target");
    assert.equal(target.status, 200);
    assert.equal(target.json.version, 1, "the patches changed nothing");
  });

  test("metadata limits: 8 levels, 512 keys, 16 KiB of JSON; on create, patch and each import line", async () => {
    const nested = (levels: number) => {
      // Level 1 is the metadata object, then arrays at even levels and objects at odd ones.
      let value: unknown = "leaf";
      for (let level = levels; level >= 2; level--) value = level % 2 === 0 ? [value] : { k: value };
      return { k: value };
    };
    const ok = await admin.call<DeviceBody>("POST", "/devices", {
      body: { id: "meta-8", metadata: nested(8) },
    });
    assert.equal(ok.status, 201, ok.text);
    assert.deepEqual(ok.json.metadata, nested(8));
    const nine = await admin.call<ErrorBody>("POST", "/devices", {
      body: { id: "meta-9", metadata: nested(9) },
    });
    assert.equal(nine.status, 422);
    assert.deepEqual(nine.json.errors, [
      {
        path: "metadata",
        message:
          "metadata nests objects and arrays at most 8 levels deep (metadata itself is level 1); metadata.k[0].k[0].k[0].k[0] is level 9",
      },
    ]);

    const keys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
    const spread = { a: keys(300), b: keys(211) }; // 2 + 300 + 211 = 513 keys at every level
    const tooMany = await admin.call<ErrorBody>("POST", "/devices", {
      body: { id: "meta-k", metadata: spread },
    });
    assert.equal(tooMany.status, 422);
    assert.equal(tooMany.json.errors?.[0]?.path, "metadata");
    assert.match(tooMany.json.errors?.[0]?.message ?? "", /at most 512 keys/);
    const enough = await admin.call("POST", "/devices", { body: { id: "meta-512", metadata: keys(512) } });
    assert.equal(enough.status, 201, enough.text);

    const big = await admin.call<ErrorBody>("PATCH", "/devices/meta-8", {
      body: { metadata: { pad: "x".repeat(16 * 1024) } },
    });
    assert.equal(big.status, 422);
    assert.equal(big.json.errors?.[0]?.path, "metadata");
    assert.match(big.json.errors?.[0]?.message ?? "", /16384 bytes of JSON; this is 16394 bytes/);

    const lines = [
      JSON.stringify({ id: "imp-ok" }),
      `{"id":"imp-deep","metadata":{"m":${"[".repeat(20_000)}${"]".repeat(20_000)}}}`,
      JSON.stringify({ id: "imp-keys", metadata: spread }),
    ];
    const imported = await admin.call<{ imported: number; errors: { line: number; path?: string }[] }>(
      "POST",
      "/devices/import",
      { raw: `${lines.join("\n")}\n`, headers: { "content-type": "application/x-ndjson" } },
    );
    assert.equal(imported.status, 422, imported.text.slice(0, 300));
    assert.equal(imported.json.imported, 0);
    assert.deepEqual(
      imported.json.errors.map((e) => [e.line, e.path]),
      [
        [2, "metadata"],
        [3, "metadata"],
      ],
    );
  });

  test("list filters by status, group and binding, and pages by id", async () => {
    const store = new MemoryDeviceStore();
    const own = await startAdmin({ store });
    try {
      for (let i = 0; i < 25; i++) {
        const id = `node-${String(i).padStart(2, "0")}`;
        const r = await own.call("POST", "/devices", {
          body: {
            id,
            status: i % 5 === 0 ? "suspended" : "active",
            groups: i % 2 === 0 ? ["even"] : ["odd"],
            bindings: [{ kind: "fingerprint", value: fp(i + 1) }],
          },
        });
        assert.equal(r.status, 201);
      }
      type Page = { devices: DeviceBody[]; next: string | null };
      const ids: string[] = [];
      let after: string | null = null;
      let pages = 0;
      do {
        const q: string = after === null ? "" : `&after=${after}`;
        const page: { json: Page } = await own.call<Page>("GET", `/devices?limit=10${q}`);
        ids.push(...page.json.devices.map((d) => d.id));
        after = page.json.next;
        pages++;
      } while (after !== null);
      assert.equal(pages, 3);
      assert.equal(ids.length, 25);
      assert.deepEqual(ids, [...ids].sort());
      const suspended = await own.call<Page>("GET", "/devices?status=suspended");
      assert.deepEqual(
        suspended.json.devices.map((d) => d.id),
        ["node-00", "node-05", "node-10", "node-15", "node-20"],
      );
      const evenSuspended = await own.call<Page>("GET", "/devices?status=suspended&group=even");
      assert.deepEqual(
        evenSuspended.json.devices.map((d) => d.id),
        ["node-00", "node-10", "node-20"],
      );
      const upper = fp(8)
        .toUpperCase()
        .replace(/(..)(?!$)/g, "$1:");
      const byFp = await own.call<Page>("GET", `/devices?binding=fingerprint:${upper}`);
      assert.deepEqual(
        byFp.json.devices.map((d) => d.id),
        ["node-07"],
      );
      const defaultPage = await own.call<Page>("GET", "/devices");
      assert.equal(defaultPage.json.devices.length, 25);
      assert.equal(defaultPage.json.next, null);
    } finally {
      await own.close();
    }
  });

  test("patch changes fields and the version; If-Match or ifVersion at an old version answers 409", async () => {
    await admin.call("POST", "/devices", { body: { id: "patch-1", groups: ["a"] } });
    const suspended = await admin.call<DeviceBody>("PATCH", "/devices/patch-1", {
      body: { status: "suspended" },
      headers: { "if-match": '"1"' },
    });
    assert.equal(suspended.status, 200);
    assert.equal(suspended.json.status, "suspended");
    assert.deepEqual(suspended.json.groups, ["a"]);
    assert.equal(suspended.json.version, 2);
    assert.equal(suspended.headers.get("etag"), '"2"');
    const stale = await admin.call<ErrorBody>("PATCH", "/devices/patch-1", {
      body: { status: "active" },
      headers: { "if-match": '"1"' },
    });
    assert.equal(stale.status, 409);
    assert.match(stale.json.message, /version 2/);
    assert.equal(
      (await admin.call("PATCH", "/devices/patch-1", { body: { status: "active", ifVersion: 1 } })).status,
      409,
    );
    const both = await admin.call("PATCH", "/devices/patch-1", {
      body: { status: "active", ifVersion: 2 },
      headers: { "if-match": "3" },
    });
    assert.equal(both.status, 400);
    const garbage = await admin.call("PATCH", "/devices/patch-1", {
      body: { status: "active" },
      headers: { "if-match": "yesterday" },
    });
    assert.equal(garbage.status, 400);
    const groups = await admin.call<DeviceBody>("PATCH", "/devices/patch-1", {
      body: { groups: ["b", "c"], metadata: { floor: 2 }, ifVersion: 2 },
    });
    assert.equal(groups.status, 200);
    assert.deepEqual(groups.json.groups, ["b", "c"]);
    assert.deepEqual(groups.json.metadata, { floor: 2 });
    assert.equal(groups.json.status, "suspended");
    assert.equal(groups.json.version, 3);
  });

  test("20 concurrent read-modify-write PATCHes of one device end consistent: every change kept", async () => {
    await admin.call("POST", "/devices", { body: { id: "busy-1" } });
    const addGroup = async (group: string): Promise<number> => {
      for (let attempt = 1; ; attempt++) {
        const current = await admin.call<DeviceBody>("GET", "/devices/busy-1");
        const r = await admin.call("PATCH", "/devices/busy-1", {
          body: { groups: [...current.json.groups, group] },
          headers: { "if-match": current.headers.get("etag") ?? "" },
        });
        if (r.status === 200) return attempt;
        assert.equal(r.status, 409);
      }
    };
    const attempts = await Promise.all(Array.from({ length: 20 }, (_, i) => addGroup(`g${i}`)));
    const final = await admin.call<DeviceBody>("GET", "/devices/busy-1");
    assert.equal(final.json.groups.length, 20);
    assert.deepEqual(new Set(final.json.groups), new Set(Array.from({ length: 20 }, (_, i) => `g${i}`)));
    assert.equal(final.json.version, 21);
    assert.ok(
      attempts.some((n) => n > 1),
      "some PATCHes must have lost a race and retried",
    );
  });

  test("20 concurrent blind PATCHes: each answered 200, versions all distinct, the last one read back", async () => {
    await admin.call("POST", "/devices", { body: { id: "busy-2" } });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        admin.call<DeviceBody>("PATCH", "/devices/busy-2", { body: { metadata: { n: i } } }),
      ),
    );
    assert.ok(results.every((r) => r.status === 200));
    const versions = results.map((r) => r.json.version).sort((a, b) => a - b);
    assert.deepEqual(
      versions,
      Array.from({ length: 20 }, (_, i) => i + 2),
    );
    const last = results.find((r) => r.json.version === 21);
    const final = await admin.call<DeviceBody>("GET", "/devices/busy-2");
    assert.deepEqual(final.json.metadata, last?.json.metadata);
  });

  test("delete answers 204, then the device is gone", async () => {
    await admin.call("POST", "/devices", { body: { id: "gone-1" } });
    const r = await admin.call("DELETE", "/devices/gone-1");
    assert.equal(r.status, 204);
    assert.equal(r.text, "");
    assert.equal((await admin.call("GET", "/devices/gone-1")).status, 404);
  });

  test("wrong content type 415; body over the limit 413; store down 503", async () => {
    const r = await admin.call("POST", "/devices", {
      raw: '{"id":"x"}',
      headers: { "content-type": "text/plain" },
    });
    assert.equal(r.status, 415);
    const small = await startAdmin({ maxJsonBytes: 100 });
    try {
      const big = await small.call<ErrorBody>("POST", "/devices", {
        body: { id: "x", metadata: { pad: "x".repeat(200) } },
      });
      assert.equal(big.status, 413);
      assert.match(big.json.message, /100 bytes/);
    } finally {
      await small.close();
    }
    const store = new MemoryDeviceStore();
    const down = await startAdmin({ store });
    try {
      store.available = false;
      const list = await down.call<ErrorBody>("GET", "/devices");
      assert.equal(list.status, 503);
      assert.ok(list.headers.get("retry-after"));
      const status = await down.call<{ store: { ok: boolean; error?: string } }>("GET", "/status");
      assert.equal(status.status, 200);
      assert.equal(status.json.store.ok, false);
      assert.match(status.json.store.error ?? "", /off/);
    } finally {
      await down.close();
    }
  });
});
