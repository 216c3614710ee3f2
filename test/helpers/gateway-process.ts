// Starts the real gateway as a child process (`portcullis demo` or `portcullis start`), learns its bound
// ports from its output, and stops it. Every test gets its own temp dir and free ports (port 0).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { ConfigInput } from "../../src/config/schema.ts";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BIN = join(ROOT, "bin", "portcullis.js");

export interface GatewayProcess {
  readonly child: ChildProcess;
  /** Bound port of each listener, by name. */
  readonly ports: Record<string, number>;
  readonly adminPort: number | undefined;
  /** Everything the process wrote so far. */
  output(): string;
  /** SIGTERM, then waits for exit; resolves to the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function tempDir(prefix = "portcullis-test-"): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

interface SpawnOptions {
  /** Resolves when the output says the gateway is ready; returns ports. */
  ready: (output: string) => { ports: Record<string, number>; adminPort?: number } | undefined;
  timeoutMs?: number;
}

function spawnGateway(args: string[], options: SpawnOptions): Promise<GatewayProcess> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"], cwd: ROOT });
  let out = "";
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`gateway did not become ready:\n${out}`));
    }, options.timeoutMs ?? 30_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const ready = options.ready(out);
      if (!ready) return;
      clearTimeout(timer);
      resolve({
        child,
        ports: ready.ports,
        adminPort: ready.adminPort,
        output: () => out,
        stop: async (signal = "SIGTERM") => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      });
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before it was ready:\n${out}`));
    });
  });
}

interface LogLine {
  msg?: string;
  listener?: string;
  port?: number;
  admin?: boolean;
}

function logLines(output: string): LogLine[] {
  return output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => {
      try {
        return JSON.parse(l) as LogLine;
      } catch {
        return {};
      }
    });
}

/** Runs `portcullis start` on a config object written to `dir/portcullis.yaml` (paths relative to dir). */
export function startGateway(
  dir: string,
  config: ConfigInput,
  expectListeners?: string[],
): Promise<GatewayProcess> {
  const file = join(dir, "portcullis.yaml");
  writeFileSync(file, stringify(config));
  const names = expectListeners ?? config.listeners.map((l) => l.name);
  return spawnGateway(["start", "--config", file], {
    ready: (output) => {
      const lines = logLines(output);
      const ports: Record<string, number> = {};
      for (const l of lines) if (l.msg === "listening" && l.listener && l.port) ports[l.listener] = l.port;
      if (!names.every((n) => ports[n] !== undefined)) return undefined;
      const admin = lines.find((l) => l.msg === "admin listening");
      if (config.admin && !admin) return undefined;
      return { ports, adminPort: admin?.port };
    },
  });
}

/**
 * Runs `portcullis demo` in `dir` on free ports (any of --port, --admin-port, --echo-port, --mqtt-port in
 * `extraArgs` wins; `defaultEchoPort` leaves the echo and MQTT ports to the demo's own choice, which tests
 * running in parallel would otherwise race for).
 */
export function startDemo(
  dir: string,
  extraArgs: string[] = [],
  options: { readonly defaultEchoPort?: boolean } = {},
): Promise<GatewayProcess> {
  const flags = options.defaultEchoPort
    ? ["--port", "--admin-port"]
    : ["--port", "--admin-port", "--echo-port", "--mqtt-port"];
  const free = flags.filter((flag) => !extraArgs.includes(flag));
  return spawnGateway(["demo", "--dir", dir, ...free.flatMap((flag) => [flag, "0"]), ...extraArgs], {
    ready: (output) => {
      const port = /gateway\s+https:\/\/[^:]+:(\d+)/.exec(output)?.[1];
      const admin = /admin\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1];
      if (!port || !admin || !output.includes("Press Ctrl-C")) return undefined;
      return { ports: { demo: Number(port) }, adminPort: Number(admin) };
    },
  });
}

/** Runs the CLI to completion: exit code and output. */
export function runCli(
  args: readonly string[],
  timeoutMs = 30_000,
  options: { readonly nodeArgs?: readonly string[]; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      cwd: ROOT,
      env: options.env ?? process.env,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`portcullis ${args.join(" ")} timed out:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
