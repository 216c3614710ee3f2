// `portcullis echo`: the demo's echo upstream on its own, for `portcullis start` with the demo config.
import { parseArgs } from "node:util";
import { startEchoUpstream } from "../demo/echo-upstream.ts";
import { shutdownSignal } from "./run-gateway.ts";
import { UsageError } from "./usage.ts";

export async function runEcho(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { port: { type: "string", default: "0" }, host: { type: "string", default: "127.0.0.1" } },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`echo: invalid --port "${values.port}"`);
  const signal = shutdownSignal();
  const echo = await startEchoUpstream(port, values.host);
  console.log(`echo upstream listening on ${echo.url}`);
  await signal;
  await echo.close();
  return 0;
}
