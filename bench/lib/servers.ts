// The processes under test and their surroundings: a minimal fixed-response upstream, Portcullis
// (`bin/portcullis.js start`) and nginx (generated nginx.conf, `daemon off`), each a tracked child process.
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, writeFileSync } from "node:fs";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { ConfigInput } from "../../src/config/schema.ts";
import type { DemoPki } from "../../src/pki/demo-pki.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A child process that is stopped at the end, on error and on Ctrl-C. */
export class ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  #output = "";

  /** Spawns `command` with its output piped (and kept: the last 8 KiB). */
  static spawn(name: string, command: string, args: string[], cwd: string): ManagedProcess {
    return new ManagedProcess(name, spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] }));
  }

  constructor(name: string, child: ChildProcess) {
    this.name = name;
    this.child = child;
    const keep = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString()).slice(-8192);
    };
    this.child.stdout?.on("data", keep);
    this.child.stderr?.on("data", keep);
    this.exited = new Promise((resolve) => {
      this.child.once("exit", () => resolve());
      this.child.once("error", (err) => {
        keep(Buffer.from(String(err)));
        resolve();
      });
    });
    running.add(this);
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} did not start: ${this.#output}`);
    return this.child.pid;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last few KiB it wrote. */
  output(): string {
    return this.#output;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.alive) {
      this.child.kill("SIGTERM");
      const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    running.delete(this);
  }
}

const running = new Set<ManagedProcess>();

/** Stops every child still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

/** Synchronous last resort (process "exit"): SIGKILL whatever is left. */
export function killAllNow(): void {
  for (const p of running) if (p.alive) p.child.kill("SIGKILL");
}

/** Free loopback ports (bound to port 0, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    servers.push(server);
    ports.push(address.port);
  }
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket: Socket = netConnect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Waits until every port accepts TCP connections, failing early if the process exits. */
export async function waitForPorts(proc: ManagedProcess, ports: number[], timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const port of ports) {
    while (!(await canConnect(port))) {
      if (!proc.alive) throw new Error(`${proc.name} exited before listening:\n${proc.output()}`);
      if (Date.now() > deadline)
        throw new Error(`${proc.name} is not listening on ${port}:\n${proc.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const UPSTREAM_RESPONSE = Buffer.from(
  "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\nok\n",
  "latin1",
);

/**
 * A keep-alive HTTP/1.1 upstream answering every request with the same 3-byte body, at almost no CPU:
 * it only counts header terminators, so it serves body-less requests (the bench sends GETs) only.
 */
export async function startFixedUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let tail = "";
    socket.on("data", (chunk: Buffer) => {
      const text = tail + chunk.toString("latin1");
      let answers = 0;
      let end = 0;
      for (let at = text.indexOf("\r\n\r\n"); at >= 0; at = text.indexOf("\r\n\r\n", end)) {
        answers++;
        end = at + 4;
      }
      tail = text.slice(Math.max(end, text.length - 3));
      if (answers === 1) socket.write(UPSTREAM_RESPONSE);
      else if (answers > 1) socket.write(Buffer.concat(Array(answers).fill(UPSTREAM_RESPONSE)));
    });
    socket.on("error", () => socket.destroy());
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("upstream has no port");
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export const BENCH_PATH = "/bench";

export interface PortcullisPorts {
  /** clientAuth: application (nginx's `ssl_verify_client on` behaves the same way). */
  application: number;
  /** clientAuth: handshake. */
  handshake: number;
}

/** `portcullis start` with an application-mode and a handshake-mode listener in front of the upstream. */
export async function startPortcullis(
  pki: DemoPki,
  upstreamPort: number,
  workers = 1,
): Promise<{ proc: ManagedProcess; ports: PortcullisPorts }> {
  const [application, handshake] = await freePorts(2);
  if (application === undefined || handshake === undefined) throw new Error("no free ports");
  const listener = (name: string, port: number, clientAuth: "application" | "handshake") => ({
    name,
    host: "127.0.0.1",
    port,
    clientAuth,
    certificates: [{ cert: pki.serverCert, key: pki.serverKey }],
    trustStores: ["devices"],
  });
  const config: ConfigInput = {
    listeners: [
      listener("application", application, "application"),
      listener("handshake", handshake, "handshake"),
    ],
    trustStores: [{ name: "devices", ca: [pki.caChain] }],
    services: [{ name: "upstream", targets: [`http://127.0.0.1:${upstreamPort}`] }],
    routes: [{ name: "bench", paths: [BENCH_PATH], service: "upstream", auth: { trustStores: ["devices"] } }],
    log: { level: "warn" },
  };
  const file = join(pki.dir, workers > 1 ? `portcullis-${workers}-workers.yaml` : "portcullis.yaml");
  writeFileSync(file, stringify({ ...config, store: { url: `sqlite:portcullis-${workers}.db` } }));
  const proc = ManagedProcess.spawn(
    workers > 1 ? `portcullis --workers ${workers}` : "portcullis",
    process.execPath,
    [join(ROOT, "bin", "portcullis.js"), "start", "--config", file, "--workers", String(workers)],
    ROOT,
  );
  await waitForPorts(proc, [application, handshake]);
  return { proc, ports: { application, handshake } };
}

/** nginx on PATH (or in /usr/sbin, often missing from a user's PATH), if installed. */
export function findNginx(): string | undefined {
  const dirs = (process.env.PATH ?? "").split(delimiter).filter(Boolean);
  for (const dir of [...dirs, "/usr/sbin", "/usr/local/sbin"]) {
    const candidate = join(dir, "nginx");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** nginx.conf: one worker (Portcullis is one process), the same certificates, CA and upstream. */
export function nginxConfig(pki: DemoPki, port: number, upstreamPort: number): string {
  const d = pki.dir;
  return `# Reference proxy for bench/gateway.bench.ts (generated).
daemon off;
worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${d}/nginx-tmp/client_body;
  proxy_temp_path ${d}/nginx-tmp/proxy;
  fastcgi_temp_path ${d}/nginx-tmp/fastcgi;
  uwsgi_temp_path ${d}/nginx-tmp/uwsgi;
  scgi_temp_path ${d}/nginx-tmp/scgi;
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${port} ssl;
    server_name localhost;
    ssl_certificate ${pki.serverCert};
    ssl_certificate_key ${pki.serverKey};
    ssl_client_certificate ${pki.caChain};
    ssl_verify_client on;
    ssl_verify_depth 3;
    keepalive_timeout 120s;
    keepalive_requests 1000000;
    error_page 495 496 =401 /unauthorized;
    location = /unauthorized {
      internal;
      default_type application/json;
      return 401 '{"message":"TLS certificate failed verification"}\\n';
    }
    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Client-Subject $ssl_client_s_dn;
    }
  }
}
`;
}

export async function startNginx(
  binary: string,
  pki: DemoPki,
  upstreamPort: number,
): Promise<{ proc: ManagedProcess; port: number }> {
  const [port] = await freePorts(1);
  if (port === undefined) throw new Error("no free port");
  mkdirSync(join(pki.dir, "nginx-tmp"), { recursive: true });
  const file = join(pki.dir, "nginx.conf");
  writeFileSync(file, nginxConfig(pki, port, upstreamPort));
  const proc = ManagedProcess.spawn(
    "nginx",
    binary,
    ["-p", `${pki.dir}/`, "-c", file, "-e", join(pki.dir, "nginx-error.log")],
    pki.dir,
  );
  await waitForPorts(proc, [port]);
  return { proc, port };
}
