// Portcullis against nginx (same certificates, same upstream, one process each): full mTLS handshakes (with
// and without CRL revocation checking), keep-alive proxying over HTTP/1.1 and HTTP/2, memory per idle
// authenticated connection and the cost of turning an untrusted certificate away. Every figure is measured in
// repetitions that interleave the subjects (the order alternates from one repetition to the next, so that a
// drift of the shared machine falls on both), and reported as medians, with the median of the
// per-repetition ratios. The memory figure is taken on a new process of each in every repetition (a process
// keeps what it grew for the previous one's connections). Results go to bench/results/ (JSON and Markdown).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type DemoPki, ensureDemoPki } from "../src/pki/demo-pki.ts";
import { LoadGenerator } from "./lib/loadgen-client.ts";
import { cpuMs, processTree, rssKiB } from "./lib/proc.ts";
import type { LoadMode, RunResult, Target } from "./lib/protocol.ts";
import {
  type Better,
  type Figure,
  figureJson,
  markdownTable,
  median,
  sourceState,
  summarize,
  writeResults,
} from "./lib/report.ts";
import {
  BENCH_CRL_PATH,
  BENCH_PATH,
  findNginx,
  killAllNow,
  type ManagedProcess,
  ROOT,
  startFixedUpstream,
  startNginx,
  startPortcullis,
  stopAll,
} from "./lib/servers.ts";

const USAGE = `usage: node bench/gateway.bench.ts [--json] [--no-nginx] [--no-save] [--repeat N] [--duration SECONDS]
                                  [--warmup SECONDS] [--concurrency N] [--idle N]
  --json          print the results as JSON (progress still goes to stderr)
  --no-nginx      skip the nginx reference even when it is installed
  --no-save       do not write bench/results/ (quick runs while developing)
  --repeat        interleaved repetitions of every figure, reported as medians (default 3)
  --duration      measured seconds per phase (default 3)
  --warmup        warm-up seconds before each measured phase (default 0.5; Portcullis also gets 0.6 s
                  of each load once before the first repetition)
  --concurrency   parallel connections of the load generator (default 16)
  --idle          idle connections opened for the memory figure (default 500)`;

const { values: args } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    "no-nginx": { type: "boolean", default: false },
    "no-save": { type: "boolean", default: false },
    repeat: { type: "string", default: "3" },
    duration: { type: "string", default: "3" },
    warmup: { type: "string", default: "0.5" },
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
const REPEAT = Number(args.repeat);
const DURATION_MS = Math.round(Number(args.duration) * 1000);
const WARMUP_MS = Math.round(Number(args.warmup) * 1000);
const CONCURRENCY = Number(args.concurrency);
/** The keep-alive figure is also taken with this many connections: the loader issue 9's figures came from. */
const WIDE_CONCURRENCY = 64;
const IDLE_CONNECTIONS = Number(args.idle);
if (
  !(
    Number.isInteger(REPEAT) &&
    REPEAT >= 1 &&
    DURATION_MS > 0 &&
    WARMUP_MS >= 0 &&
    CONCURRENCY >= 1 &&
    IDLE_CONNECTIONS >= 1
  )
) {
  console.error(USAGE);
  process.exit(2);
}
/** Portcullis's one-off warm-up of each load before the first repetition. */
const ONE_OFF_WARMUP_MS = 600;
const RESULTS_DIR = fileURLToPath(new URL("./results/", import.meta.url));
/** Targets of issue 9 for portcullis ÷ nginx: printed next to the ratios, never asserted. */
const TARGET = { handshake: 1.0, keepAlive: 2.5, idleMemory: 1.5, rejection: 1.0 } as const;

/** The rows a figure can have: how each is read from a phase's sample, and printed. */
const KINDS = {
  cpu: {
    key: "cpuUs",
    label: "server CPU µs",
    unit: "µs",
    better: "lower",
    decimals: 0,
    pick: (s: Sample) => s.cpuUsPerItem,
  },
  rate: {
    key: "perSecond",
    label: "per s",
    unit: "1/s",
    better: "higher",
    decimals: 0,
    pick: (s: Sample) => s.perSecond,
  },
  p50: {
    key: "p50Ms",
    label: "p50 ms",
    unit: "ms",
    better: "lower",
    decimals: 2,
    pick: (s: Sample) => s.p50Ms,
  },
  p99: {
    key: "p99Ms",
    label: "p99 ms",
    unit: "ms",
    better: "lower",
    decimals: 2,
    pick: (s: Sample) => s.p99Ms,
  },
  /** The memory tasks give a number per repetition rather than a sample. */
  kib: {
    key: "kibPerConnection",
    label: "KiB",
    unit: "KiB",
    better: "lower",
    decimals: 1,
    pick: () => undefined,
  },
} satisfies Record<
  string,
  {
    key: string;
    label: string;
    unit: string;
    better: Better;
    decimals: number;
    pick: (s: Sample) => number | undefined;
  }
>;

/** Rows of the table for one figure: portcullis's and nginx's task keys ("hs" means hs.portcullis, hs.nginx). */
interface FigureSpec {
  readonly key: string;
  readonly label: string;
  readonly runs: string | readonly [string, string];
  readonly kinds: readonly (keyof typeof KINDS)[];
  readonly noReference?: string | undefined;
}

const progress = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A server under test: a process and one of its ports. */
interface Subject {
  readonly label: string;
  readonly proc: ManagedProcess;
  readonly port: number;
}

/** One measured phase. */
interface Sample {
  readonly perSecond: number;
  readonly cpuUsPerItem: number;
  readonly outcomes: Record<string, number>;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
}

const warnings: string[] = [];
/** Set on SIGINT/SIGTERM: the signal handler cleans up and exits; the interrupted run stays quiet. */
let interrupted = false;

type Who = "device" | "wrong-device" | "revoked-device";

function target(pki: DemoPki, port: number, who: Who, path = BENCH_PATH): Target {
  const files: Record<Who, [string, string]> = {
    device: [pki.deviceCert, pki.deviceKey],
    "wrong-device": [pki.wrongDeviceCert, pki.wrongDeviceKey],
    "revoked-device": [pki.revokedDeviceCert, pki.revokedDeviceKey],
  };
  const [certFile, keyFile] = files[who];
  return { port, servername: "localhost", path, certFile, keyFile, caFile: pki.caCert };
}

function describeOutcomes(outcomes: Record<string, number>): string {
  return Object.entries(outcomes)
    .map(([k, v]) => `${k}×${v}`)
    .join(", ");
}

const ok = (outcome: string) => outcome === "200";
/** A rejection: an HTTP 400/401/403 answer, or (handshake mode) a failed or reset TLS connection. */
const rejected = (outcome: string) =>
  outcome === "400" ||
  outcome === "401" ||
  outcome === "403" ||
  outcome.startsWith("tls:") ||
  outcome === "closed-without-response";

/** Warms up, then runs the load once with the server's CPU time read around it. */
async function measure(
  loadgen: LoadGenerator,
  subject: Subject,
  mode: LoadMode,
  to: Target,
  expected: (outcome: string) => boolean,
  what: string,
  rep: number,
  concurrency = CONCURRENCY,
): Promise<Sample> {
  const request = { mode, target: to, concurrency, latency: mode !== "handshake" };
  // The warm-up's keep-alive connections stay open into the measured run: it holds no handshakes.
  if (WARMUP_MS > 0) await loadgen.run({ ...request, durationMs: WARMUP_MS, keepOpen: mode !== "handshake" });
  const pids = processTree(subject.proc.pid);
  const cpuBefore = cpuMs(pids);
  const result: RunResult = await loadgen.run({ ...request, durationMs: DURATION_MS });
  const cpu = cpuMs(pids) - cpuBefore;
  if (!subject.proc.alive) throw new Error(`${subject.label} died during ${what}:\n${subject.proc.output()}`);
  const unexpected = Object.entries(result.outcomes).filter(([outcome]) => !expected(outcome));
  if (unexpected.length > 0) {
    warnings.push(
      `${subject.label}, ${what}, repetition ${rep + 1}: unexpected outcomes ${describeOutcomes(result.outcomes)}`,
    );
  }
  const good = result.completed - unexpected.reduce((sum, [, n]) => sum + n, 0);
  const sample: Sample = {
    perSecond: good / (result.elapsedMs / 1000),
    cpuUsPerItem: good > 0 ? (cpu * 1000) / good : Number.NaN,
    outcomes: result.outcomes,
    ...(result.p50Ms !== undefined ? { p50Ms: result.p50Ms, p99Ms: result.p99Ms } : {}),
  };
  const latency =
    sample.p50Ms !== undefined
      ? `, p50 ${sample.p50Ms.toFixed(2)} ms, p99 ${sample.p99Ms?.toFixed(2)} ms`
      : "";
  progress(
    `  ${subject.label.padEnd(28)} ${what.padEnd(20)} ${sample.perSecond.toFixed(0).padStart(6)}/s, ` +
      `server CPU ${sample.cpuUsPerItem.toFixed(0)} µs each${latency} (${describeOutcomes(result.outcomes)})`,
  );
  return sample;
}

/** RSS growth per connection while `count` authenticated connections sit idle. */
async function idleMemory(
  loadgen: LoadGenerator,
  subject: Subject,
  to: Target,
  rep: number,
): Promise<number> {
  await sleep(700);
  const pids = processTree(subject.proc.pid);
  const before = rssKiB(pids);
  const opened = await loadgen.open(to, IDLE_CONNECTIONS);
  await sleep(1500);
  const after = rssKiB(pids);
  const closed = await loadgen.close();
  if (opened.failed > 0 || closed.stillOpen < opened.open) {
    warnings.push(
      `${subject.label}, idle, repetition ${rep + 1}: ${opened.open} opened, ${opened.failed} failed, ` +
        `${closed.stillOpen} still open when measured`,
    );
  }
  const perConnection = (after - before) / Math.max(1, closed.stillOpen);
  progress(
    `  ${subject.label.padEnd(28)} ${"idle".padEnd(20)} RSS ${before} → ${after} KiB with ` +
      `${closed.stillOpen} idle connections: ${perConnection.toFixed(1)} KiB each`,
  );
  return perConnection;
}

function nginxVersion(binary: string): string {
  const out = spawnSync(binary, ["-v"], { encoding: "utf8" });
  return (out.stderr || out.stdout).trim().replace(/^nginx version:\s*/, "");
}

/** ISO 8601 basic format, UTC, to the second: 20261204T163719Z (sorts, and is safe in file names). */
function stamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d+Z$/, "Z")
    .replace(/[-:]/g, "");
}

/** A measurement of one repetition (a phase's sample, or a memory figure), and its one-off warm-up. */
interface Task {
  readonly key: string;
  readonly run: (rep: number) => Promise<Sample | number>;
  readonly warm?: () => Promise<void>;
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
    const startedAt = new Date();
    const started = Date.now();
    const source = sourceState(ROOT);
    if (source.staleDist) {
      const text =
        "dist/ is older than src/ (the bench runs bin/portcullis.js, i.e. dist/): run `npm run build`";
      progress(`warning: ${text}`);
      warnings.push(text);
    }
    progress(`setting up the demo PKI in ${dir}`);
    const pki = await ensureDemoPki(dir);
    const upstream = await startFixedUpstream();
    closeUpstream = upstream.close;
    const portcullis = await startPortcullis(pki, upstream.port);
    const clustered = await startPortcullis(pki, upstream.port, 2);
    const nginxBinary = args["no-nginx"] ? undefined : findNginx();
    let nginx: Subject | undefined;
    let nginxCrl: Subject | undefined;
    let nginxHttp2 = false;
    if (args["no-nginx"]) {
      progress("--no-nginx: measuring Portcullis alone (absolute numbers, no ratios)");
    } else if (nginxBinary) {
      const n = await startNginx(nginxBinary, pki, upstream.port);
      const label = `nginx ${nginxVersion(nginxBinary)}`;
      nginx = { label, proc: n.proc, port: n.ports.port };
      nginxCrl = { label: `${label} (ssl_crl)`, proc: n.proc, port: n.ports.crlPort };
      nginxHttp2 = n.http2;
      if (!nginxHttp2) progress("this nginx has no HTTP/2 module: the HTTP/2 figure is Portcullis alone");
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
    const crl: Subject = {
      label: "portcullis (application, CRL)",
      proc: portcullis.proc,
      port: portcullis.ports.revocation,
    };
    const w2: Subject = {
      label: "portcullis --workers 2",
      proc: clustered.proc,
      port: clustered.ports.application,
    };
    loadgen = new LoadGenerator();
    const lg = loadgen;

    const device = (s: Subject) => target(pki, s.port, "device");
    const wrong = (s: Subject) => target(pki, s.port, "wrong-device");
    const crlDevice = (s: Subject) => target(pki, s.port, "device", BENCH_CRL_PATH);

    // Revocation really on: the revoked device must be turned away where the figure says CRL.
    for (const s of [crl, ...(nginxCrl ? [nginxCrl] : [])]) {
      const probe = await lg.run({
        mode: "handshake",
        target: target(pki, s.port, "revoked-device", BENCH_CRL_PATH),
        concurrency: 2,
        durationMs: 300,
        latency: false,
      });
      const letThrough = probe.outcomes["200"] ?? 0;
      progress(`revocation check on ${s.label}: revoked-device → ${describeOutcomes(probe.outcomes)}`);
      if (letThrough > 0 || probe.completed === 0)
        warnings.push(`${s.label}: revoked-device was not refused (${describeOutcomes(probe.outcomes)})`);
    }

    // A process keeps the memory it grew for one repetition's idle connections and reuses it in the next
    // (Node's heap always, nginx's malloc arenas often), so each repetition measures a new process of each,
    // warmed up first on the same paths on a small scale.
    const idleInNewProcess =
      (start: () => Promise<{ proc: ManagedProcess; port: number }>, label: string) =>
      async (rep: number): Promise<number> => {
        const started = await start();
        try {
          const s: Subject = { label, proc: started.proc, port: started.port };
          await lg.run({
            mode: "handshake",
            target: device(s),
            concurrency: CONCURRENCY,
            durationMs: 500,
            latency: false,
          });
          await lg.open(device(s), 32);
          await lg.close();
          return await idleMemory(lg, s, device(s), rep);
        } finally {
          await started.proc.stop();
        }
      };
    let idleRuns = 0;
    const newPortcullis = async () => {
      const p = await startPortcullis(pki, upstream.port, 1, `idle-${++idleRuns}`);
      return { proc: p.proc, port: p.ports.application };
    };
    const newNginx = (binary: string) => async () => {
      const n = await startNginx(binary, pki, upstream.port, `idle-${++idleRuns}`);
      return { proc: n.proc, port: n.ports.port };
    };
    // A Portcullis phase also has a warm-up run of its own before the first repetition (JIT, caches), so
    // that the short warm-up before each measured phase only has to settle the server after a switch.
    const phase =
      (
        s: Subject,
        mode: LoadMode,
        to: (s: Subject) => Target,
        expect: (o: string) => boolean,
        what: string,
        concurrency = CONCURRENCY,
      ) =>
      (key: string): Task => ({
        key,
        run: (rep) => measure(lg, s, mode, to(s), expect, what, rep, concurrency),
        ...(s.proc === nginx?.proc
          ? {}
          : {
              warm: async () => {
                await lg.run({
                  mode,
                  target: to(s),
                  concurrency,
                  durationMs: ONE_OFF_WARMUP_MS,
                  latency: false,
                });
              },
            }),
      });
    const withNginx = (
      key: string,
      s: Subject | undefined,
      make: (s: Subject) => (key: string) => Task,
    ): Task[] => (s ? [make(s)(key)] : []);
    const groups: { title: string; tasks: Task[] }[] = [
      {
        title: "full mTLS handshake + 1 request (new connection each, no resumption), revocation off",
        tasks: [
          phase(app, "handshake", device, ok, "handshakes")("hs.portcullis"),
          ...withNginx("hs.nginx", nginx, (s) => phase(s, "handshake", device, ok, "handshakes")),
          phase(hs, "handshake", device, ok, "handshakes")("hs.handshakeMode"),
          phase(w2, "handshake", device, ok, "handshakes")("hs.workers2"),
        ],
      },
      {
        title: "full mTLS handshake + 1 request, CRL revocation on (Portcullis strict, nginx ssl_crl)",
        tasks: [
          phase(crl, "handshake", crlDevice, ok, "handshakes (CRL)")("crl.portcullis"),
          ...withNginx("crl.nginx", nginxCrl, (s) =>
            phase(s, "handshake", crlDevice, ok, "handshakes (CRL)"),
          ),
        ],
      },
      {
        title: "keep-alive requests through the proxy, HTTP/1.1",
        tasks: [
          phase(app, "keepalive", device, ok, "keep-alive h1")("ka.portcullis"),
          ...withNginx("ka.nginx", nginx, (s) => phase(s, "keepalive", device, ok, "keep-alive h1")),
          phase(w2, "keepalive", device, ok, "keep-alive h1")("ka.workers2"),
        ],
      },
      {
        title: `keep-alive requests through the proxy, HTTP/1.1, ${WIDE_CONCURRENCY} connections (as issue 9 measured)`,
        tasks: [
          phase(app, "keepalive", device, ok, "keep-alive h1 wide", WIDE_CONCURRENCY)("kaw.portcullis"),
          ...withNginx("kaw.nginx", nginx, (s) =>
            phase(s, "keepalive", device, ok, "keep-alive h1 wide", WIDE_CONCURRENCY),
          ),
        ],
      },
      {
        title: "keep-alive requests through the proxy, HTTP/2 (one stream at a time per connection)",
        tasks: [
          phase(app, "h2", device, ok, "keep-alive h2")("h2.portcullis"),
          ...withNginx("h2.nginx", nginxHttp2 ? nginx : undefined, (s) =>
            phase(s, "h2", device, ok, "keep-alive h2"),
          ),
        ],
      },
      {
        title: `memory per idle authenticated connection (${IDLE_CONNECTIONS} connections)`,
        tasks: [
          { key: "idle.portcullis", run: idleInNewProcess(newPortcullis, "portcullis (new process)") },
          ...(nginx && nginxBinary
            ? [
                {
                  key: "idle.nginx",
                  run: idleInNewProcess(newNginx(nginxBinary), `${nginx.label} (new process)`),
                },
              ]
            : []),
        ],
      },
      {
        title: "rejections of the wrong-device certificate (untrusted CA)",
        tasks: [
          phase(app, "handshake", wrong, rejected, "rejections")("rj.portcullis"),
          ...withNginx("rj.nginx", nginx, (s) => phase(s, "handshake", wrong, rejected, "rejections")),
          phase(hs, "handshake", wrong, rejected, "rejections")("rj.handshakeMode"),
        ],
      },
    ];

    progress(
      `load: ${CONCURRENCY} connections, ${DURATION_MS / 1000} s per phase after ${WARMUP_MS / 1000} s warm-up, ` +
        `${REPEAT} interleaved repetitions (order reversed every other repetition)`,
    );
    progress(`warming Portcullis up: ${ONE_OFF_WARMUP_MS / 1000} s of each of its loads`);
    for (const group of groups) for (const t of group.tasks) await t.warm?.();
    const samples = new Map<string, (Sample | number)[]>();
    for (let rep = 0; rep < REPEAT; rep++) {
      progress(`repetition ${rep + 1} of ${REPEAT}`);
      for (const [i, group] of groups.entries()) {
        progress(`${i + 1}. ${group.title}`);
        const order = rep % 2 === 0 ? group.tasks : [...group.tasks].reverse();
        for (const t of order) {
          const value = await t.run(rep);
          const list = samples.get(t.key) ?? [];
          list[rep] = value;
          samples.set(t.key, list);
        }
      }
    }

    const series = (key: string, pick: (s: Sample) => number | undefined): (number | undefined)[] =>
      Array.from({ length: REPEAT }, (_, rep) => {
        const value = samples.get(key)?.[rep];
        return value === undefined ? undefined : typeof value === "number" ? value : pick(value);
      });
    const h2Missing = nginx && !nginxHttp2 ? "nginx without HTTP/2" : undefined;
    // Each spec gives one row per kind, the first of which carries the target.
    const specs: FigureSpec[] = [
      {
        key: "handshake",
        label: "(a) handshake + request, revocation off",
        runs: "hs",
        kinds: ["cpu", "rate"],
      },
      {
        key: "handshakeCrl",
        label: "(a) handshake + request, CRL on (strict)",
        runs: "crl",
        kinds: ["cpu", "rate"],
      },
      {
        key: "handshakeMode",
        label: "(a) handshake mode (TLS-level auth)",
        runs: ["hs.handshakeMode", "hs.nginx"],
        kinds: ["cpu", "rate"],
      },
      {
        key: "handshakeWorkers2",
        label: "(a) --workers 2 handshake + request",
        runs: ["hs.workers2", "hs.nginx"],
        kinds: ["cpu", "rate"],
      },
      {
        key: "keepAlive",
        label: "(b) keep-alive HTTP/1.1",
        runs: "ka",
        kinds: ["cpu", "rate", "p50", "p99"],
      },
      {
        key: "keepAliveWide",
        label: `(b) keep-alive HTTP/1.1, ${WIDE_CONCURRENCY} connections`,
        runs: "kaw",
        kinds: ["cpu", "rate", "p50", "p99"],
      },
      {
        key: "keepAliveWorkers2",
        label: "(b) --workers 2 keep-alive HTTP/1.1",
        runs: ["ka.workers2", "ka.nginx"],
        kinds: ["cpu", "rate"],
      },
      {
        key: "http2",
        label: "(c) keep-alive HTTP/2",
        runs: "h2",
        kinds: ["cpu", "rate", "p50", "p99"],
        noReference: h2Missing,
      },
      { key: "idle", label: "(d) memory per idle authenticated connection", runs: "idle", kinds: ["kib"] },
      { key: "rejection", label: "(e) 401 rejection (wrong CA)", runs: "rj", kinds: ["cpu", "rate"] },
      {
        key: "rejectionHandshakeMode",
        label: "(e) handshake-mode refusal (TLS alert)",
        runs: ["rj.handshakeMode", "rj.nginx"],
        kinds: ["cpu", "rate"],
      },
    ];
    const targets: Record<string, number> = {
      handshake: TARGET.handshake,
      handshakeCrl: TARGET.handshake,
      keepAlive: TARGET.keepAlive,
      keepAliveWide: TARGET.keepAlive,
      http2: TARGET.keepAlive,
      idle: TARGET.idleMemory,
      rejection: TARGET.rejection,
    };
    const figures: Figure[] = specs.flatMap((spec) => {
      const [p, n] =
        typeof spec.runs === "string" ? [`${spec.runs}.portcullis`, `${spec.runs}.nginx`] : spec.runs;
      return spec.kinds.map((kindName, i): Figure => {
        const kind = KINDS[kindName];
        const target = i === 0 ? targets[spec.key] : undefined;
        return {
          key: `${spec.key}.${kind.key}`,
          label: `${spec.label}: ${kind.label}`,
          unit: kind.unit,
          better: kind.better,
          decimals: kind.decimals,
          portcullis: series(p, kind.pick),
          reference: series(n, kind.pick),
          ...(target !== undefined ? { target } : {}),
          ...(spec.noReference !== undefined ? { noReference: spec.noReference } : {}),
        };
      });
    });

    // Phases whose repetitions disagree by more than a quarter around their median are flagged.
    const unstable: string[] = [];
    for (const f of figures.filter((x) => x.target !== undefined)) {
      const s = summarize(f);
      const values = (nginx && f.noReference === undefined ? s.ratios : f.portcullis).filter(
        (v): v is number => v !== undefined,
      );
      const mid = median(values);
      if (mid === undefined || values.length < 2) continue;
      const spread = (Math.max(...values) - Math.min(...values)) / mid;
      if (spread > 0.25) unstable.push(`${f.label} (spread ${(spread * 100).toFixed(0)}% of the median)`);
    }

    const runtimeSeconds = Math.round((Date.now() - started) / 1000);
    const machine = {
      cores: availableParallelism(),
      cpu: cpus()[0]?.model ?? "unknown",
      node: process.version,
      nginx: nginxBinary ? nginxVersion(nginxBinary) : null,
      nginxHttp2,
    };
    const settings = {
      repeat: REPEAT,
      order: "interleaved: each figure's subjects back to back, order reversed every other repetition",
      durationSeconds: DURATION_MS / 1000,
      warmupSeconds: WARMUP_MS / 1000,
      concurrency: CONCURRENCY,
      idleConnections: IDLE_CONNECTIONS,
      perIdentityConnectionCap: "lifted (the bench's devices share one certificate)",
    };
    const ratioNote =
      "ratio = portcullis ÷ nginx, the median of the per-repetition ratios (each repetition's pair measured " +
      "back to back), not the ratio of the medians; portcullis and nginx columns are medians over the " +
      "repetitions. Lower is better for µs, ms and KiB, higher for /s. Targets (issue 9) are printed, never " +
      "asserted.";
    const note =
      "A shared 2-core machine: the load generator, the upstream and the server share the cores, and other " +
      "work may run alongside, so absolute figures drift; the ratios of interleaved repetitions are what " +
      "carries over, and server CPU per item is the headline. nginx runs one worker with " +
      "`ssl_verify_client on` (it answers 401 for a bad certificate after the handshake, as Portcullis's " +
      "application mode does); handshake-mode rows compare a TLS-level refusal with it; --workers 2 rows put " +
      "two Portcullis processes (CPU summed) against the one nginx worker. (d) is the RSS growth of a new " +
      "process of each (warmed up on a few connections) while the idle connections are open.";
    const table = markdownTable(figures, nginx !== undefined);
    const headerLine =
      `Portcullis vs ${nginx ? nginx.label : "nginx (not measured)"}: ${machine.cores} cores (${machine.cpu}), ` +
      `Node ${machine.node}, ${CONCURRENCY} client connections, ${REPEAT} × ${DURATION_MS / 1000} s per ` +
      `figure and subject, ${startedAt.toISOString()}, commit ${source.commit ?? "unknown"}` +
      `${source.srcModified ? " + uncommitted src/ changes" : ""}`;
    const lines = [
      headerLine,
      "",
      table,
      "",
      ratioNote,
      ...(nginx && !nginxHttp2 ? ["This nginx build has no HTTP/2 module: (c) is Portcullis alone."] : []),
      ...(nginx
        ? []
        : [
            "nginx was not measured (not installed: `apt-get install nginx-light`, or --no-nginx): no reference, " +
              "so no ratios; the repetitions column lists Portcullis's values.",
          ]),
      "",
      `Note: ${note}`,
      ...unstable.map((u) => `unstable between repetitions: ${u}`),
      ...warnings.map((w) => `warning: ${w}`),
      `(${runtimeSeconds} s)`,
    ];
    const json = {
      bench: "gateway",
      date: startedAt.toISOString(),
      runtimeSeconds,
      machine,
      source,
      settings,
      ratio: ratioNote,
      figures: figures.map(figureJson),
      outcomes: Object.fromEntries(
        [...samples].map(([key, list]) => [
          key,
          list.map((v) => (typeof v === "number" ? null : v.outcomes)),
        ]),
      ),
      unstable,
      warnings,
      ratioAvailable: nginx !== undefined,
      note,
    };
    if (!args["no-save"]) {
      const markdown = `# Gateway benchmark, ${startedAt.toISOString()}\n\n${lines.join("\n")}\n\nSettings: ${JSON.stringify(settings)}\n`;
      const written = writeResults(ROOT, RESULTS_DIR, "gateway", stamp(startedAt), json, markdown);
      progress(`results: ${written.json}, ${written.markdown} (and latest.json, latest.md)`);
    }
    if (args.json) console.log(JSON.stringify(json, null, 2));
    else console.log(`\n${lines.join("\n")}`);
    return 0;
  } finally {
    if (!interrupted) await cleanup();
  }
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
