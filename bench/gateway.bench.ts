// Portcullis against nginx (same certificates, same upstream, one process each): full mTLS handshakes,
// keep-alive proxying, memory per idle authenticated connection and the rate of turning bad certificates away.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type DemoPki, ensureDemoPki } from "../src/pki/demo-pki.ts";
import { LoadGenerator } from "./lib/loadgen-client.ts";
import { cpuMs, processTree, rssKiB } from "./lib/proc.ts";
import type { RunResult, Target } from "./lib/protocol.ts";
import {
  BENCH_PATH,
  findNginx,
  killAllNow,
  type ManagedProcess,
  startFixedUpstream,
  startNginx,
  startPortcullis,
  stopAll,
} from "./lib/servers.ts";

const USAGE = `usage: node bench/gateway.bench.ts [--json] [--no-nginx] [--duration SECONDS] [--concurrency N] [--idle N]
  --json          print the results as JSON (progress still goes to stderr)
  --no-nginx      skip the nginx reference even when it is installed
  --duration      measured seconds per phase (default 3; each phase also warms up for 1 s)
  --concurrency   parallel connections of the load generator (default 16)
  --idle          idle connections opened for the memory figure (default 500)`;

const { values: args } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    "no-nginx": { type: "boolean", default: false },
    duration: { type: "string", default: "3" },
    concurrency: { type: "string", default: "16" },
    idle: { type: "string", default: "500" },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const DURATION_MS = Math.round(Number(args.duration) * 1000);
const WARMUP_MS = 1000;
const CONCURRENCY = Number(args.concurrency);
const IDLE_CONNECTIONS = Number(args.idle);
if (!(DURATION_MS > 0 && CONCURRENCY >= 1 && IDLE_CONNECTIONS >= 1)) {
  console.error(USAGE);
  process.exit(2);
}

const progress = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A server under test: a process and one of its ports. */
interface Subject {
  readonly label: string;
  readonly proc: ManagedProcess;
  readonly port: number;
}

type Better = "higher" | "lower";

interface Metric {
  readonly key: string;
  readonly label: string;
  readonly better: Better;
  readonly decimals: number;
  readonly portcullis: number | undefined;
  readonly nginx: number | undefined;
}

interface PhaseResult {
  readonly completed: number;
  readonly perSecond: number;
  readonly cpuMsPerItem: number;
  readonly outcomes: Record<string, number>;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
}

const warnings: string[] = [];
/** Set on SIGINT/SIGTERM: the signal handler cleans up and exits; the interrupted run stays quiet. */
let interrupted = false;

function target(pki: DemoPki, port: number, who: "device" | "wrong-device"): Target {
  return {
    port,
    servername: "localhost",
    path: BENCH_PATH,
    certFile: who === "device" ? pki.deviceCert : pki.wrongDeviceCert,
    keyFile: who === "device" ? pki.deviceKey : pki.wrongDeviceKey,
    caFile: pki.caCert,
  };
}

function describeOutcomes(outcomes: Record<string, number>): string {
  return Object.entries(outcomes)
    .map(([k, v]) => `${k}×${v}`)
    .join(", ");
}

/** Warms up, then runs the load once with the server's CPU time read around it. */
async function measure(
  loadgen: LoadGenerator,
  subject: Subject,
  mode: "handshake" | "keepalive",
  to: Target,
  expected: (outcome: string) => boolean,
  what: string,
): Promise<PhaseResult> {
  const request = { mode, target: to, concurrency: CONCURRENCY, latency: mode === "keepalive" };
  await loadgen.run({ ...request, durationMs: WARMUP_MS });
  const pids = processTree(subject.proc.pid);
  const cpuBefore = cpuMs(pids);
  const result: RunResult = await loadgen.run({ ...request, durationMs: DURATION_MS });
  const cpu = cpuMs(pids) - cpuBefore;
  if (!subject.proc.alive) throw new Error(`${subject.label} died during ${what}:\n${subject.proc.output()}`);
  const unexpected = Object.entries(result.outcomes).filter(([outcome]) => !expected(outcome));
  if (unexpected.length > 0) {
    warnings.push(`${subject.label}, ${what}: unexpected outcomes ${describeOutcomes(result.outcomes)}`);
  }
  const good = result.completed - unexpected.reduce((sum, [, n]) => sum + n, 0);
  const phase: PhaseResult = {
    completed: good,
    perSecond: good / (result.elapsedMs / 1000),
    cpuMsPerItem: good > 0 ? cpu / good : Number.NaN,
    outcomes: result.outcomes,
    ...(result.p50Ms !== undefined ? { p50Ms: result.p50Ms, p99Ms: result.p99Ms } : {}),
  };
  const latency =
    phase.p50Ms !== undefined ? `, p50 ${phase.p50Ms.toFixed(2)} ms, p99 ${phase.p99Ms?.toFixed(2)} ms` : "";
  progress(
    `  ${subject.label.padEnd(26)} ${what.padEnd(12)} ${phase.perSecond.toFixed(0).padStart(6)}/s, ` +
      `server CPU ${phase.cpuMsPerItem.toFixed(3)} ms each${latency} (${describeOutcomes(result.outcomes)})`,
  );
  return phase;
}

/** RSS growth per connection while `count` authenticated connections sit idle. */
async function idleMemory(loadgen: LoadGenerator, subject: Subject, to: Target): Promise<number> {
  await sleep(1000);
  const pids = processTree(subject.proc.pid);
  const before = rssKiB(pids);
  const opened = await loadgen.open(to, IDLE_CONNECTIONS);
  await sleep(1500);
  const after = rssKiB(pids);
  const closed = await loadgen.close();
  if (opened.failed > 0 || closed.stillOpen < opened.open) {
    warnings.push(
      `${subject.label}, idle: ${opened.open} opened, ${opened.failed} failed, ` +
        `${closed.stillOpen} still open when measured`,
    );
  }
  const perConnection = (after - before) / Math.max(1, closed.stillOpen);
  progress(
    `  ${subject.label.padEnd(26)} ${"idle".padEnd(12)} RSS ${before} → ${after} KiB with ` +
      `${closed.stillOpen} idle connections: ${perConnection.toFixed(1)} KiB each`,
  );
  await sleep(500);
  return perConnection;
}

const ok = (outcome: string) => outcome === "200";
/** A rejection: an HTTP 400/401/403 answer, or (handshake mode) a failed or reset TLS connection. */
const rejected = (outcome: string) =>
  outcome === "400" ||
  outcome === "401" ||
  outcome === "403" ||
  outcome.startsWith("tls:") ||
  outcome === "closed-without-response";

function nginxVersion(binary: string): string {
  const out = spawnSync(binary, ["-v"], { encoding: "utf8" });
  return (out.stderr || out.stdout).trim().replace(/^nginx version:\s*/, "");
}

function formatNumber(value: number | undefined, decimals: number): string {
  if (value === undefined || !Number.isFinite(value)) return "n/a";
  return value.toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

function ratio(m: Metric): number | undefined {
  if (m.portcullis === undefined || m.nginx === undefined || m.nginx === 0) return undefined;
  return m.portcullis / m.nginx;
}

function printTable(metrics: Metric[], haveNginx: boolean): void {
  const header = ["metric", "portcullis", "nginx", "ratio p/n", "better"];
  const rows = metrics.map((m) => {
    const r = ratio(m);
    return [
      m.label,
      formatNumber(m.portcullis, m.decimals),
      haveNginx ? formatNumber(m.nginx, m.decimals) : "—",
      r === undefined ? "n/a" : `${r.toFixed(2)}×`,
      `${m.better} is better`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 || i === 4 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(" | ")} |`;
  console.log(line(header));
  console.log(
    `|${widths.map((w, i) => (i === 0 || i === 4 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`,
  );
  for (const row of rows) console.log(line(row));
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-bench-"));
  let loadgen: LoadGenerator | undefined;
  let closeUpstream: (() => Promise<void>) | undefined;
  const cleanup = async () => {
    await loadgen?.stop();
    await stopAll();
    await closeUpstream?.();
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    progress(`${signal}: stopping the servers`);
    void cleanup().finally(() => process.exit(130));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("exit", killAllNow);

  try {
    const started = Date.now();
    progress(`setting up the demo PKI in ${dir}`);
    const pki = await ensureDemoPki(dir);
    const upstream = await startFixedUpstream();
    closeUpstream = upstream.close;
    const portcullis = await startPortcullis(pki, upstream.port);
    const nginxBinary = args["no-nginx"] ? undefined : findNginx();
    let nginx: Subject | undefined;
    if (args["no-nginx"]) {
      progress("--no-nginx: measuring Portcullis alone (absolute numbers, no ratios)");
    } else if (nginxBinary) {
      const started = await startNginx(nginxBinary, pki, upstream.port);
      nginx = { label: `nginx ${nginxVersion(nginxBinary)}`, proc: started.proc, port: started.port };
    } else {
      progress(
        "nginx not found on PATH: install it with `apt-get install nginx-light` for the reference figures; " +
          "measuring Portcullis alone (absolute numbers, no ratios)",
      );
    }
    const app: Subject = {
      label: "portcullis (application)",
      proc: portcullis.proc,
      port: portcullis.ports.application,
    };
    const hs: Subject = {
      label: "portcullis (handshake)",
      proc: portcullis.proc,
      port: portcullis.ports.handshake,
    };
    loadgen = new LoadGenerator();
    const lg = loadgen;
    progress(
      `load: ${CONCURRENCY} connections, ${DURATION_MS / 1000} s per phase after ${WARMUP_MS / 1000} s warm-up`,
    );

    const device = (s: Subject) => target(pki, s.port, "device");
    const wrong = (s: Subject) => target(pki, s.port, "wrong-device");
    const both = async <T>(run: (s: Subject) => Promise<T>): Promise<[T, T | undefined]> => {
      const p = await run(app);
      const n = nginx ? await run(nginx) : undefined;
      return [p, n];
    };

    progress("1. full mTLS handshakes (new connection per request, no resumption)");
    const [hsApp, hsNginx] = await both((s) => measure(lg, s, "handshake", device(s), ok, "handshakes"));
    const hsHs = await measure(lg, hs, "handshake", device(hs), ok, "handshakes");
    progress("2. keep-alive requests through the proxy (HTTP/1.1)");
    const [kaApp, kaNginx] = await both((s) => measure(lg, s, "keepalive", device(s), ok, "keep-alive"));
    // The same load on `--workers 2` (node:cluster), CPU summed over the primary and its workers.
    progress("2b. the same on portcullis --workers 2 (node:cluster, one port)");
    const clustered = await startPortcullis(pki, upstream.port, 2);
    const app2: Subject = {
      label: "portcullis --workers 2",
      proc: clustered.proc,
      port: clustered.ports.application,
    };
    const hs2 = await measure(lg, app2, "handshake", device(app2), ok, "handshakes");
    const ka2 = await measure(lg, app2, "keepalive", device(app2), ok, "keep-alive");
    await clustered.proc.stop();
    progress(`3. memory per idle authenticated connection (${IDLE_CONNECTIONS} connections)`);
    const [memApp, memNginx] = await both((s) => idleMemory(lg, s, device(s)));
    progress("4. rejections of the wrong-device certificate (untrusted CA)");
    const [rjApp, rjNginx] = await both((s) => measure(lg, s, "handshake", wrong(s), rejected, "rejections"));
    const rjHs = await measure(lg, hs, "handshake", wrong(hs), rejected, "rejections");

    const metrics: Metric[] = [
      m("handshakesPerSecond", "full mTLS handshakes/s", "higher", 0, hsApp.perSecond, hsNginx?.perSecond),
      m(
        "handshakeCpuMs",
        "  server CPU ms per handshake",
        "lower",
        3,
        hsApp.cpuMsPerItem,
        hsNginx?.cpuMsPerItem,
      ),
      m(
        "handshakesPerSecondHandshakeMode",
        "  handshakes/s, Portcullis handshake mode",
        "higher",
        0,
        hsHs.perSecond,
        hsNginx?.perSecond,
      ),
      m(
        "handshakeCpuMsHandshakeMode",
        "  server CPU ms per handshake, handshake mode",
        "lower",
        3,
        hsHs.cpuMsPerItem,
        hsNginx?.cpuMsPerItem,
      ),
      m(
        "keepAliveRequestsPerSecond",
        "keep-alive requests/s",
        "higher",
        0,
        kaApp.perSecond,
        kaNginx?.perSecond,
      ),
      m("keepAliveP50Ms", "  p50 latency ms", "lower", 2, kaApp.p50Ms, kaNginx?.p50Ms),
      m("keepAliveP99Ms", "  p99 latency ms", "lower", 2, kaApp.p99Ms, kaNginx?.p99Ms),
      m(
        "keepAliveCpuUsPerRequest",
        "  server CPU µs per request",
        "lower",
        0,
        kaApp.cpuMsPerItem * 1000,
        kaNginx ? kaNginx.cpuMsPerItem * 1000 : undefined,
      ),
      m(
        "handshakesPerSecondWorkers2",
        "  handshakes/s, Portcullis --workers 2",
        "higher",
        0,
        hs2.perSecond,
        hsNginx?.perSecond,
      ),
      m(
        "keepAliveRequestsPerSecondWorkers2",
        "  keep-alive requests/s, --workers 2",
        "higher",
        0,
        ka2.perSecond,
        kaNginx?.perSecond,
      ),
      m("idleKiBPerConnection", "memory KiB per idle mTLS connection", "lower", 1, memApp, memNginx),
      m("rejectionsPerSecond", "rejections/s (HTTP 401)", "higher", 0, rjApp.perSecond, rjNginx?.perSecond),
      m(
        "rejectionCpuMs",
        "  server CPU ms per rejection",
        "lower",
        3,
        rjApp.cpuMsPerItem,
        rjNginx?.cpuMsPerItem,
      ),
      m(
        "rejectionsPerSecondHandshakeMode",
        "  rejections/s, handshake mode (TLS alert)",
        "higher",
        0,
        rjHs.perSecond,
        rjNginx?.perSecond,
      ),
      m(
        "rejectionCpuMsHandshakeMode",
        "  server CPU ms per rejection, handshake mode",
        "lower",
        3,
        rjHs.cpuMsPerItem,
        rjNginx?.cpuMsPerItem,
      ),
    ];

    const machine = {
      cores: availableParallelism(),
      cpu: cpus()[0]?.model ?? "unknown",
      node: process.version,
      nginx: nginxBinary ? nginxVersion(nginxBinary) : null,
    };
    const settings = {
      concurrency: CONCURRENCY,
      durationSeconds: DURATION_MS / 1000,
      warmupSeconds: WARMUP_MS / 1000,
      idleConnections: IDLE_CONNECTIONS,
    };
    const note =
      "Figures from a shared machine with few cores are noisy (load generator, upstream and server share " +
      "the cores): only ratios within one run mean something. Server CPU per item is the steadier figure.";
    if (args.json) {
      const results = Object.fromEntries(
        metrics.map((x) => [
          x.key,
          {
            portcullis: round(x.portcullis),
            nginx: round(x.nginx),
            ratio: round(ratio(x)),
            better: x.better,
          },
        ]),
      );
      const outcomes = {
        handshakes: { application: hsApp.outcomes, handshake: hsHs.outcomes, nginx: hsNginx?.outcomes },
        keepAlive: { application: kaApp.outcomes, nginx: kaNginx?.outcomes },
        rejections: { application: rjApp.outcomes, handshake: rjHs.outcomes, nginx: rjNginx?.outcomes },
      };
      console.log(
        JSON.stringify(
          { machine, settings, results, outcomes, warnings, ratioAvailable: nginx !== undefined, note },
          null,
          2,
        ),
      );
    } else {
      console.log("");
      console.log(
        `Portcullis vs ${nginx ? nginx.label : "nginx (not installed)"}: ${machine.cores} cores (${machine.cpu}), ` +
          `Node ${machine.node}, ${CONCURRENCY} client connections, ${DURATION_MS / 1000} s per phase`,
      );
      console.log("");
      printTable(metrics, nginx !== undefined);
      console.log("");
      if (!nginx) {
        console.log(
          "nginx is not installed (`apt-get install nginx-light`): no reference, so the ratio is unavailable; " +
            "the absolute numbers above depend on this machine.",
        );
      }
      console.log(`Note: ${note}`);
      console.log(
        "Portcullis (application) is compared with nginx `ssl_verify_client on`, which also completes the " +
          "handshake and answers in HTTP; the handshake-mode rows compare a TLS-level refusal with nginx's 401; " +
          "the --workers 2 rows put two Portcullis processes against one nginx worker (load generator and " +
          "upstream share the same cores).",
      );
      for (const w of warnings) console.log(`warning: ${w}`);
      console.log(`(${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
    return 0;
  } finally {
    if (!interrupted) await cleanup();
  }
}

/** Three decimals for JSON; null when unavailable (no nginx, nothing measured). */
function round(value: number | undefined): number | null {
  return value === undefined || !Number.isFinite(value) ? null : Math.round(value * 1000) / 1000;
}

function m(
  key: string,
  label: string,
  better: Better,
  decimals: number,
  portcullis: number | undefined,
  nginx: number | undefined,
): Metric {
  return { key, label, better, decimals, portcullis, nginx };
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (interrupted) return;
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exitCode = 1;
  },
);
