// Where an idle authenticated connection's memory goes: Portcullis (its gateway run in a probe process
// that can force GC, report heap/external/native figures and write heap snapshots) against nginx, for
// HTTP/1.1 and HTTP/2 devices that made one request each and then sit idle.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { DemoPki } from "../src/pki/demo-pki.ts";
import { FleetDevices } from "./lib/fleet-devices.ts";
import type { FleetTarget } from "./lib/fleet-protocol.ts";
import { FLEET_PATH, prepareFleet, startFixedUpstream } from "./lib/fleet-setup.ts";
import type { MemoryFigures, ProbeReply, ProbeRequest } from "./lib/gateway-probe.ts";
import { formatHeapDiff, heapDiff } from "./lib/heap-diff.ts";
import { IpcChild, killChildren } from "./lib/ipc-child.ts";

const USAGE = `usage: node bench/idle-memory.bench.ts [--connections N] [--protocols h1,h2] [--no-nginx] [--snapshots DIR] [--json]
  --connections  idle devices per measurement, at most 8000 (default 2000; twice as many are opened)
  --protocols    which to measure (default h1,h2)
  --no-nginx     skip the nginx reference
  --no-request   devices only connect (as bench/gateway.bench.ts's idle figure), no request
  --snapshots    write Portcullis heap snapshots before/after each measurement to DIR and print their diff
  --json         print the results as JSON`;

const { values: args } = parseArgs({
  options: {
    connections: { type: "string", default: "2000" },
    protocols: { type: "string", default: "h1,h2" },
    "no-nginx": { type: "boolean", default: false },
    "no-request": { type: "boolean", default: false },
    snapshots: { type: "string" },
    json: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
  strict: true,
});
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const COUNT = Number(args.connections);
const PROTOCOLS = args.protocols
  .split(",")
  .map((p) => (p === "h2" ? "h2" : "http/1.1")) as FleetTarget["protocol"][];
if (!(COUNT >= 1 && COUNT <= 8_000)) {
  console.error(USAGE);
  process.exit(2);
}
const progress = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const PROBE = fileURLToPath(new URL("./lib/gateway-probe.ts", import.meta.url));

function rssOf(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
    } catch {
      // gone
    }
  }
  return total;
}

function childPids(pid: number): number[] {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/);
    return [pid, ...children.filter(Boolean).map(Number)];
  } catch {
    return [pid];
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

interface Row {
  readonly subject: string;
  readonly protocol: string;
  readonly connections: number;
  /** KiB per connection. */
  readonly rss: number;
  readonly detail?: Record<keyof MemoryFigures, number>;
}

const rows: Row[] = [];

type Probe = IpcChild<ProbeRequest, ProbeReply>;

async function probeMeasure(probe: Probe): Promise<MemoryFigures> {
  const reply = await probe.ask({ kind: "measure" });
  if (reply.kind !== "measured") throw new Error(`probe: ${JSON.stringify(reply)}`);
  return reply;
}

/**
 * One fresh gateway per protocol. The first COUNT devices absorb what is paid once (JIT, pools, the heap
 * and malloc arenas growing); the figure is the growth the next COUNT devices cause.
 */
async function measurePortcullis(
  configFile: string,
  devices: FleetDevices,
  target: Omit<FleetTarget, "port">,
  snapshots: string | undefined,
): Promise<void> {
  const label = target.protocol === "h2" ? "h2" : "h1";
  const probe = new IpcChild<ProbeRequest, ProbeReply>("gateway probe", PROBE, [configFile], ["--expose-gc"]);
  try {
    const ready = await probe.next();
    if (ready.kind !== "ready") throw new Error(`probe: ${JSON.stringify(ready)}`);
    const to = { ...target, port: ready.port };
    await open(devices, to, COUNT, `portcullis ${label} (warm-up)`);
    await sleep(1000);
    const snapshot = async (when: string) => {
      if (snapshots)
        await probe.ask({ kind: "snapshot", file: join(snapshots, `${label}-${when}.heapsnapshot`) });
    };
    // A snapshot's own allocations stay in the malloc arenas: with --snapshots the figures are the
    // snapshots' diff, the memory figures are not comparable.
    await snapshot("before");
    const rssBefore = rssOf([probe.pid]);
    const before = await probeMeasure(probe);
    await open(devices, to, COUNT, `portcullis ${label}`);
    await sleep(2000);
    const rssAfter = rssOf([probe.pid]);
    const after = await probeMeasure(probe);
    await snapshot("after");
    await devices.close();
    const per = (k: keyof MemoryFigures) => (after[k] - before[k]) / COUNT;
    const detail = Object.fromEntries(
      (Object.keys(after) as (keyof MemoryFigures)[]).map((k) => [k, Math.round(per(k) * 100) / 100]),
    ) as Record<keyof MemoryFigures, number>;
    const rss = (rssAfter - rssBefore) / COUNT;
    rows.push({ subject: "portcullis", protocol: label, connections: COUNT, rss, detail });
    const native = per("anonKiB") - per("heapTotalKiB") - per("arrayBuffersKiB");
    progress(
      `  portcullis ${label}: RSS ${rss.toFixed(1)} KiB/conn (after GC ${per("rssKiB").toFixed(1)}); anon ${per("anonKiB").toFixed(1)}: ` +
        `heap used ${per("heapUsedKiB").toFixed(1)} (committed ${per("heapTotalKiB").toFixed(1)}), ` +
        `array buffers ${per("arrayBuffersKiB").toFixed(1)}, external ${per("externalKiB").toFixed(1)}, ` +
        `native (anon - heap committed - array buffers) ${native.toFixed(1)}`,
    );
    if (snapshots) {
      const diff = heapDiff(
        join(snapshots, `${label}-before.heapsnapshot`),
        join(snapshots, `${label}-after.heapsnapshot`),
      );
      const text = formatHeapDiff(diff, COUNT, 45);
      writeFileSync(join(snapshots, `${label}-diff.txt`), `${text}\n`);
      progress(text);
    }
  } finally {
    await devices.close();
    await probe.stop();
  }
}

async function open(devices: FleetDevices, target: FleetTarget, count: number, what: string): Promise<void> {
  const opened = await devices.open(target, count, 100);
  const status = await devices.status();
  if (opened.failed > 0 || status.dropped > 0)
    throw new Error(
      `${what}: ${opened.failed} failed (${JSON.stringify(opened.failures)}), ${status.dropped} dropped`,
    );
}

function nginxConfig(dir: string, pki: DemoPki, port: number, upstreamPort: number): string {
  return `daemon off;
worker_processes 1;
worker_rlimit_nofile 19000;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 18000; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-tmp/client_body;
  proxy_temp_path ${dir}/nginx-tmp/proxy;
  fastcgi_temp_path ${dir}/nginx-tmp/fastcgi;
  uwsgi_temp_path ${dir}/nginx-tmp/uwsgi;
  scgi_temp_path ${dir}/nginx-tmp/scgi;
  upstream fleet_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port} ssl http2;
    server_name localhost;
    ssl_certificate ${pki.serverCert};
    ssl_certificate_key ${pki.serverKey};
    ssl_client_certificate ${pki.caChain};
    ssl_verify_client on;
    ssl_verify_depth 3;
    keepalive_timeout 600s;
    http2_idle_timeout 600s;
    location / {
      proxy_pass http://fleet_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Client-Subject $ssl_client_s_dn;
    }
  }
}
`;
}

async function measureNginx(
  dir: string,
  pki: DemoPki,
  upstreamPort: number,
  devices: FleetDevices,
  protocol: FleetTarget["protocol"],
): Promise<void> {
  const label = protocol === "h2" ? "h2" : "h1";
  const port = await freePort();
  mkdirSync(join(dir, "nginx-tmp"), { recursive: true });
  const file = join(dir, "nginx.conf");
  writeFileSync(file, nginxConfig(dir, pki, port, upstreamPort));
  const nginx = spawn("/usr/sbin/nginx", ["-p", `${dir}/`, "-c", file, "-e", join(dir, "nginx-error.log")], {
    stdio: "ignore",
  });
  try {
    await sleep(1000);
    const pids = childPids(nginx.pid ?? 0);
    const target = { ...baseTarget(pki), port, protocol };
    await open(devices, target, COUNT, `nginx ${label} (warm-up)`);
    await sleep(1000);
    const before = rssOf(pids);
    await open(devices, target, COUNT, `nginx ${label}`);
    await sleep(2000);
    const after = rssOf(pids);
    const rss = (after - before) / COUNT;
    rows.push({ subject: "nginx", protocol: label, connections: COUNT, rss });
    progress(`  nginx ${label}: RSS ${rss.toFixed(1)} KiB/conn`);
  } finally {
    await devices.close();
    nginx.kill("SIGTERM");
    await new Promise((resolve) => nginx.once("exit", resolve));
  }
}

function baseTarget(pki: DemoPki): Omit<FleetTarget, "protocol" | "port"> {
  return {
    servername: "localhost",
    path: FLEET_PATH,
    certFile: pki.deviceCert,
    keyFile: pki.deviceKey,
    caFile: pki.caCert,
    request: !args["no-request"],
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-idle-"));
  const upstream = await startFixedUpstream();
  const devices = new FleetDevices(1);
  try {
    const port = await freePort();
    const { pki, file } = await prepareFleet(dir, {
      port,
      upstreamPort: upstream.port,
      maxConnections: 50_000,
      idleTimeout: "10m",
    });
    if (args.snapshots) mkdirSync(args.snapshots, { recursive: true });
    const what = args["no-request"] ? "no request" : "one request each";
    progress(`${COUNT} + ${COUNT} idle devices per measurement, ${what} (Node ${process.version})`);
    for (const protocol of PROTOCOLS) {
      await measurePortcullis(file, devices, { ...baseTarget(pki), protocol }, args.snapshots);
      if (!args["no-nginx"]) await measureNginx(dir, pki, upstream.port, devices, protocol);
    }
    if (args.json) console.log(JSON.stringify({ node: process.version, connections: COUNT, rows }, null, 2));
    else {
      console.log("\n| server | protocol | KiB per idle connection (RSS) | ratio to nginx |");
      console.log("|---|---|---:|---:|");
      for (const r of rows) {
        const ref = rows.find((n) => n.subject === "nginx" && n.protocol === r.protocol);
        const ratio = ref && ref.rss > 0 ? `${(r.rss / ref.rss).toFixed(2)}×` : "n/a";
        console.log(`| ${r.subject} | ${r.protocol} | ${r.rss.toFixed(1)} | ${ratio} |`);
      }
    }
  } finally {
    await devices.stop();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.on("exit", killChildren);
main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exitCode = 1;
});
