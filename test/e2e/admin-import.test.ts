// POST /devices/import: NDJSON streamed in, all or nothing, problems named by line; 10,000 devices.
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, test } from "node:test";
import { type AdminHarness, startAdmin, TEST_TOKEN } from "../../src/admin/testing/harness.ts";

interface ImportBody {
  imported: number;
  message?: string;
  errors?: { line: number; path?: string; message: string }[];
  errorCount?: number;
}

const fp = (n: number) => n.toString(16).padStart(64, "0");
const NDJSON = { "content-type": "application/x-ndjson" };

/** `count` device lines; `prefix` keeps ids and fingerprints apart from other fleets. */
function fleet(count: number, prefix = "fleet", first = 1): string[] {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      id: `${prefix}-${String(i).padStart(5, "0")}`,
      groups: [i % 2 === 0 ? "even" : "odd"],
      bindings: [{ kind: "fingerprint", value: fp(first + i) }],
    }),
  );
}

/** Sends `chunks` with chunked transfer encoding (no content-length), as a streaming client does. */
function streamChunks(url: string, chunks: string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/devices/import`,
      { method: "POST", headers: { ...NDJSON, authorization: `Bearer ${TEST_TOKEN}` } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", (err) => ((err as NodeJS.ErrnoException).code === "EPIPE" ? undefined : reject(err)));
    let i = 0;
    const pump = () => {
      while (i < chunks.length) if (!req.write(chunks[i++])) return void req.once("drain", pump);
      req.end();
    };
    pump();
  });
}

describe("admin API: bulk import", () => {
  let admin: AdminHarness;
  before(async () => {
    admin = await startAdmin();
  });
  after(() => admin.close());

  test("10,000 devices with a few bad lines: 422 naming each line, nothing imported; fixed: all 10,000", async () => {
    const lines = fleet(10_000);
    const good = [...lines];
    lines[41] = "{not json";
    lines[4999] = JSON.stringify({ id: "fleet-bad", status: "sleeping" });
    lines[7000] = JSON.stringify({ id: "fleet-00001" });
    lines[9998] = JSON.stringify({ id: "fleet-x", bindings: [{ kind: "fingerprint", value: "12" }] });
    const startedAt = performance.now();
    const bad = await admin.call<ImportBody>("POST", "/devices/import", {
      raw: `${lines.join("\n")}\n`,
      headers: NDJSON,
    });
    assert.equal(bad.status, 422);
    assert.equal(bad.json.imported, 0);
    assert.equal(bad.json.errorCount, 4);
    assert.deepEqual(
      bad.json.errors?.map((e) => [e.line, e.path]),
      [
        [42, undefined],
        [5000, "status"],
        [7001, "id"],
        [9999, "bindings[0].value"],
      ],
    );
    assert.match(bad.json.errors?.[0]?.message ?? "", /malformed JSON/);
    assert.match(bad.json.errors?.[2]?.message ?? "", /duplicate id "fleet-00001" \(first on line 2\)/);
    const none = await admin.call<{ devices: unknown[] }>("GET", "/devices?limit=1");
    assert.equal(none.json.devices.length, 0);

    const ok = await admin.call<ImportBody>("POST", "/devices/import", {
      raw: `${good.join("\r\n")}\r\n\n`,
      headers: { "content-type": "application/x-ndjson; charset=utf-8" },
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.deepEqual(ok.json, { imported: 10_000 });
    const elapsed = performance.now() - startedAt;
    assert.ok(elapsed < 10_000, `two imports of 10,000 took ${Math.round(elapsed)} ms`);
    const odd = await admin.call<{ devices: { id: string }[]; next: string | null }>(
      "GET",
      "/devices?group=odd&limit=1000&after=fleet-09000",
    );
    assert.equal(odd.json.devices.length, 500);
    assert.equal(odd.json.next, null);
  });

  test("a device that exists already, or a binding held by another device, fails the whole batch by line", async () => {
    await admin.call("POST", "/devices", {
      body: { id: "present-1", bindings: [{ kind: "cn", value: "taken" }] },
    });
    const r = await admin.call<ImportBody>("POST", "/devices/import", {
      raw: [
        JSON.stringify({ id: "new-1" }),
        JSON.stringify({ id: "present-1" }),
        JSON.stringify({ id: "new-2", bindings: [{ kind: "cn", value: "taken" }] }),
      ].join("\n"),
      headers: NDJSON,
    });
    assert.equal(r.status, 422);
    assert.deepEqual(
      r.json.errors?.map((e) => e.line),
      [2, 3],
    );
    assert.match(r.json.errors?.[0]?.message ?? "", /present-1: device exists already/);
    assert.equal((await admin.call("GET", "/devices/new-1")).status, 404);
  });

  test("streamed in small chunks without content-length, lines split across chunks", async () => {
    const text = `${fleet(300, "chunked", 1_000_000).join("\n")}\n`;
    const chunks = text.match(/[\s\S]{1,7}/g) ?? [];
    const r = await streamChunks(admin.url, chunks);
    assert.equal(r.status, 200, r.body.slice(0, 500));
    assert.deepEqual(JSON.parse(r.body), { imported: 300 });
  });

  test("a body over the import limit is refused with 413, even when streamed without content-length", async () => {
    const small = await startAdmin({ maxImportBytes: 10_000 });
    try {
      const chunks = fleet(1000).map((l) => `${l}\n`);
      const streamed = await streamChunks(small.url, chunks);
      assert.equal(streamed.status, 413);
      assert.match(JSON.parse(streamed.body).message, /10000 bytes/);
      const declared = await small.call("POST", "/devices/import", { raw: chunks.join(""), headers: NDJSON });
      assert.equal(declared.status, 413);
      assert.equal((await small.call("GET", "/devices?limit=1")).text, '{"devices":[],"next":null}');
    } finally {
      await small.close();
    }
  });

  test("a line too long is one error, and the lines after it are still checked", async () => {
    const r = await admin.call<ImportBody>("POST", "/devices/import", {
      raw: [
        JSON.stringify({ id: "long-1", metadata: { pad: "x".repeat(200_000) } }),
        JSON.stringify({ id: "long-2", colour: 1 }),
      ].join("\n"),
      headers: NDJSON,
    });
    assert.equal(r.status, 422);
    assert.deepEqual(
      r.json.errors?.map((e) => [e.line, e.path]),
      [
        [1, undefined],
        [2, "colour"],
      ],
    );
    assert.match(r.json.errors?.[0]?.message ?? "", /longer than/);
  });

  test("JSON instead of NDJSON is 415; an empty body imports nothing", async () => {
    const wrong = await admin.call("POST", "/devices/import", { body: { id: "x" } });
    assert.equal(wrong.status, 415);
    assert.match(wrong.headers.get("accept") ?? "", /application\/x-ndjson/);
    const empty = await admin.call<ImportBody>("POST", "/devices/import", { raw: "\n\n", headers: NDJSON });
    assert.deepEqual(empty.json, { imported: 0 });
  });
});
