// A device fleet against `portcullis start --workers N`: (a) 100,000 idle authenticated devices (mTLS with
// the demo device certificate, one request each, then idle), with the gateway's total memory (RSS of the
// primary and its workers) and its CPU while they idle; (b) a reconnect storm: 10,000 of them drop and
// reconnect all at once, with full handshakes, then again resuming their TLS sessions. Not part of
// `npm test`; `npm run bench -- fleet` runs it (build first: it runs bin/portcullis.js, i.e. dist/).
// Scaled down: FLEET_DEVICES=10000 npm run bench -- fleet, or node bench/fleet.bench.ts --devices 10000.
import { spawn } from "node:child_process";
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { connect as netConnect } from "node:net";
import { availableParallelism, cpus, freemem, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type AttemptSummary, FleetDevices } from "./lib/fleet-devices.ts";
import { cpuMsOf, openFiles, pssKiBOf, rssKiBOf, withChildren } from "./lib/fleet-proc.ts";
import type { FleetTarget } from "./lib/fleet-protocol.ts";
import { FLEET_PATH, prepareFleet, refusalCounters, startFixedUpstream } from "./lib/fleet-setup.ts";
import { killChildren } from "./lib/ipc-child.ts";

const USAGE = `usage: node bench/fleet.bench.ts [--devices N] [--storm N] [--workers N] [--protocol h1|h2] [--json]
  --devices     idle devices to hold (default 100000; env FLEET_DEVICES)
  --storm       devices of the fleet that reconnect at once, twice (default 10000; env FLEET_STORM; 0: none)
  --workers     gateway workers (default: enough for the file limit, at least 6; env FLEET_WORKERS)
  --protocol    h1 (HTTP/1.1, default) or h2
  --concurrency handshakes in flight while the fleet connects (default 128)
  --hold        seconds the connected fleet idles before it is measured (default 10)
  --handshake-timeout  the listener's handshakeTimeout, e.g. 60s (default: the gateway's, 10s)
  --out         directory for fleet-<date>.json and .md (default bench/results)
  --json        print the results as JSON (progress still goes to stderr)`;

const env = process.env;
const { values: args } = parseArgs({
  options: {
    devices: { type: "string", default: env.FLEET_DEVICES ?? "100000" },
    storm: { type: "string", default: env.FLEET_STORM ?? "10000" },
    workers: { type: "string", default: env.FLEET_WORKERS },
    protocol: { type: "string", default: "h1" },
    concurrency: { type: "string", default: "128" },
    hold: { type: "string", default: "10" },
    "handshake-timeout": { type: "string" },
    out: { type: "string", default: fileURLToPath(new URL("./results", import.meta.url)) },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const progress = (line: string) =>
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The soft limit on open files of this process (its children inherit it). */
function fileLimit(): number {
  const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync("/proc/self/limits", "utf8"));
  return line?.[1] === undefined || line[1] === "unlimited" ? 1_048_576 : Number(line[1]);
}

const FILE_LIMIT = fileLimit();
/** Files a process keeps for itself (listeners, pipes, upstream pool, store): the rest may be devices. */
const FILE_MARGIN = 1_000;
const PER_PROCESS = FILE_LIMIT - FILE_MARGIN;
const DEVICES = Number(args.devices);
const STORM = Number(args.storm);
const WORKERS = Number(args.workers ?? Math.max(6, Math.ceil(DEVICES / (PER_PROCESS * 0.8))));
// At least one per core and then some: a device process is one thread, and devices do not share a CPU.
const DEVICE_PROCESSES = Math.max(
  Math.min(DEVICES, 2 * availableParallelism()),
  Math.ceil(DEVICES / Math.min(12_500, PER_PROCESS)),
);
const CONCURRENCY = Number(args.concurrency);
const HOLD_MS = Number(args.hold) * 1000;
/** Memory the machine keeps free (MiB): below it, the fleet stops growing and the run says so. */
const MIN_FREE_MIB = 1_500;
const PROTOCOL: FleetTarget["protocol"] = args.protocol === "h2" ? "h2" : "http/1.1";
if (
  !(DEVICES >= 1 && STORM >= 0 && STORM <= DEVICES && WORKERS >= 1 && CONCURRENCY >= 1 && HOLD_MS >= 0) ||
  !["h1", "h2"].includes(args.protocol)
) {
  console.error(USAGE);
  process.exit(2);
}
if (Math.ceil(DEVICES / WORKERS) > PER_PROCESS) {
  console.error(
    `${DEVICES} devices over ${WORKERS} workers is ${Math.ceil(DEVICES / WORKERS)} connections per worker, ` +
      `over the file limit (${FILE_LIMIT} per process, ${FILE_MARGIN} kept aside): use more --workers`,
  );
  process.exit(2);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A free loopback port (bound to 0, then released). */
async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Newest modification time under a directory (files ending in `suffix`), in ms. */
function newest(dir: string, suffix: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(suffix) || entry.name.endsWith(".test.ts")) continue;
    latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return latest;
}

interface ProcessFigure {
  readonly pid: number;
  readonly role: "primary" | "worker";
  readonly rssKiB: number;
  readonly pssKiB: number;
  readonly openFiles: number;
}

function gatewayProcesses(primary: number): ProcessFigure[] {
  return withChildren(primary).map((pid, i) => ({
    pid,
    role: i === 0 ? "primary" : "worker",
    rssKiB: rssKiBOf(pid),
    pssKiB: pssKiBOf(pid),
    openFiles: openFiles(pid),
  }));
}

/** What stopped the fleet from growing, from the causes of its failed connections. */
function limitBehind(failures: Record<string, number>): string | undefined {
  const causes = Object.keys(failures).join(" ");
  if (/EMFILE|ENFILE/.test(causes)) return "open files (EMFILE/ENFILE)";
  if (/EADDRNOTAVAIL|EADDRINUSE/.test(causes)) return "ephemeral ports (EADDRNOTAVAIL)";
  if (/ENOMEM|ENOBUFS/.test(causes)) return "memory (ENOMEM/ENOBUFS)";
  if (/timeout|ETIMEDOUT/.test(causes)) return "time: handshakes did not finish before the deadline";
  return causes ? `connections refused or closed: ${causes}` : undefined;
}

function describe(a: AttemptSummary): string {
  const failures = Object.entries(a.failures)
    .map(([k, v]) => `${k}×${v}`)
    .join(", ");
  return (
    `${a.ok} ok, ${a.failed} failed${failures ? ` (${failures})` : ""}, ${a.resumed} resumed, ` +
    `${(a.elapsedMs / 1000).toFixed(1)} s, per device p50 ${a.p50Ms.toFixed(0)} ms, ` +
    `p99 ${a.p99Ms.toFixed(0)} ms, max ${a.maxMs.toFixed(0)} ms`
  );
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-fleet-"));
  const upstream = await startFixedUpstream();
  let devices: FleetDevices | undefined;
  let gateway: ReturnType<typeof spawn> | undefined;
  let gatewayOutput = "";
  try {
    if (newest(join(ROOT, "src"), ".ts") > newest(join(ROOT, "dist"), ".js"))
      progress("warning: src/ is newer than dist/: `npm run build` first, or this measures the old build");
    const port = await freePort();
    const adminPort = await freePort();
    const perWorker = Math.ceil(DEVICES / WORKERS);
    const { pki, file } = await prepareFleet(dir, {
      port,
      upstreamPort: upstream.port,
      // Room for the kernel's uneven spread over the workers and for the storm's overlap.
      maxConnections: Math.min(PER_PROCESS, perWorker * 2 + 1_000),
      idleTimeout: "1h",
      adminPort,
      handshakeTimeout: args["handshake-timeout"],
    });
    const counters = () =>
      refusalCounters(adminPort, pki.adminToken).catch((err: unknown) => ({ error: String(err) }));
    progress(
      `fleet: ${DEVICES} devices (${PROTOCOL}) from ${DEVICE_PROCESSES} processes, gateway --workers ${WORKERS}, ` +
        `file limit ${FILE_LIMIT} per process, ${availableParallelism()} cores, ` +
        `${Math.round(freemem() / 2 ** 30)} of ${Math.round(totalmem() / 2 ** 30)} GiB free`,
    );
    gateway = spawn(
      process.execPath,
      [join(ROOT, "bin", "portcullis.js"), "start", "--config", file, "--workers", String(WORKERS)],
      { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
    );
    // FLEET_GATEWAY_LOG=FILE keeps the gateway's whole output (else its last 8 KiB, shown if it fails).
    const logFile = env.FLEET_GATEWAY_LOG;
    const keep = (chunk: Buffer) => {
      gatewayOutput = (gatewayOutput + chunk.toString()).slice(-8192);
      if (logFile) appendFileSync(logFile, chunk);
    };
    gateway.stdout?.on("data", keep);
    gateway.stderr?.on("data", keep);
    const primary = gateway.pid ?? 0;
    const deadline = Date.now() + 60_000;
    while (!(await canConnect(port))) {
      if (gateway.exitCode !== null || Date.now() > deadline)
        throw new Error(`the gateway did not start:\n${gatewayOutput}`);
      await sleep(200);
    }
    // Every worker listening: the primary forks them all at once; give the last ones a moment.
    await sleep(3000);
    const idleBefore = gatewayProcesses(primary);
    const baselineKiB = idleBefore.reduce((n, p) => n + p.rssKiB, 0);
    const emptyCpuMsPerSecond = await cpuPerSecond(withChildren(primary), 5000);
    progress(`gateway up: ${idleBefore.length} processes, ${(baselineKiB / 1024).toFixed(0)} MiB RSS in all`);

    devices = new FleetDevices(DEVICE_PROCESSES);
    const target: FleetTarget = {
      port,
      servername: "localhost",
      path: FLEET_PATH,
      certFile: pki.deviceCert,
      keyFile: pki.deviceKey,
      caFile: pki.caCert,
      protocol: PROTOCOL,
    };
    progress(`connecting ${DEVICES} devices, ${CONCURRENCY} handshakes at a time …`);
    const filesBefore = idleBefore.slice(1).reduce((n, p) => n + p.openFiles, 0);
    let stoppedByMemory: string | undefined;
    const ticker = setInterval(() => {
      const procs = gatewayProcesses(primary);
      const held = procs.slice(1).reduce((n, p) => n + p.openFiles, 0);
      const rss = procs.reduce((n, p) => n + p.rssKiB, 0);
      const free = freemem() / 2 ** 20;
      progress(
        `  workers hold ${held} files, gateway RSS ${(rss / 1024).toFixed(0)} MiB, ${free.toFixed(0)} MiB free`,
      );
      // The machine is shared: stop before its memory runs out, and say how far the fleet got.
      if (free < MIN_FREE_MIB && stoppedByMemory === undefined) {
        stoppedByMemory = `memory: ${free.toFixed(0)} MiB left free with about ${held - filesBefore} devices connected, gateway RSS ${(rss / 1024).toFixed(0)} MiB`;
        progress(`stopping: ${stoppedByMemory}`);
        void devices?.stop();
      }
    }, 15_000);
    const cpuRampBefore = cpuMsOf(withChildren(primary));
    const devicesCpuBefore = cpuMsOf(devices.pids);
    const primaryCpuBefore = cpuMsOf([primary]);
    const ramp = await devices
      .open(target, DEVICES, CONCURRENCY, 300_000)
      .catch((err: unknown) => {
        throw stoppedByMemory ? new Error(`the fleet could not grow further: ${stoppedByMemory}`) : err;
      })
      .finally(() => clearInterval(ticker));
    const cpuRamp = cpuMsOf(withChildren(primary)) - cpuRampBefore;
    const devicesCpu = cpuMsOf(devices.pids) - devicesCpuBefore;
    const primaryCpu = cpuMsOf([primary]) - primaryCpuBefore;
    progress(`fleet connected: ${describe(ramp)}`);
    const afterRamp = await counters();
    if (Object.keys(afterRamp).length > 0) progress(`  gateway refusals: ${JSON.stringify(afterRamp)}`);
    if (gateway.exitCode !== null) throw new Error(`the gateway exited:\n${gatewayOutput}`);

    await sleep(HOLD_MS);
    const idleCpuMsPerSecond = await cpuPerSecond(withChildren(primary), Math.max(HOLD_MS, 5000));
    const held = gatewayProcesses(primary);
    const heldKiB = held.reduce((n, p) => n + p.rssKiB, 0);
    const heldPssKiB = held.reduce((n, p) => n + p.pssKiB, 0);
    const baselinePssKiB = idleBefore.reduce((n, p) => n + p.pssKiB, 0);
    const heldStatus = await devices.status();
    const connected = heldStatus.connected;
    const kibPerConnection = heldKiB / Math.max(1, connected);
    const kibPerConnectionAboveIdle = (heldKiB - baselineKiB) / Math.max(1, connected);
    progress(
      `holding ${connected} idle devices (${heldStatus.dropped} dropped): gateway RSS ` +
        `${(heldKiB / 1024).toFixed(0)} MiB = ${kibPerConnection.toFixed(1)} KiB per connection ` +
        `(${kibPerConnectionAboveIdle.toFixed(1)} above the idle gateway); idle CPU ` +
        `${idleCpuMsPerSecond.toFixed(0)} ms/s (${emptyCpuMsPerSecond.toFixed(0)} without connections); ` +
        `device processes ${(heldStatus.rssKiB / 1024).toFixed(0)} MiB`,
    );

    let stormFull: AttemptSummary | undefined;
    let stormResumed: AttemptSummary | undefined;
    if (STORM > 0) {
      progress(`storm: ${STORM} devices drop and reconnect at once, full handshakes …`);
      stormFull = await devices.storm(STORM, false);
      progress(`  ${describe(stormFull)}`);
      progress(`  gateway refusals so far: ${JSON.stringify(await counters())}`);
      await sleep(2000);
      progress(`storm: the same ${STORM} devices again, resuming their TLS sessions …`);
      stormResumed = await devices.storm(STORM, true);
      progress(`  ${describe(stormResumed)}`);
      progress(`  gateway refusals so far: ${JSON.stringify(await counters())}`);
      await sleep(2000);
    }
    const after = gatewayProcesses(primary);
    const afterStatus = await devices.status();
    const afterKiB = after.reduce((n, p) => n + p.rssKiB, 0);
    const refusals = await counters();
    const limit = limitBehind(ramp.failures);

    const date = new Date().toISOString().slice(0, 10);
    const name =
      DEVICES === 100_000 && PROTOCOL === "http/1.1" && !args["handshake-timeout"]
        ? `fleet-${date}`
        : `fleet-${date}-${DEVICES}-${args.protocol}${args["handshake-timeout"] ? `-hs${args["handshake-timeout"]}` : ""}`;
    const results = {
      date: new Date().toISOString(),
      machine: {
        cores: availableParallelism(),
        cpu: cpus()[0]?.model ?? "unknown",
        memoryGiB: Math.round(totalmem() / 2 ** 30),
        node: process.version,
        fileLimitPerProcess: FILE_LIMIT,
      },
      settings: {
        devices: DEVICES,
        storm: STORM,
        workers: WORKERS,
        protocol: PROTOCOL,
        deviceProcesses: DEVICE_PROCESSES,
        concurrency: CONCURRENCY,
        holdSeconds: HOLD_MS / 1000,
        handshakeTimeout: args["handshake-timeout"] ?? "10s (default)",
      },
      fleet: {
        connected,
        dropped: heldStatus.dropped,
        failed: ramp.failed,
        failures: ramp.failures,
        connectSeconds: round(ramp.elapsedMs / 1000),
        devicesPerSecond: round(ramp.ok / (ramp.elapsedMs / 1000)),
        gatewayCpuMsPerDevice: round(cpuRamp / Math.max(1, ramp.ok)),
        devicesCpuMsPerDevice: round(devicesCpu / Math.max(1, ramp.ok)),
        primaryCpuMsPerDevice: round(primaryCpu / Math.max(1, ramp.ok)),
        connectP50Ms: round(ramp.p50Ms),
        connectP99Ms: round(ramp.p99Ms),
        gatewayIdleRssKiB: baselineKiB,
        gatewayRssKiB: heldKiB,
        kibPerConnection: round(kibPerConnection),
        kibPerConnectionAboveIdle: round(kibPerConnectionAboveIdle),
        gatewayIdlePssKiB: baselinePssKiB,
        gatewayPssKiB: heldPssKiB,
        pssKibPerConnection: round(heldPssKiB / Math.max(1, connected)),
        idleCpuMsPerSecond: round(idleCpuMsPerSecond),
        emptyCpuMsPerSecond: round(emptyCpuMsPerSecond),
        deviceProcessesRssKiB: heldStatus.rssKiB,
        processes: held,
        ...(limit && ramp.failed > 0 ? { stoppedBy: limit } : {}),
      },
      storm: stormFull && stormResumed ? { full: summary(stormFull), resumed: summary(stormResumed) } : null,
      afterStorm: { connected: afterStatus.connected, dropped: afterStatus.dropped, gatewayRssKiB: afterKiB },
      gatewayRefusals: { afterRamp, total: refusals },
    };
    mkdirSync(args.out, { recursive: true });
    const md = markdown(results);
    writeFileSync(join(args.out, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(args.out, `${name}.md`), md);
    if (args.json) console.log(JSON.stringify(results, null, 2));
    else console.log(`\n${md}`);
    progress(`written: ${join(args.out, `${name}.json`)} and .md`);
    const ok =
      ramp.failed === 0 &&
      heldStatus.dropped === 0 &&
      (!stormFull || stormFull.failed === 0) &&
      (!stormResumed || stormResumed.failed === 0);
    return ok ? 0 : 1;
  } finally {
    await devices?.close().catch(() => {});
    await devices?.stop();
    if (gateway && gateway.exitCode === null) {
      const exited = new Promise((resolve) => gateway?.once("exit", resolve));
      gateway.kill("SIGTERM");
      const timer = setTimeout(() => gateway?.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    }
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** CPU time the processes use per second of wall time, over `ms`. */
async function cpuPerSecond(pids: readonly number[], ms: number): Promise<number> {
  const before = cpuMsOf(pids);
  const from = performance.now();
  await sleep(ms);
  return (cpuMsOf(pids) - before) / ((performance.now() - from) / 1000);
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

function summary(a: AttemptSummary) {
  return {
    devices: a.ok + a.failed,
    ok: a.ok,
    failed: a.failed,
    failures: a.failures,
    resumed: a.resumed,
    seconds: round(a.elapsedMs / 1000),
    p50Ms: round(a.p50Ms),
    p99Ms: round(a.p99Ms),
    maxMs: round(a.maxMs),
  };
}

type Results = {
  date: string;
  machine: Record<string, unknown>;
  settings: {
    devices: number;
    storm: number;
    workers: number;
    protocol: string;
    deviceProcesses: number;
    handshakeTimeout: string;
  };
  fleet: {
    connected: number;
    dropped: number;
    failed: number;
    connectSeconds: number;
    devicesPerSecond: number;
    gatewayCpuMsPerDevice: number;
    devicesCpuMsPerDevice: number;
    primaryCpuMsPerDevice: number;
    gatewayIdleRssKiB: number;
    gatewayRssKiB: number;
    kibPerConnection: number;
    kibPerConnectionAboveIdle: number;
    gatewayIdlePssKiB: number;
    gatewayPssKiB: number;
    pssKibPerConnection: number;
    idleCpuMsPerSecond: number;
    emptyCpuMsPerSecond: number;
    deviceProcessesRssKiB: number;
    processes: ProcessFigure[];
    stoppedBy?: string;
  };
  storm: { full: ReturnType<typeof summary>; resumed: ReturnType<typeof summary> } | null;
  afterStorm: { connected: number; dropped: number; gatewayRssKiB: number };
  gatewayRefusals: { afterRamp: Record<string, unknown>; total: Record<string, unknown> };
};

function markdown(r: Results): string {
  const s = r.settings;
  const f = r.fleet;
  const mib = (kib: number) => `${(kib / 1024).toFixed(0)} MiB`;
  const workers = f.processes.filter((p) => p.role === "worker");
  const lines = [
    `# Fleet benchmark, ${r.date.slice(0, 10)}`,
    "",
    `\`portcullis start --workers ${s.workers}\`, ${s.devices.toLocaleString("en-US")} devices over ${s.protocol} ` +
      `(mTLS with the demo device certificate, one request each, then idle) from ${s.deviceProcesses} device ` +
      `processes, handshakeTimeout ${s.handshakeTimeout}; machine: ${JSON.stringify(r.machine)}.`,
    "",
    "| figure | value |",
    "|---|---:|",
    `| devices connected and idle | ${f.connected.toLocaleString("en-US")} (${f.failed} failed, ${f.dropped} dropped) |`,
    `| time to connect them | ${f.connectSeconds} s (${f.devicesPerSecond}/s; CPU per device: gateway ${f.gatewayCpuMsPerDevice} ms (primary ${f.primaryCpuMsPerDevice}), simulated device ${f.devicesCpuMsPerDevice} ms) |`,
    `| gateway memory, idle before (primary + workers RSS) | ${mib(f.gatewayIdleRssKiB)} |`,
    `| gateway memory with the fleet connected | ${mib(f.gatewayRssKiB)} |`,
    `| KiB per connection (total ÷ connections) | ${f.kibPerConnection} |`,
    `| KiB per connection above the idle gateway | ${f.kibPerConnectionAboveIdle} |`,
    `| the same in PSS (shared code pages counted once): idle, connected, per connection | ` +
      `${mib(f.gatewayIdlePssKiB)}, ${mib(f.gatewayPssKiB)}, ${f.pssKibPerConnection} KiB |`,
    `| gateway CPU while the fleet idles (before it connected) | ${f.idleCpuMsPerSecond} ms per second (${f.emptyCpuMsPerSecond}) |`,
    `| per worker: connections (open files), RSS | ${workers.map((w) => `${w.openFiles}, ${mib(w.rssKiB)}`).join("; ")} |`,
    `| device processes' memory (load generator) | ${mib(f.deviceProcessesRssKiB)} |`,
  ];
  if (f.stoppedBy) lines.push(`| what stopped the fleet from growing | ${f.stoppedBy} |`);
  if (r.storm) {
    for (const [label, st] of [
      ["full handshakes", r.storm.full],
      ["TLS session resumption", r.storm.resumed],
    ] as const) {
      lines.push(
        `| storm, ${st.devices.toLocaleString("en-US")} devices at once, ${label} | ${st.seconds} s, ${st.failed} failed, ` +
          `${st.resumed} resumed, per device p50 ${st.p50Ms} ms, p99 ${st.p99Ms} ms, max ${st.maxMs} ms |`,
      );
    }
  }
  lines.push(
    `| after the storms | ${r.afterStorm.connected.toLocaleString("en-US")} connected, ${r.afterStorm.dropped} dropped, gateway ${mib(r.afterStorm.gatewayRssKiB)} |`,
    `| the gateway's refusal counters (handshake failures, limit hits) and handshake deadline extensions | ${JSON.stringify(r.gatewayRefusals.total)} |`,
    "",
  );
  return lines.join("\n");
}

process.on("exit", killChildren);
main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 1;
  },
);
