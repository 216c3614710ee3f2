// CLI start-up: wall time (median) and CPU of `portcullis version`, `help` and `verify --ca … LEAF`, on the
// pinned Node 24 and through an older shell `node` (the launcher's re-exec), against a reference measured
// in the same run: a bare `node -e 0`, the floor of any Node CLI. Aim (issue 7): version and verify under
// 0.3 s of wall time on the project's 2-core machine.
import { execFileSync, spawnSync } from "node:child_process";
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { ticksPerSecond } from "./lib/proc.ts";

const USAGE = `usage: node bench/cli.bench.ts [--json] [--runs N]
  --json      print the results as JSON (progress still goes to stderr)
  --runs N    timed runs per command, after one warm-up run (default 10)`;

const { values: args } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    runs: { type: "string", default: "10" },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const RUNS = Number(args.runs);
if (!(Number.isInteger(RUNS) && RUNS >= 1)) {
  console.error(USAGE);
  process.exit(2);
}
const AIM_MS = 300;

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const BIN = join(ROOT, "bin", "portcullis.js");
const progress = (line: string) => process.stderr.write(`${line}\n`);

interface Subject {
  readonly key: string;
  readonly label: string;
  readonly node: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** Exit code and stdout a correct run gives: a fast failure must not pass for a fast start. */
  readonly expect: { readonly code: number; readonly stdout: RegExp };
}

interface Result {
  readonly key: string;
  readonly label: string;
  readonly medianMs: number;
  readonly cpuMs: number;
  readonly ratio: number;
}

/** CPU (user + sys, ms) of this process's waited-for children so far: /proc/self/stat cutime + cstime. */
function childrenCpuMs(): number {
  const text = readFileSync("/proc/self/stat", "utf8");
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[13]) + Number(fields[14])) * 1000) / ticksPerSecond();
}

function runOnce(s: Subject): { wallMs: number; cpuMs: number } {
  const cpuBefore = childrenCpuMs();
  const started = performance.now();
  const r = spawnSync(s.node, s.args, {
    cwd: ROOT,
    env: { ...process.env, ...s.env },
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const wallMs = performance.now() - started;
  if (r.status !== s.expect.code || !s.expect.stdout.test(r.stdout)) {
    throw new Error(
      `${s.label}: exit ${r.status ?? r.signal}, expected ${s.expect.code}\n${r.stdout}${r.stderr}`,
    );
  }
  return { wallMs, cpuMs: childrenCpuMs() - cpuBefore };
}

const median = (xs: readonly number[]) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

/** One warm-up run each (page cache, V8 compile cache), then RUNS rounds in turn, so noise hits all alike. */
function measure(subjects: readonly Subject[]): Map<string, { wall: number[]; cpu: number[] }> {
  const samples = new Map(subjects.map((s) => [s.key, { wall: [] as number[], cpu: [] as number[] }]));
  for (const s of subjects) runOnce(s);
  for (let round = 0; round < RUNS; round++) {
    for (const s of subjects) {
      const { wallMs, cpuMs } = runOnce(s);
      samples.get(s.key)?.wall.push(wallMs);
      samples.get(s.key)?.cpu.push(cpuMs);
    }
  }
  return samples;
}

/** The first `node` on PATH outside this project's node_modules (npm run puts the pinned one first). */
function shellNode(): { path: string; version: string } | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir || dir.startsWith(join(ROOT, "node_modules"))) continue;
    const candidate = join(dir, "node");
    try {
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    const version = execFileSync(candidate, ["--version"], { encoding: "utf8" }).trim();
    return { path: candidate, version };
  }
  return undefined;
}

function main(): void {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-cli-bench-"));
  try {
    progress(`making a CA and a device certificate in ${dir}`);
    const pki = (...argv: string[]) =>
      execFileSync(process.execPath, [BIN, "pki", ...argv], { cwd: ROOT, stdio: "ignore" });
    pki("init", "--dir", dir);
    pki("issue", "device", "--dir", dir, "--id", "dev1");
    const verifyArgs = ["verify", "--ca", join(dir, "root.crt"), join(dir, "dev1.crt")];

    const node24 = process.execPath;
    const version = { code: 0, stdout: /^portcullis \d+\.\d+\.\d+ \(node v24\./ };
    const help = { code: 0, stdout: /^Usage: portcullis <command>/ };
    const accepted = { code: 0, stdout: /^accepted$/m };
    const subjects: Subject[] = [
      {
        key: "reference",
        label: "reference: node -e 0 (bare Node start)",
        node: node24,
        args: ["-e", "0"],
        expect: { code: 0, stdout: /^$/ },
      },
      { key: "version", label: "portcullis version", node: node24, args: [BIN, "version"], expect: version },
      { key: "help", label: "portcullis help", node: node24, args: [BIN, "help"], expect: help },
      {
        key: "verify",
        label: "portcullis verify --ca root.crt dev1.crt",
        node: node24,
        args: [BIN, ...verifyArgs],
        expect: accepted,
      },
      {
        key: "verifyNoCompileCache",
        label: "  the same, NODE_DISABLE_COMPILE_CACHE=1",
        node: node24,
        args: [BIN, ...verifyArgs],
        env: { NODE_DISABLE_COMPILE_CACHE: "1" },
        expect: accepted,
      },
      {
        key: "verifyFromSource",
        label: "  the same from src/ (PORTCULLIS_FROM_SOURCE=1)",
        node: node24,
        args: [BIN, ...verifyArgs],
        env: { PORTCULLIS_FROM_SOURCE: "1" },
        expect: accepted,
      },
      {
        key: "versionFromSource",
        label: "portcullis version from src/ (PORTCULLIS_FROM_SOURCE=1)",
        node: node24,
        args: [BIN, "version"],
        env: { PORTCULLIS_FROM_SOURCE: "1" },
        expect: version,
      },
    ];
    const shell = shellNode();
    const shellMajor = Number(shell?.version.replace(/^v/, "").split(".")[0]);
    if (shell && shellMajor < 24) {
      const via = `via ${shell.path} ${shell.version} (re-exec):`;
      subjects.push(
        {
          key: "reexecVersion",
          label: `${via} version`,
          node: shell.path,
          args: [BIN, "version"],
          expect: version,
        },
        { key: "reexecHelp", label: `${via} help`, node: shell.path, args: [BIN, "help"], expect: help },
        {
          key: "reexecVerify",
          label: `${via} verify`,
          node: shell.path,
          args: [BIN, ...verifyArgs],
          expect: accepted,
        },
      );
    } else {
      progress(
        shell
          ? `the shell's node is ${shell.version}: no re-exec path to measure`
          : "no node on PATH outside node_modules: no re-exec path to measure",
      );
    }

    progress(`${subjects.length} commands, 1 warm-up + ${RUNS} runs each, in turn`);
    const samples = measure(subjects);
    const reference = median(samples.get("reference")?.wall ?? []);
    const results: Result[] = subjects.map((s) => {
      const x = samples.get(s.key) ?? { wall: [], cpu: [] };
      const medianMs = median(x.wall);
      const cpuMs = x.cpu.reduce((a, b) => a + b, 0) / Math.max(1, x.cpu.length);
      return { key: s.key, label: s.label, medianMs, cpuMs, ratio: medianMs / reference };
    });
    const byKey = (key: string) => results.find((r) => r.key === key);
    const aims = [
      ["version", "version"],
      ["verify", "verify"],
      ["reexecVersion", "version via the shell's node"],
      ["reexecVerify", "verify via the shell's node"],
    ].flatMap(([key = "", name = ""]) => {
      const r = byKey(key);
      return r ? [{ key, name, medianMs: r.medianMs, met: r.medianMs < AIM_MS }] : [];
    });

    if (args.json) {
      const machine = {
        cores: availableParallelism(),
        node: process.version,
        shellNode: shell?.version ?? null,
      };
      console.log(JSON.stringify({ machine, runs: RUNS, aimMs: AIM_MS, results, aims }, null, 2));
      return;
    }
    const width = Math.max(...results.map((r) => r.label.length));
    const lines = [
      `CLI start — node ${process.version}, ${availableParallelism()} CPU(s), median wall time of ${RUNS} runs, ` +
        "mean CPU (user + sys) per run",
      "  (a shared machine is noisy: the ratios to the bare start, measured in turn with the rest, are the figures)",
      ...results.map(
        (r) =>
          `  ${r.label.padEnd(width)} ${r.medianMs.toFixed(1).padStart(7)} ms wall ${r.cpuMs.toFixed(0).padStart(5)} ms CPU ` +
          `${r.ratio.toFixed(2).padStart(6)}× bare start`,
      ),
      ...aims.map(
        (a) =>
          `  aim: ${a.name} under ${AIM_MS} ms wall: ` +
          (a.met ? `met (${a.medianMs.toFixed(0)} ms)` : `MISSED (${a.medianMs.toFixed(0)} ms)`),
      ),
      "",
    ];
    process.stdout.write(lines.join("\n"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
