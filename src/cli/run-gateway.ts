// Graceful shutdown on SIGTERM/SIGINT: the handlers are installed before the gateway starts, so a signal
// that arrives while it is still starting is not lost to the default handler (which would not exit 0).
import type { Gateway } from "../gateway/gateway.ts";

export const SHUTDOWN_GRACE_MS = 10_000;

/** Resolves with the first SIGTERM or SIGINT received from now on. */
export function shutdownSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
}

/** Waits for the signal, then stops the gateway (bounded) and runs `onStopped`. */
export async function stopOnSignal(
  gateway: Gateway,
  signal: Promise<NodeJS.Signals>,
  onStopped: () => Promise<void> = async () => {},
): Promise<void> {
  const received = await signal;
  gateway.logger.info({ signal: received }, "shutting down");
  await gateway.stop(SHUTDOWN_GRACE_MS);
  await onStopped();
  gateway.logger.flush();
}
