// Device traffic while an admin imports 100,000 devices: one gateway process (`portcullis start`, a route
// with `registry: required`, the admin API on the same process), keep-alive device requests from a separate
// load process all along, and POST /devices/import of 100,000 devices (NDJSON) in the middle. Reported per
// store (SQLite, then PostgreSQL when reachable): device p99 latency of the requests sent while the import
// was in flight, against the reference measured in the same run — the p99 of the same connections in the
// seconds before the import.
//
// `--bin PATH` runs another build's bin/portcullis.js (e.g. an older checkout, for a before/after figure).
// PORTCULLIS_TEST_PG_URL picks the database (default postgres://postgres@127.0.0.1:5432/test);
// PORTCULLIS_BENCH_DEVICES the import size (default 100,000).
import { type ChildProcess, fork } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { Client } from "undici";
import { stringify } from "yaml";
import type { ConfigInput } from "../src/config/schema.ts";
import { type DemoPki, ensureDemoPki } from "../src/pki/demo-pki.ts";
import { quoteIdent } from "../src/registry/migrations.ts";
import {
  freePorts,
  killAllNow,
  ManagedProcess,
  ROOT,
  startFixedUpstream,
  stopAll,
  waitForPorts,
} from "./lib/servers.ts";

const DEVICES = Number(process.env.PORTCULLIS_BENCH_DEVICES ?? 100_000);
const PG_URL = process.env.PORTCULLIS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const CONCURRENCY = 8;
const WARMUP_MS = 1000;
const REFERENCE_MS = 3000;
const PATH = "/bench";
const HOST = "localhost";

// ---- the load process: keep-alive device requests until told to stop, each one timed ----

interface LoadStart {
  readonly kind: "start";
  readonly port: number;
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}
interface LoadSamples {
  readonly kind: "samples";
  /** Per request: when it was sent (epoch ms), its latency (ms) and its status (0: failed). */
  readonly sentAt: number[];
  readonly latencyMs: number[];
  readonly status: number[];
}

async function loadChild(): Promise<void> {
  let stopping = false;
  const sentAt: number[] = [];
  const latencyMs: number[] = [];
  const status: number[] = [];
  const loops: Promise<void>[] = [];
  const clients: Client[] = [];
  process.on("message", (message: LoadStart | { kind: "stop" }) => {
    if (message.kind === "start") {
      for (let i = 0; i < CONCURRENCY; i++) {
        const client = new Client(`https://127.0.0.1:${message.port}`, {
          connect: { servername: HOST, cert: message.cert, key: message.key, ca: message.ca },
          keepAliveTimeout: 60_000,
        });
        clients.push(client);
        loops.push(
          (async () => {
            while (!stopping) {
              const start = performance.now();
              let code = 0;
              try {
                const r = await client.request({ method: "GET", path: PATH, headers: { host: HOST } });
                await r.body.dump();
                code = r.statusCode;
              } catch {
                code = 0;
              }
              sentAt.push(performance.timeOrigin + start);
              latencyMs.push(performance.now() - start);
              status.push(code);
            }
          })(),
        );
      }
      return;
    }
    stopping = true;
    void Promise.all(loops).then(async () => {
      await Promise.all(clients.map((c) => c.close()));
      process.send?.({ kind: "samples", sentAt, latencyMs, status } satisfies LoadSamples, () =>
        process.exit(0),
      );
    });
  });
}

// ---- the benchmark ----

const { values: args } = parseArgs({
  options: {
    bin: { type: "string" },
    "no-postgres": { type: "boolean", default: false },
    load: { type: "boolean", default: false },
  },
  strict: true,
});

const progress = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const BIN = args.bin ?? join(ROOT, "bin", "portcullis.js");

function fleet(): string {
  const lines: string[] = [];
  for (let n = 0; n < DEVICES; n++) {
    lines.push(
      JSON.stringify({
        id: `fleet-${String(n).padStart(6, "0")}`,
        groups: [`site-${n % 16}`],
        bindings: [{ kind: "fingerprint", value: createHash("sha256").update(`fleet-${n}`).digest("hex") }],
      }),
    );
  }
  return `${lines.join("\n")}\n`;
}

interface Window {
  readonly requests: number;
  readonly failed: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

function window(samples: LoadSamples, from: number, to: number): Window {
  const latencies: number[] = [];
  let failed = 0;
  for (let i = 0; i < samples.sentAt.length; i++) {
    const at = samples.sentAt[i] as number;
    if (at < from || at > to) continue;
    if (samples.status[i] !== 200) failed++;
    latencies.push(samples.latencyMs[i] as number);
  }
  latencies.sort((a, b) => a - b);
  const pick = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  return {
    requests: latencies.length,
    failed,
    p50: pick(0.5),
    p99: pick(0.99),
    max: latencies.at(-1) ?? NaN,
  };
}

interface EngineResult {
  readonly name: string;
  readonly reference: Window;
  readonly during: Window;
  readonly importSeconds: number;
  readonly imported: number;
}

async function startGateway(pki: DemoPki, upstreamPort: number, storeUrl: string, tag: string) {
  const [port, adminPort] = await freePorts(2);
  if (port === undefined || adminPort === undefined) throw new Error("no free ports");
  const config: ConfigInput = {
    listeners: [
      {
        name: "main",
        host: "127.0.0.1",
        port,
        clientAuth: "application",
        certificates: [{ cert: pki.serverCert, key: pki.serverKey }],
        trustStores: ["devices"],
      },
    ],
    trustStores: [{ name: "devices", ca: [pki.caChain] }],
    services: [{ name: "upstream", targets: [`http://127.0.0.1:${upstreamPort}`] }],
    routes: [
      {
        name: "bench",
        paths: [PATH],
        service: "upstream",
        auth: { trustStores: ["devices"], registry: "required" },
      },
    ],
    admin: { host: "127.0.0.1", port: adminPort, tokenFile: pki.adminToken },
    store: { url: storeUrl },
    log: { level: "warn" },
  };
  const file = join(pki.dir, `portcullis-import-${tag}.yaml`);
  writeFileSync(file, stringify(config));
  const proc = ManagedProcess.spawn(
    `portcullis (${tag})`,
    process.execPath,
    [BIN, "start", "--config", file],
    ROOT,
  );
  await waitForPorts(proc, [port, adminPort]);
  return { proc, port, admin: `http://127.0.0.1:${adminPort}` };
}

async function runEngine(
  name: string,
  storeUrl: string,
  pki: DemoPki,
  upstreamPort: number,
  body: string,
): Promise<EngineResult> {
  const gw = await startGateway(pki, upstreamPort, storeUrl, name.toLowerCase());
  const token = readFileSync(pki.adminToken, "utf8").trim();
  const auth = { authorization: `Bearer ${token}` };
  const registered = await fetch(`${gw.admin}/devices`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ id: pki.deviceId, certificate: readFileSync(pki.deviceCert, "utf8") }),
  });
  if (registered.status !== 201)
    throw new Error(`registering the device: ${registered.status} ${await registered.text()}`);

  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ["--load"], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const samples = new Promise<LoadSamples>((resolve, reject) => {
    child.once("message", (m: LoadSamples) => resolve(m));
    child.once("exit", (code) => reject(new Error(`the load process exited (${code})`)));
  });
  child.send({
    kind: "start",
    port: gw.port,
    cert: readFileSync(pki.deviceCert, "utf8"),
    key: readFileSync(pki.deviceKey, "utf8"),
    ca: readFileSync(pki.caCert, "utf8"),
  } satisfies LoadStart);
  await sleep(WARMUP_MS);
  const referenceFrom = Date.now();
  await sleep(REFERENCE_MS);
  const importFrom = Date.now();
  const res = await fetch(`${gw.admin}/devices/import`, {
    method: "POST",
    headers: { ...auth, "content-type": "application/x-ndjson" },
    body,
  });
  const answer = (await res.json()) as { imported?: number };
  const importTo = Date.now();
  await sleep(500);
  child.send({ kind: "stop" });
  const all = await samples;
  const alive = gw.proc.alive;
  await gw.proc.stop();
  if (!alive) throw new Error(`${name}: the gateway died:\n${gw.proc.output()}`);
  if (res.status !== 200 || answer.imported !== DEVICES)
    throw new Error(`${name}: import answered ${res.status} ${JSON.stringify(answer).slice(0, 300)}`);
  const result: EngineResult = {
    name,
    reference: window(all, referenceFrom, importFrom),
    during: window(all, importFrom, importTo),
    importSeconds: (importTo - importFrom) / 1000,
    imported: answer.imported ?? 0,
  };
  progress(
    `  ${name}: import ${result.importSeconds.toFixed(1)} s; device p99 ${result.reference.p99.toFixed(1)} ms before, ${result.during.p99.toFixed(1)} ms during`,
  );
  return result;
}

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

function report(results: readonly EngineResult[]): string {
  const ms = (v: number) => `${v.toFixed(1).padStart(8)} ms`;
  const out = [
    `device traffic during POST /devices/import of ${DEVICES.toLocaleString("en-US")} devices — node ${process.version}, ${availableParallelism()} CPU(s), ${CONCURRENCY} keep-alive device connections${args.bin ? `, gateway ${args.bin}` : ""}`,
  ];
  for (const r of results) {
    const row = (label: string, value: string, note = "") => `    ${label.padEnd(44)} ${value}${note}`;
    out.push(
      `  ${r.name}`,
      row(
        "import (POST /devices/import, NDJSON)",
        `${r.importSeconds.toFixed(2).padStart(8)} s`,
        `  (${Math.round(r.imported / r.importSeconds).toLocaleString("en-US")} devices/s)`,
      ),
      row(
        "reference: device p99, no import",
        ms(r.reference.p99),
        `  (p50 ${r.reference.p50.toFixed(1)} ms, ${r.reference.requests} requests)`,
      ),
      row(
        "device p99 during the import",
        ms(r.during.p99),
        `  ${(r.during.p99 / r.reference.p99).toFixed(1)}× reference (p50 ${r.during.p50.toFixed(1)} ms, max ${r.during.max.toFixed(0)} ms, ${r.during.requests} requests${r.during.failed ? `, ${r.during.failed} failed` : ""})`,
      ),
    );
  }
  return out.join("\n");
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-bench-import-"));
  const schema = `portcullis_bench_${randomBytes(6).toString("hex")}`;
  const upstream = await startFixedUpstream();
  const cleanup = async () => {
    await stopAll();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", killAllNow);
  try {
    const pki = await ensureDemoPki(dir);
    const body = fleet();
    progress(`import body: ${DEVICES} lines, ${(body.length / 1048576).toFixed(1)} MiB`);
    const results = [await runEngine("SQLite", "sqlite:registry.db", pki, upstream.port, body)];
    if (!args["no-postgres"] && (await postgresReachable())) {
      const url = new URL(PG_URL);
      url.searchParams.set("schema", schema);
      try {
        results.push(await runEngine("PostgreSQL", url.href, pki, upstream.port, body));
      } finally {
        const admin = new pg.Client({ connectionString: PG_URL });
        await admin.connect();
        await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
        await admin.end();
      }
    } else progress("PostgreSQL skipped");
    process.stdout.write(`${report(results)}\n`);
  } finally {
    await cleanup();
  }
}

if (args.load) await loadChild();
else await main();
