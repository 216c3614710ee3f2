// `portcullis start --config FILE`: load, validate and compile the config, then run the gateway.
import { parseArgs } from "node:util";
import { pino } from "pino";
import { loadConfig } from "../config/load.ts";
import { Gateway } from "../gateway/gateway.ts";
import { createLogger } from "../gateway/log.ts";
import { checkCrlFiles } from "./check.ts";
import { shutdownSignal, stopOnSignal } from "./run-gateway.ts";
import { UsageError } from "./usage.ts";
import { parseWorkers, reportListening, runWorkers } from "./workers.ts";

/** Where the log goes: stdout, or stderr when the demo runs workers (its stdout is for the user). */
export const LOG_FD_ENV = "PORTCULLIS_LOG_FD";

function logDestination() {
  return process.env[LOG_FD_ENV] === "2" ? pino.destination({ fd: 2, sync: false }) : undefined;
}

export async function runStart(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: "string", short: "c" }, workers: { type: "string" } },
    strict: true,
  });
  if (!values.config) throw new UsageError("start: --config FILE is required");
  const workers = parseWorkers(values.workers);
  if (workers > 1) {
    // Checked here first, so that a bad config stops with its errors instead of failing N workers.
    const config = await loadConfig(values.config);
    // So are the CRL files: the primary opens the device store, which a broken CRL must not leave behind.
    await checkCrlFiles(config);
    return runWorkers(workers, ["start", "--config", values.config], { config });
  }
  const signal = shutdownSignal();
  const config = await loadConfig(values.config);
  const logger = createLogger(config.logLevel, logDestination());
  const gateway = await Gateway.start(config, logger);
  reportListening({ listeners: gateway.listeners, adminPort: gateway.adminPort });
  gateway.watchConfig();
  process.on("SIGHUP", () => void gateway.reload());
  await stopOnSignal(gateway, signal);
  return 0;
}
