// `--workers N`: one gateway per core with node:cluster. The primary forks N workers that run the same
// config on shared ports (the kernel hands each connection to one of them), gives them one TLS ticket
// secret (a session resumes on any worker), forwards SIGHUP (reload) and SIGTERM/SIGINT (graceful stop),
// and replaces a worker that dies. Device changes reach every worker through the store's change feed.
import cluster, { type Worker } from "node:cluster";
import { randomBytes } from "node:crypto";
import { pino } from "pino";
import type { CompiledConfig } from "../config/compile.ts";
import { createLogger } from "../gateway/log.ts";
import { ADMIN_IN_PRIMARY_ENV } from "../gateway/worker-link.ts";
import { TICKET_SECRET_ENV } from "../tls/secure-contexts.ts";
import { startPrimaryAdmin } from "./primary-admin.ts";
import { shutdownSignal } from "./run-gateway.ts";
import { LOG_FD_ENV } from "./start.ts";
import { UsageError } from "./usage.ts";

/** What a worker tells the primary once its gateway is listening. */
export interface ListeningMessage {
  readonly type: "portcullis:listening";
  readonly listeners: readonly { readonly name: string; readonly port: number }[];
  readonly adminPort: number | undefined;
}

const RESTARTS_PER_MINUTE = 5;

export function parseWorkers(value: string | undefined): number {
  if (value === undefined) return 1;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 64)
    throw new UsageError(`--workers must be 1 to 64, got "${value}"`);
  return n;
}

/** In a worker: tells the primary that this gateway listens (the primary may print where). */
export function reportListening(message: Omit<ListeningMessage, "type">): void {
  if (cluster.isWorker)
    process.send?.({ type: "portcullis:listening", ...message } satisfies ListeningMessage);
}

export interface WorkersOptions {
  /** The config the workers run (already loaded and checked): the primary hosts its admin API. */
  readonly config: CompiledConfig;
  /** Called once, when the first worker listens, with the bound ports (admin: the primary's). */
  readonly onListening?: (message: ListeningMessage) => void;
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * In the primary: runs `count` workers of this same program with `argv` until SIGTERM/SIGINT, then stops
 * them gracefully, and answers the admin API for all of them. Resolves to the exit code.
 */
export async function runWorkers(
  count: number,
  argv: readonly string[],
  options: WorkersOptions,
): Promise<number> {
  const signal = shutdownSignal();
  const entry = process.argv[1];
  if (!entry) throw new Error("cannot tell which program to fork");
  const ports = new Map<string, number>();
  const admin = await startPrimaryAdmin(options.config, () => ports);
  // The primary logs where the workers do (stderr when the demo keeps stdout for the user).
  const logFd = (options.env?.[LOG_FD_ENV] ?? process.env[LOG_FD_ENV]) === "2" ? 2 : 1;
  const logger = createLogger(options.config.logLevel, pino.destination({ fd: logFd, sync: false }));
  if (admin) logger.info({ admin: true, port: admin.port, primary: true }, "admin listening");
  const onListening = (message: ListeningMessage) => {
    for (const l of message.listeners) ports.set(l.name, l.port);
    options.onListening?.({ ...message, adminPort: admin?.port });
  };
  cluster.setupPrimary({ exec: entry, args: [...argv] });
  const env = {
    ...options.env,
    [TICKET_SECRET_ENV]: randomBytes(32).toString("hex"),
    ...(admin ? { [ADMIN_IN_PRIMARY_ENV]: "1" } : {}),
  };
  let stopping = false;
  let announced = false;
  let exitCode = 0;
  const restarts: number[] = [];
  const exited = new Set<Worker>();

  const fork = (): Worker => {
    const worker = cluster.fork(env);
    worker.on("message", (message: ListeningMessage) => {
      if (message?.type === "portcullis:listening" && !announced) {
        announced = true;
        onListening(message);
      }
    });
    return worker;
  };
  const allExited = new Promise<void>((resolve) => {
    cluster.on("exit", (worker, code, sig) => {
      exited.add(worker);
      const live = Object.values(cluster.workers ?? {}).filter((w) => w && !exited.has(w));
      if (!stopping) {
        const now = Date.now();
        restarts.push(now);
        while (restarts.length > 0 && (restarts[0] ?? now) < now - 60_000) restarts.shift();
        if (!announced || restarts.length > RESTARTS_PER_MINUTE) {
          // Failing at start (its error is above) or crashing in a loop: stop rather than fork forever.
          console.error(`portcullis: worker ${worker.process.pid} exited (${sig ?? code}); stopping`);
          exitCode = announced ? 1 : code || 1;
          stopping = true;
          for (const w of live) w?.process.kill("SIGTERM");
        } else {
          console.error(`portcullis: worker ${worker.process.pid} exited (${sig ?? code}); starting another`);
          fork();
          return;
        }
      }
      if (live.length === 0) resolve();
    });
  });
  for (let i = 0; i < count; i++) fork();
  process.on("SIGHUP", () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGHUP");
  });
  void signal.then(() => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGTERM");
  });
  await allExited;
  await admin?.close();
  logger.flush();
  return exitCode;
}
