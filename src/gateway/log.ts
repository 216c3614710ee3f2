// The gateway's structured log (pino, JSON lines).
import cluster from "node:cluster";
import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger };

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      // Under --workers every line says which worker wrote it (the id the metrics and decisions carry).
      base: cluster.isWorker
        ? { service: "portcullis", worker: cluster.worker?.id }
        : { service: "portcullis" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
