// The `portcullis` command line: dispatches to a subcommand and turns user errors into exit code 2.
import { createRequire } from "node:module";
import { ConfigError } from "../config/errors.ts";
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

try {
  process.exitCode = await main(process.argv.slice(2));
  // A stopped gateway has closed its servers; exit now rather than wait on idle pools and timers.
  process.exit();
} catch (err) {
  if (err instanceof UsageError || err instanceof ConfigError) {
    console.error(`portcullis: ${err.message}`);
    process.exitCode = 2;
  } else if (
    (err as NodeJS.ErrnoException).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" ||
    (err as NodeJS.ErrnoException).code?.startsWith("ERR_PARSE_ARGS")
  ) {
    console.error(`portcullis: ${(err as Error).message}`);
    process.exitCode = 2;
  } else if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") {
    console.error(`portcullis: ${(err as Error).message}`);
    process.exitCode = 1;
  } else {
    console.error(err);
    process.exitCode = 1;
  }
}
