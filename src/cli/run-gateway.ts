// Runs a started gateway until SIGTERM/SIGINT, then stops it gracefully (bounded) and exits 0.
import type { Gateway } from "../gateway/gateway.ts";

export const SHUTDOWN_GRACE_MS = 10_000;

export function stopOnSignals(
  gateway: Gateway,
  onStopped: () => Promise<void> = async () => {},
): Promise<void> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      gateway.logger.info({ signal }, "shutting down");
      gateway
        .stop(SHUTDOWN_GRACE_MS)
        .then(onStopped)
        .then(() => gateway.logger.flush())
        .finally(() => resolve());
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
}
