// The `portcullis` command line: dispatches to a subcommand and turns user errors into exit code 2.
// Only usage.ts and three dependency-free error modules load up front; each command's module (and with
// it zod, yaml, pino, pg, @peculiar/x509…) is imported when that command runs, so that `version`, `help`
// and `--help` start in a few tens of milliseconds (test/e2e/cli-start.test.ts keeps it that way).
import { createRequire } from "node:module";
import { ConfigError } from "../config/errors.ts";
import { StoreUnavailableError } from "../registry/types.ts";
import { RevocationConfigError } from "../revocation/errors.ts";
import { COMMAND_NAMES, commandUsage, USAGE, UsageError, wantsHelp } from "./usage.ts";

type Run = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, () => Promise<Run>> = {
  demo: async () => (await import("./demo.ts")).runDemo,
  start: async () => (await import("./start.ts")).runStart,
  check: async () => (await import("./check.ts")).runCheck,
  echo: async () => (await import("./echo.ts")).runEcho,
  pki: async () => (await import("./pki.ts")).runPki,
  verify: async () => (await import("./verify.ts")).runVerify,
  devices: async () => (await import("./devices.ts")).runDevices,
  tokens: async () => (await import("./enrollment-admin.ts")).runTokens,
  certificates: async () => (await import("./enrollment-admin.ts")).runCertificates,
  enroll: async () => (await import("./enroll.ts")).runEnroll,
  reenroll: async () => (await import("./enroll.ts")).runReenroll,
};

function printVersion(): number {
  // Read here, not at load, so that only `version` pays for it.
  const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };
  process.stdout.write(
    `portcullis ${version} (node ${process.version}, openssl ${process.versions.openssl})\n`,
  );
  return 0;
}

/** `portcullis help [COMMAND]`. */
function printHelp(topic: string | undefined): number {
  if (topic === undefined) {
    process.stdout.write(USAGE);
    return 0;
  }
  const usage = commandUsage(wantsHelp([topic]) ? "help" : topic);
  if (usage === undefined) {
    throw new UsageError(`help: no command "${topic}" (commands: ${COMMAND_NAMES.join(", ")})`);
  }
  process.stdout.write(usage);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    process.stdout.write(USAGE);
    return 2;
  }
  if (command === "--help" || command === "-h") return printHelp(undefined);
  if (command === "help") return printHelp(rest[0]);
  if (command === "--version" || command === "-v") return printVersion();
  const usage = commandUsage(command);
  if (usage === undefined) throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  // `COMMAND --help` is answered here, from usage.ts, before the command's module is loaded.
  if (wantsHelp(rest)) {
    process.stdout.write(usage);
    return 0;
  }
  if (command === "version") return printVersion();
  const load = COMMANDS[command];
  if (!load) throw new Error(`command "${command}" has a usage text but no module`);
  return (await load())(rest);
}

/** Exit code and one line for errors a user can act on; anything else is a bug and keeps its stack. */
function userError(err: unknown): { code: number; message: string } | undefined {
  if (err instanceof UsageError || err instanceof ConfigError || err instanceof RevocationConfigError) {
    return { code: 2, message: err.message };
  }
  const code = (err as NodeJS.ErrnoException).code;
  if (code?.startsWith("ERR_PARSE_ARGS")) return { code: 2, message: (err as Error).message };
  if (code === "EADDRINUSE" || code === "EACCES") return { code: 1, message: (err as Error).message };
  if (err instanceof StoreUnavailableError) return { code: 1, message: `device store: ${err.message}` };
  return undefined;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  const known = userError(err);
  console.error(known ? `portcullis: ${known.message}` : err);
  process.exitCode = known?.code ?? 1;
}
// A stopped (or failed) gateway has closed its servers: exit now rather than wait on idle pools and timers.
process.exit();
