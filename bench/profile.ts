// `node bench/profile.ts [keepalive|handshake] [--seconds N] [--top N] [--cpu]`: runs Portcullis (application
// mode, one route with an auth policy, the bench's fixed upstream) under `--cpu-prof` while the load generator
// drives it, then prints where the server's CPU went: the hottest functions by self time, and self time by
// source file. Not a benchmark (the profiler slows everything down): a map of where to look.
// docs/performance.md records what it showed. With --cpu, no profiler: the server's CPU per request, for a
// quick before/after while working (`npm run bench -- gateway` gives the figures against nginx). With
// --compare DIR (another checkout, built), both run side by side, measured in turns: the medians and the ratio;
// --nginx adds nginx (the bench's reference config) to the turns.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { ensureDemoPki } from "../src/pki/demo-pki.ts";
import { LoadGenerator } from "./lib/loadgen-client.ts";
import { cpuMs, processTree } from "./lib/proc.ts";
import {
  BENCH_PATH,
  findNginx,
  freePorts,
  ManagedProcess,
  ROOT,
  startFixedUpstream,
  startNginx,
  stopAll,
  waitForPorts,
} from "./lib/servers.ts";

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: "string", default: "8" },
    top: { type: "string", default: "40" },
    cpu: { type: "boolean", default: false },
    compare: { type: "string" },
    nginx: { type: "boolean", default: false },
    floor: { type: "boolean", default: false },
    repeat: { type: "string", default: "5" },
  },
});
const mode = positionals[0] ?? "keepalive";
if (!["keepalive", "handshake"].includes(mode)) throw new Error(`unknown mode ${mode}`);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function summarise(profile: Profile, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const file = frame.url.startsWith("file://") ? relative(ROOT, new URL(frame.url).pathname) : frame.url;
    const where = file === "" ? "(native)" : file;
    const fn = `${frame.functionName || "(anonymous)"}  ${where}:${frame.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    byFile.set(where, (byFile.get(where) ?? 0) + us);
  }
  const rows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `${((100 * us) / total).toFixed(1).padStart(5)}%  ${k}`)
      .join("\n");
  return `self time by function (top ${top}):\n${rows(byFunction)}\n\nself time by file:\n${rows(byFile)}\n`;
}

interface Server {
  readonly proc: ManagedProcess;
  readonly port: number;
  readonly profDir: string;
}

async function startServer(root: string, dir: string, name: string, upstreamPort: number, profile: boolean) {
  const pki = await ensureDemoPki(dir);
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error("no free port");
  const config = {
    listeners: [
      {
        name: "application",
        host: "127.0.0.1",
        port,
        clientAuth: "application",
        certificates: [{ cert: pki.serverCert, key: pki.serverKey }],
        trustStores: ["devices"],
        // The load generator is one device certificate on many connections.
        limits: { maxConnectionsPerIdentity: 100_000 },
      },
    ],
    trustStores: [{ name: "devices", ca: [pki.caChain] }],
    services: [{ name: "upstream", targets: [`http://127.0.0.1:${upstreamPort}`] }],
    routes: [{ name: "bench", paths: [BENCH_PATH], service: "upstream", auth: { trustStores: ["devices"] } }],
    store: { url: `sqlite:${name}.db` },
    log: { level: "warn" },
  };
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(config));
  const profDir = join(dir, `profile-${name}`);
  const proc = ManagedProcess.spawn(
    name,
    process.execPath,
    [
      ...(profile ? ["--cpu-prof", "--cpu-prof-dir", profDir] : []),
      join(root, "bin", "portcullis.js"),
      "start",
      "--config",
      file,
    ],
    root,
  );
  await waitForPorts(proc, [port]);
  return { proc, port, profDir, caFile: pki.caChain };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "portcullis-profile-"));
  const upstream = await startFixedUpstream();
  const roots = args.compare ? [ROOT, args.compare] : [ROOT];
  const servers: Server[] = [];
  const measuring = args.cpu || args.compare !== undefined || args.nginx || args.floor;
  const loadgen = new LoadGenerator();
  try {
    for (const [i, root] of roots.entries()) {
      servers.push(await startServer(root, dir, `server${i}`, upstream.port, !measuring));
    }
    if (args.floor) {
      const pki = await ensureDemoPki(dir);
      const [port] = await freePorts(1);
      if (port === undefined) throw new Error("no free port");
      const proc = ManagedProcess.spawn(
        "node-floor",
        process.execPath,
        [join(ROOT, "bench", "lib", "node-floor-server.ts")],
        ROOT,
        { PORT: String(port), DIR: pki.dir, SERVER: process.env.FLOOR_SERVER ?? "https" },
      );
      await waitForPorts(proc, [port]);
      servers.push({ proc, port, profDir: "" });
      roots.push("node-floor");
    }
    const nginxBinary = args.nginx ? findNginx() : undefined;
    if (args.nginx && !nginxBinary) throw new Error("nginx not found");
    if (nginxBinary) {
      const nginx = await startNginx(nginxBinary, await ensureDemoPki(dir), upstream.port);
      servers.push({ proc: nginx.proc, port: nginx.ports.port, profDir: "" });
      roots.push("nginx");
    }
    const run = (server: Server, durationMs: number) =>
      loadgen.run({
        mode: mode as "keepalive" | "handshake",
        target: {
          port: server.port,
          servername: "mtls.auth.local.com",
          path: BENCH_PATH,
          certFile: join(dir, "device.crt"),
          keyFile: join(dir, "device.key"),
          caFile: join(dir, "ca-chain.crt"),
        },
        concurrency: mode === "keepalive" ? 64 : 8,
        durationMs,
        latency: false,
      });
    const perItem: number[][] = servers.map(() => []);
    const repeat = servers.length > 1 ? Number(args.repeat) : 1;
    for (const server of servers) await run(server, 1_000);
    for (let r = 0; r < repeat; r++) {
      // Alternate the order, so that drift on a shared machine does not favour one side.
      const order = r % 2 === 0 ? servers.map((_, i) => i) : servers.map((_, i) => servers.length - 1 - i);
      for (const i of order) {
        const server = servers[i] as Server;
        const pids = processTree(server.proc.pid);
        const before = cpuMs(pids);
        const result = await run(server, Number(args.seconds) * 1000);
        const us = ((cpuMs(pids) - before) * 1000) / Math.max(1, result.completed);
        perItem[i]?.push(us);
        process.stdout.write(
          `${roots[i]} ${mode}: ${result.completed} completed, outcomes ${JSON.stringify(result.outcomes)}, ` +
            `server CPU ${us.toFixed(0)} µs per ${mode === "keepalive" ? "request" : "handshake"}\n`,
        );
      }
    }
    if (servers.length > 1) {
      const medians = perItem.map(median);
      const first = medians[0] ?? Number.NaN;
      process.stdout.write(
        `median µs: ${roots.map((r, i) => `${r} ${medians[i]?.toFixed(0)} (${(first / (medians[i] ?? 1)).toFixed(2)}×)`).join(", ")}\n`,
      );
    }
  } finally {
    await loadgen.stop();
    for (const server of servers) await server.proc.stop();
    await upstream.close();
  }
  const server = servers[0];
  if (measuring || !server) return;
  const [profileFile] = readdirSync(server.profDir).filter((f) => f.endsWith(".cpuprofile"));
  if (!profileFile) throw new Error(`no profile written:\n${server.proc.output()}`);
  const profile = JSON.parse(readFileSync(join(server.profDir, profileFile), "utf8")) as Profile;
  process.stdout.write(summarise(profile, Number(args.top)));
  process.stdout.write(`\nprofile: ${join(server.profDir, profileFile)}\n`);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => stopAll());
