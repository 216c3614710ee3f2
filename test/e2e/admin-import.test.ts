// POST /devices/import: NDJSON streamed in, all or nothing, problems named by line; 10,000 devices. The
// streamed answer (progress lines, then the result) and the CLI's progress display.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { AdminClient } from "../../src/admin/client.ts";
import { PROGRESS_INTERVAL_MS } from "../../src/admin/import.ts";
import { type AdminHarness, startAdmin, TEST_TOKEN } from "../../src/admin/testing/harness.ts";
import { MemoryDeviceStore } from "../../src/admin/testing/memory-store.ts";
import { importFile } from "../../src/cli/devices.ts";
import type { ImportOptions, NewDevice } from "../../src/registry/types.ts";
import { tempDir } from "../helpers/gateway-process.ts";

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

interface StreamedAnswer {
  status: number;
  contentType: string;
  body: string;
}

/**
 * Sends `chunks` with chunked transfer encoding (no content-length), as a streaming client does; `onData`
 * sees the answer's chunks as they arrive.
 */
function streamChunks(
  url: string,
  chunks: string[],
  headers: Record<string, string> = {},
  onData: (chunk: string) => void = () => undefined,
): Promise<StreamedAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/devices/import`,
      { method: "POST", headers: { ...NDJSON, ...headers, authorization: `Bearer ${TEST_TOKEN}` } },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          body += c;
          onData(c);
        });
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, contentType: String(res.headers["content-type"]), body }),
        );
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

/** A store whose import reports progress at a quarter, half and three quarters, pausing after each. */
class SlowImportStore extends MemoryDeviceStore {
  finished = false;

  override async importDevices(devices: readonly NewDevice[], options: ImportOptions = {}): Promise<number> {
    for (const quarter of [1, 2, 3]) {
      options.onProgress?.({ written: Math.floor((devices.length * quarter) / 4), total: devices.length });
      await sleep(PROGRESS_INTERVAL_MS + 50);
    }
    const imported = await super.importDevices(devices);
    this.finished = true;
    options.onProgress?.({ written: imported, total: imported });
    return imported;
  }
}

type Line = Record<string, unknown> & { phase: string };
const ndjsonLines = (body: string): Line[] =>
  body
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Line);
const ACCEPT_NDJSON = { accept: "application/x-ndjson" };

describe("admin API: bulk import, streamed answer (Accept: application/x-ndjson)", () => {
  let store: SlowImportStore;
  let admin: AdminHarness;
  before(async () => {
    store = new SlowImportStore();
    admin = await startAdmin({ store });
  });
  after(() => admin.close());

  test("progress lines while the import runs, then the result as the last line", async () => {
    const seen: { line: Line; storeFinished: boolean }[] = [];
    let partial = "";
    const r = await streamChunks(
      admin.url,
      [`${fleet(1000, "streamed", 2_000_000).join("\n")}\n`],
      ACCEPT_NDJSON,
      (c) => {
        partial += c;
        for (let nl = partial.indexOf("\n"); nl >= 0; nl = partial.indexOf("\n")) {
          seen.push({ line: JSON.parse(partial.slice(0, nl)) as Line, storeFinished: store.finished });
          partial = partial.slice(nl + 1);
        }
      },
    );
    assert.equal(r.status, 200);
    assert.match(r.contentType, /^application\/x-ndjson/);
    const lines = ndjsonLines(r.body);
    assert.match(lines.map((l) => l.phase[0]).join(""), /^v+w+d$/, JSON.stringify(lines));
    const validated = lines.filter((l) => l.phase === "validating").at(-1);
    assert.deepEqual([validated?.lines, validated?.errorCount], [1000, 0]);
    assert.ok(Number(validated?.bytes) > 1000 * 50);
    // The phase's start at once, then the store's progress, a line at most every PROGRESS_INTERVAL_MS.
    const writing = lines.filter((l) => l.phase === "writing").map((l) => Number(l.written));
    assert.equal(writing[0], 0);
    assert.ok(writing.includes(500) && writing.includes(750), JSON.stringify(writing));
    assert.deepEqual(
      writing,
      [...writing].sort((a, b) => a - b),
    );
    const { durationMs, ...result } = lines.at(-1) as Line;
    assert.deepEqual(result, { phase: "done", status: 200, imported: 1000 });
    assert.equal(typeof durationMs, "number");
    assert.ok(
      seen.some((s) => s.line.phase === "writing" && s.line.written === 500 && !s.storeFinished),
      "a progress line reached the client before the store finished",
    );
    assert.equal((await admin.call("GET", "/devices/streamed-00999")).status, 200);
  });

  test("a refused import ends with a failed line carrying the status and every line problem", async () => {
    const r = await streamChunks(
      admin.url,
      [`${JSON.stringify({ id: "ok-line" })}\n{oops\n${JSON.stringify({ id: "x", status: "on" })}\n`],
      ACCEPT_NDJSON,
    );
    assert.equal(r.status, 200, "the status line went out before the body was read");
    const lines = ndjsonLines(r.body);
    assert.match(lines.map((l) => l.phase[0]).join(""), /^v+f$/);
    const { durationMs, errors, ...failed } = lines.at(-1) as Line;
    assert.deepEqual(failed, {
      phase: "failed",
      status: 422,
      message: "2 problem(s) in the import; nothing was imported",
      imported: 0,
      errorCount: 2,
    });
    const problems = errors as ImportBody["errors"];
    assert.deepEqual(
      problems?.map((e) => [e.line, e.path]),
      [
        [2, undefined],
        [3, "status"],
      ],
    );
    assert.match(problems?.[0]?.message ?? "", /malformed JSON/);
    assert.equal(typeof durationMs, "number");
    assert.equal((await admin.call("GET", "/devices/ok-line")).status, 404);
  });

  test("a streamed body over the limit ends with a failed line, status 413", async () => {
    const small = await startAdmin({ maxImportBytes: 10_000 });
    try {
      const r = await streamChunks(
        small.url,
        fleet(1000).map((l) => `${l}\n`),
        ACCEPT_NDJSON,
      );
      const last = ndjsonLines(r.body).at(-1);
      assert.equal(last?.phase, "failed");
      assert.equal(last?.status, 413);
      assert.match(String(last?.message), /10000 bytes/);
      assert.equal((await small.call("GET", "/devices?limit=1")).text, '{"devices":[],"next":null}');
    } finally {
      await small.close();
    }
  });

  test("errors found before the body is read keep their status: 415 without the NDJSON content type", async () => {
    const wrong = await admin.call("POST", "/devices/import", { body: { id: "x" }, headers: ACCEPT_NDJSON });
    assert.equal(wrong.status, 415);
  });
});

describe("portcullis devices import: progress", () => {
  const tmp = tempDir();
  let admin: AdminHarness;
  let client: AdminClient;
  before(async () => {
    admin = await startAdmin({ store: new SlowImportStore() });
    client = new AdminClient({ url: admin.url, token: TEST_TOKEN });
  });
  after(async () => {
    await client.close();
    await admin.close();
    tmp.cleanup();
  });

  test("on a terminal, one line redrawn in place (sent, then writing N of T), then the summary", async () => {
    const file = join(tmp.dir, "tty.ndjson");
    writeFileSync(file, `${fleet(400, "tty", 3_000_000).join("\n")}\n`);
    let written = "";
    const imported = await importFile(client, file, { tty: true, write: (s) => (written += s) });
    assert.equal(imported, 400);
    const frames = written.split("\r\x1b[K").filter((f) => f !== "");
    assert.ok(frames.length >= 3, JSON.stringify(frames));
    assert.ok(
      frames.some((f) => /^sent \d+ lines, .*; writing \d+ of 400 devices$/.test(f)),
      JSON.stringify(frames),
    );
    assert.match(frames.at(-1) ?? "", /^sent 400 lines, 0\.\d of 0\.\d MiB in \d+\.\d s\n$/);
    assert.ok(
      frames.slice(0, -1).every((f) => !f.includes("\n")),
      "progress frames stay on one line",
    );
  });

  test("elsewhere, the summary line only", async () => {
    const file = join(tmp.dir, "pipe.ndjson");
    writeFileSync(file, `${fleet(40, "pipe", 4_000_000).join("\n")}\n`);
    let written = "";
    assert.equal(await importFile(client, file, { tty: false, write: (s) => (written += s) }), 40);
    assert.match(written, /^sent 40 lines, 0\.0 of 0\.0 MiB in \d+\.\d s\n$/);
  });
});
