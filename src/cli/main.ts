// The `portcullis` command line: dispatches to a subcommand and turns user errors into exit code 2.
import { createRequire } from "node:module";
import { ConfigError } from "../config/errors.ts";
import { StoreUnavailableError } from "../registry/types.ts";
import { RevocationConfigError } from "../revocation/errors.ts";
import { runDemo } from "./demo.ts";
import { runDevices } from "./devices.ts";
import { runEcho } from "./echo.ts";
import { runPki } from "./pki.ts";
import { runStart } from "./start.ts";
import { USAGE, UsageError } from "./usage.ts";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  demo: runDemo,
  start: runStart,
  echo: runEcho,
  pki: runPki,
  verify: async (argv) => (await import("./verify.ts")).runVerify(argv),
  devices: runDevices,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === "version" || command === "--version" || command === "-v") {
    process.stdout.write(
      `portcullis ${version} (node ${process.version}, openssl ${process.versions.openssl})\n`,
    );
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  return run(rest);
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
