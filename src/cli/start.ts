// `portcullis start --config FILE`: load, validate and compile the config, then run the gateway.
import { parseArgs } from "node:util";
import { loadConfig } from "../config/load.ts";
import { Gateway } from "../gateway/gateway.ts";
import { createLogger } from "../gateway/log.ts";
import { shutdownSignal, stopOnSignal } from "./run-gateway.ts";
import { UsageError } from "./usage.ts";

export async function runStart(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: "string", short: "c" } },
    strict: true,
  });
  if (!values.config) throw new UsageError("start: --config FILE is required");
  const signal = shutdownSignal();
  const config = await loadConfig(values.config);
  const logger = createLogger(config.logLevel);
  const gateway = await Gateway.start(config, logger);
  gateway.watchConfig();
  process.on("SIGHUP", () => void gateway.reload());
  await stopOnSignal(gateway, signal);
  return 0;
}
