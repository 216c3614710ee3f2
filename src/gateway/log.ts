// The gateway's structured log (pino, JSON lines).
import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger };

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    { level, base: { service: "portcullis" }, timestamp: pino.stdTimeFunctions.isoTime },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
