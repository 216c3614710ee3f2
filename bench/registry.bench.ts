// Device registry benchmark, SQLite (node:sqlite, WAL, a temp file) and PostgreSQL (a fresh schema on the
// test database, dropped after): import of 100,000 devices through the store's importDevices and through
// POST /devices/import (NDJSON over the admin API), then the request path's lookup cost with those
// 100,000 devices registered — a DeviceCache hit, and a miss (one indexed query) — each reported against a
// reference measured in the same run: a plain Map lookup for the hit, a bare `SELECT 1` round trip for the miss.
//
// PORTCULLIS_TEST_PG_URL picks the database (default postgres://postgres@127.0.0.1:5432/test);
// PORTCULLIS_BENCH_DEVICES the fleet size (default 100,000).
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { AdminServer } from "../src/admin/server.ts";
import { DecisionLog } from "../src/gateway/decision-log.ts";
import { GatewayMetrics } from "../src/gateway/metrics.ts";
import { DeviceCache } from "../src/registry/device-cache.ts";
import { quoteIdent } from "../src/registry/migrations.ts";
import { ANY_BINDING_SQL } from "../src/registry/postgres-rows.ts";
import { PostgresDeviceStore } from "../src/registry/postgres-store.ts";
import { SqliteDeviceStore } from "../src/registry/sqlite-store.ts";
import type { Binding, Device, DeviceStore, NewDevice } from "../src/registry/types.ts";
import { bindingKey } from "../src/registry/validate.ts";

const DEVICES = Number(process.env.PORTCULLIS_BENCH_DEVICES ?? 100_000);
const PG_URL = process.env.PORTCULLIS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const ROUNDS = 5;
const ROUND_MS = 300;
const TOKEN = randomBytes(16).toString("hex");

let sink = 0;

// ---- the fleet: bound as the admin API binds a certificate (fingerprint + SPKI) ----
const sha = (text: string) => createHash("sha256").update(text);
const fingerprintOf = (n: number) => sha(`bench-cert-${n}`).digest("hex");
const spkiOf = (n: number) => sha(`bench-key-${n}`).digest("base64");
const idOf = (n: number) => `bench-${String(n).padStart(6, "0")}`;

function device(n: number, prefix = ""): NewDevice {
  return {
    id: `${prefix}${idOf(n)}`,
    status: "active",
    bindings: [
      { kind: "fingerprint", value: fingerprintOf(n) },
      { kind: "spki", value: spkiOf(n) },
    ],
    groups: [`fleet-${n % 16}`],
    metadata: { site: `site-${n % 100}` },
  };
}

/** What the gateway asks for one certificate (bindingsOf): fingerprint, SPKI, SAN URI, CN. */
function candidates(n: number): Binding[] {
  return [
    { kind: "fingerprint", value: fingerprintOf(n) },
    { kind: "spki", value: spkiOf(n) },
    { kind: "uri", value: `urn:device:${idOf(n)}` },
    { kind: "cn", value: idOf(n) },
  ];
}

/** A fixed pseudo-random order of devices, the same for every measurement. */
const ORDER_SIZE = 65_536;
const order = Array.from({ length: ORDER_SIZE }, (_, i) => (i * 2_654_435_761) % DEVICES);
const candidateSets = order.map(candidates);

// ---- measuring ----
function median(samples: number[]): number {
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] ?? Number.NaN;
}

/** Median µs per synchronous operation over ROUNDS timed rounds, after a warm-up round. */
function measureSync(op: (i: number) => unknown): number {
  const samples: number[] = [];
  let i = 0;
  for (let round = -1; round < ROUNDS; round++) {
    let ops = 0;
    const start = performance.now();
    let elapsed = 0;
    while (elapsed < ROUND_MS) {
      for (let k = 0; k < 1024; k++) if (op(i++ & (ORDER_SIZE - 1))) sink++;
      ops += 1024;
      elapsed = performance.now() - start;
    }
    if (round >= 0) samples.push((elapsed * 1000) / ops);
  }
  return median(samples);
}

/** Median µs per awaited operation (one at a time: latency, not throughput). */
async function measureAsync(op: (i: number) => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  let i = 0;
  for (let round = -1; round < ROUNDS; round++) {
    let ops = 0;
    const start = performance.now();
    let elapsed = 0;
    while (elapsed < ROUND_MS) {
      if (await op(i++ & (ORDER_SIZE - 1))) sink++;
      ops++;
      elapsed = performance.now() - start;
    }
    if (round >= 0) samples.push((elapsed * 1000) / ops);
  }
  return median(samples);
}

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const start = performance.now();
  const value = await run();
  return { value, seconds: (performance.now() - start) / 1000 };
}

function expectDevice(found: unknown, n: number): boolean {
  const id = (found as Device | undefined)?.id;
  if (id !== idOf(n)) throw new Error(`lookup of ${idOf(n)} answered ${String(id)}`);
  return true;
}

// ---- one engine ----
interface EngineReport {
  readonly name: string;
  readonly importPerSecond: number;
  readonly importSeconds: number;
  readonly apiImportPerSecond: number;
  readonly apiImportSeconds: number;
  readonly mapUs: number;
  readonly hitUs: number;
  readonly select1Us: number;
  readonly missUs: number;
  readonly extras: readonly { readonly label: string; readonly us: number }[];
}

interface ExtraMeasure {
  readonly label: string;
  readonly op: (i: number) => Promise<unknown>;
}

/** POST /devices/import of `count` devices (ids with `prefix`, other bindings) into `store`. */
async function importThroughApi(store: DeviceStore, count: number): Promise<number> {
  const admin = new AdminServer({
    host: "127.0.0.1",
    port: 0,
    token: TOKEN,
    status: () => ({ status: "ok", version: "bench", uptimeSeconds: 0, listeners: [] }),
    store,
    decisions: new DecisionLog(10),
    metrics: new GatewayMetrics({ defaultMetrics: false }),
  });
  const { port } = await admin.listen("127.0.0.1", 0);
  try {
    const lines: string[] = [];
    for (let n = 0; n < count; n++) {
      const d = device(n + DEVICES, "api-");
      lines.push(JSON.stringify({ id: d.id, bindings: d.bindings, groups: d.groups, metadata: d.metadata }));
    }
    const res = await fetch(`http://127.0.0.1:${port}/devices/import`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/x-ndjson" },
      body: lines.join("\n"),
    });
    const body = (await res.json()) as { imported?: number; message?: string };
    if (res.status !== 200 || body.imported !== count) {
      throw new Error(`POST /devices/import: ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    }
    return count;
  } finally {
    await admin.close();
  }
}

async function runEngine(
  name: string,
  store: DeviceStore,
  select1: () => Promise<unknown>,
  extraMeasures: readonly ExtraMeasure[] = [],
): Promise<EngineReport> {
  await store.migrate();
  const fleet = Array.from({ length: DEVICES }, (_, n) => device(n));
  const imported = await timed(() => store.importDevices(fleet));
  if (imported.value !== DEVICES) throw new Error(`${name}: imported ${imported.value}`);
  const apiCount = Math.min(DEVICES, 100_000);
  const api = await timed(() => importThroughApi(store, apiCount));

  // Cache hit: every device of the fleet cached (warmed through the store), then the request path's lookup.
  const cache = new DeviceCache(store, {
    maxEntries: 4 * DEVICES,
    ttlMs: 3_600_000,
    negativeTtlMs: 5_000,
    outageGraceMs: 0,
  });
  const now = Date.now();
  for (let start = 0; start < DEVICES; start += 64) {
    const batch: Promise<unknown>[] = [];
    for (let n = start; n < Math.min(start + 64, DEVICES); n++) {
      const r = cache.lookup(candidates(n), now);
      batch.push(Promise.resolve(r).then((found) => expectDevice(found, n)));
    }
    await Promise.all(batch);
  }
  const reference = new Map<string, Device>();
  for (let n = 0; n < DEVICES; n++) {
    const found = cache.lookup(candidates(n), now);
    if (found instanceof Promise) throw new Error(`${name}: ${idOf(n)} not cached after warming`);
    expectDevice(found, n);
    reference.set(bindingKey({ kind: "fingerprint", value: fingerprintOf(n) }), found as Device);
  }
  const mapKeys = candidateSets.map((c) => bindingKey(c[0] as Binding));
  const mapUs = measureSync((i) => reference.get(mapKeys[i] as string));
  const hitUs = measureSync((i) => cache.lookup(candidateSets[i] as Binding[], now));
  cache.close();

  // Cache miss: a TTL of 0, so every lookup is one store query (findByAnyBinding, one indexed query).
  const cold = new DeviceCache(store, { maxEntries: 1024, ttlMs: 0, negativeTtlMs: 0, outageGraceMs: 0 });
  for (let i = 0; i < 256; i++)
    expectDevice(await cold.lookup(candidateSets[i] as Binding[], Date.now()), order[i] ?? -1);
  const select1Us = await measureAsync(select1);
  const missUs = await measureAsync(async (i) => cold.lookup(candidateSets[i] as Binding[], Date.now()));
  cold.close();
  const extras: { label: string; us: number }[] = [];
  for (const m of extraMeasures) extras.push({ label: m.label, us: await measureAsync(m.op) });
  await store.close();
  return {
    name,
    importPerSecond: DEVICES / imported.seconds,
    importSeconds: imported.seconds,
    apiImportPerSecond: apiCount / api.seconds,
    apiImportSeconds: api.seconds,
    mapUs,
    hitUs,
    select1Us,
    missUs,
    extras,
  };
}

async function sqliteRun(): Promise<EngineReport> {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-bench-registry-"));
  const file = join(dir, "registry.db");
  const reference = new DatabaseSync(file);
  try {
    const one = reference.prepare("SELECT 1 AS one");
    return await runEngine("SQLite", new SqliteDeviceStore(file), async () => one.get());
  } finally {
    reference.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function postgresRun(): Promise<EngineReport> {
  const schema = `portcullis_bench_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  const reference = new pg.Pool({ connectionString: PG_URL, max: 1, options: `-c search_path=${schema}` });
  // The store's lookup query as a named prepared statement: planned once per connection, not per query.
  const prepared: ExtraMeasure = {
    label: "same query, named prepared statement",
    op: async (i) => {
      const c = candidateSets[i] as Binding[];
      const r = await reference.query({
        name: "bench-any-binding",
        text: ANY_BINDING_SQL,
        values: [c.map((b) => b.kind), c.map((b) => b.value)],
      });
      return expectDevice(r.rows[0], order[i] ?? -1);
    },
  };
  try {
    return await runEngine(
      "PostgreSQL",
      new PostgresDeviceStore({ url: PG_URL, schema }),
      () => reference.query("SELECT 1 AS one"),
      [prepared],
    );
  } finally {
    await reference.end();
    await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
    await admin.end();
  }
}

// ---- the report ----
const us = (v: number) => `${v.toFixed(2).padStart(9)} µs/op`;
const rate = (v: number) => `${Math.round(v).toLocaleString("en-US").padStart(9)} devices/s`;

function report(r: EngineReport): string {
  const n = DEVICES.toLocaleString("en-US");
  const api = Math.min(DEVICES, 100_000).toLocaleString("en-US");
  const row = (label: string, value: string, note = "") => `    ${label.padEnd(44)} ${value}${note}`;
  return [
    `  ${r.name}`,
    row(`import ${n} (store.importDevices)`, rate(r.importPerSecond), `  (${r.importSeconds.toFixed(2)} s)`),
    row(
      `import ${api} more (POST /devices/import)`,
      rate(r.apiImportPerSecond),
      `  (${r.apiImportSeconds.toFixed(2)} s, NDJSON over HTTP)`,
    ),
    row(`reference: Map.get, ${n} keys`, us(r.mapUs)),
    row(
      "DeviceCache hit (4 candidate bindings)",
      us(r.hitUs),
      `   ${(r.hitUs / r.mapUs).toFixed(1)}× Map.get`,
    ),
    row("reference: SELECT 1 round trip", us(r.select1Us)),
    row(
      "DeviceCache miss (one indexed query)",
      us(r.missUs),
      `   ${(r.missUs / r.select1Us).toFixed(1)}× SELECT 1`,
    ),
    ...r.extras.map((e) => row(e.label, us(e.us), `   ${(e.us / r.select1Us).toFixed(1)}× SELECT 1`)),
  ].join("\n");
}

const started = performance.now();
const results = [await sqliteRun(), await postgresRun()];
process.stdout.write(
  [
    `device registry, ${DEVICES.toLocaleString("en-US")} devices (fingerprint + SPKI bindings each) — node ${process.version}, ${availableParallelism()} CPU(s), lookups: median of ${ROUNDS} × ${ROUND_MS} ms, one at a time`,
    ...results.map(report),
    `  total ${((performance.now() - started) / 1000).toFixed(1)} s`,
    "",
  ].join("\n"),
);
if (sink === 0) process.exitCode = 1;
