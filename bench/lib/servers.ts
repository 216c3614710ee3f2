// The processes under test and their surroundings: a minimal fixed-response upstream, Portcullis
// (`bin/portcullis.js start`) and nginx (generated nginx.conf, `daemon off`), each a tracked child process.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from "node:fs";
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

  /** Spawns `command` with its output piped (and kept: the last 8 KiB); `env` adds to this process's. */
  static spawn(
    name: string,
    command: string,
    args: string[],
    cwd: string,
    env?: Readonly<Record<string, string>>,
  ): ManagedProcess {
    return new ManagedProcess(
      name,
      spawn(command, args, {
        cwd,
        stdio: ["ignore", "pipe", "pipe"],
        ...(env ? { env: { ...process.env, ...env } } : {}),
      }),
    );
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
/** The route whose trust store checks revocation (the demo CRL, strict), served on its own listener. */
export const BENCH_CRL_PATH = "/bench-crl";

export interface PortcullisPorts {
  /** clientAuth: application (nginx's `ssl_verify_client on` behaves the same way). */
  application: number;
  /** clientAuth: handshake. */
  handshake: number;
  /** clientAuth: application, trust store with CRL revocation in strict mode (as the demo's). */
  revocation: number;
}

/**
 * The bench's devices all present the demo's one device certificate: the per-identity connection cap (8 by
 * default, against hostile clients) would evict its keep-alive and idle connections, so it is lifted here.
 */
const BENCH_LIMITS = { maxConnectionsPerIdentity: 100_000 };

/**
 * `portcullis start` in front of the upstream with three listeners: application mode and handshake mode
 * (trust store without revocation checking) and application mode whose trust store checks the demo CRL in
 * strict mode, as `portcullis demo` does. `name` keeps each instance's config file and registry apart
 * (a running instance watches its config file).
 */
export async function startPortcullis(
  pki: DemoPki,
  upstreamPort: number,
  workers = 1,
  name = workers > 1 ? `${workers}-workers` : "main",
): Promise<{ proc: ManagedProcess; ports: PortcullisPorts }> {
  const [application, handshake, revocation] = await freePorts(3);
  if (application === undefined || handshake === undefined || revocation === undefined)
    throw new Error("no free ports");
  const listener = (
    name: string,
    port: number,
    clientAuth: "application" | "handshake",
    store: "devices" | "devices-crl",
  ) => ({
    name,
    host: "127.0.0.1",
    port,
    clientAuth,
    certificates: [{ cert: pki.serverCert, key: pki.serverKey }],
    trustStores: [store],
    limits: BENCH_LIMITS,
  });
  const config: ConfigInput = {
    listeners: [
      listener("application", application, "application", "devices"),
      listener("handshake", handshake, "handshake", "devices"),
      listener("revocation", revocation, "application", "devices-crl"),
    ],
    trustStores: [
      { name: "devices", ca: [pki.caChain] },
      {
        name: "devices-crl",
        ca: [pki.caChain],
        revocation: { mode: "strict", crl: { files: [pki.crl], distributionPoints: false } },
      },
    ],
    services: [{ name: "upstream", targets: [`http://127.0.0.1:${upstreamPort}`] }],
    routes: [
      { name: "bench", paths: [BENCH_PATH], service: "upstream", auth: { trustStores: ["devices"] } },
      {
        name: "bench-crl",
        paths: [BENCH_CRL_PATH],
        service: "upstream",
        auth: { trustStores: ["devices-crl"] },
      },
    ],
    log: { level: "warn" },
  };
  const file = join(pki.dir, `portcullis-${name}.yaml`);
  writeFileSync(file, stringify({ ...config, store: { url: `sqlite:portcullis-${name}.db` } }));
  const proc = ManagedProcess.spawn(
    `portcullis (${name}${workers > 1 ? `, --workers ${workers}` : ""})`,
    process.execPath,
    [join(ROOT, "bin", "portcullis.js"), "start", "--config", file, "--workers", String(workers)],
    ROOT,
  );
  await waitForPorts(proc, [application, handshake, revocation]);
  return { proc, ports: { application, handshake, revocation } };
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

/** `nginx -V` names the HTTP/2 module (Debian's nginx-light, nginx-core and nginx-full all have it). */
export function nginxHasHttp2(binary: string): boolean {
  const out = spawnSync(binary, ["-V"], { encoding: "utf8" });
  return /--with-http_v2_module/.test(`${out.stderr}${out.stdout}`);
}

export interface NginxPorts {
  /** `ssl_verify_client on`, no revocation checking; HTTP/2 too when the build has it. */
  port: number;
  /** The same with `ssl_crl` (the demo CRLs of the intermediate and the root). */
  crlPort: number;
}

/**
 * nginx.conf: one worker (Portcullis is one process), the same certificates, CA and upstream; a second
 * server checks revocation with `ssl_crl` (nginx sets OpenSSL's CRL_CHECK_ALL, so it needs a CRL for
 * every CA of the chain: the intermediate's and the root's, in one file).
 */
export function nginxConfig(
  pki: DemoPki,
  ports: NginxPorts,
  upstreamPort: number,
  http2: boolean,
  crlFile: string,
  name = "main",
): string {
  const d = pki.dir;
  const server = (port: number, crl: string | undefined) => `  server {
    listen 127.0.0.1:${port} ssl${http2 ? " http2" : ""};
    server_name localhost;
    ssl_certificate ${pki.serverCert};
    ssl_certificate_key ${pki.serverKey};
    ssl_client_certificate ${pki.caChain};
    ssl_verify_client on;
    ssl_verify_depth 3;${crl ? `\n    ssl_crl ${crl};` : ""}
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
`;
  return `# Reference proxy for bench/gateway.bench.ts (generated).
daemon off;
worker_processes 1;
pid ${d}/nginx-${name}.pid;
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
${server(ports.port, undefined)}${server(ports.crlPort, crlFile)}}
`;
}

/** nginx with the generated config; `name` keeps each instance's config and pid file apart. */
export async function startNginx(
  binary: string,
  pki: DemoPki,
  upstreamPort: number,
  name = "main",
): Promise<{ proc: ManagedProcess; ports: NginxPorts; http2: boolean }> {
  const [port, crlPort] = await freePorts(2);
  if (port === undefined || crlPort === undefined) throw new Error("no free port");
  const ports = { port, crlPort };
  const http2 = nginxHasHttp2(binary);
  mkdirSync(join(pki.dir, "nginx-tmp"), { recursive: true });
  const crlFile = join(pki.dir, "nginx-crls.pem");
  writeFileSync(crlFile, readFileSync(pki.crl, "utf8") + readFileSync(pki.rootCrl, "utf8"));
  const file = join(pki.dir, `nginx-${name}.conf`);
  writeFileSync(file, nginxConfig(pki, ports, upstreamPort, http2, crlFile, name));
  const proc = ManagedProcess.spawn(
    `nginx (${name})`,
    binary,
    ["-p", `${pki.dir}/`, "-c", file, "-e", join(pki.dir, "nginx-error.log")],
    pki.dir,
  );
  await waitForPorts(proc, [port, crlPort]);
  return { proc, ports, http2 };
}
