// Under --workers the primary answers the admin API for the whole gateway: each worker forwards its
// decisions to it (batched) and answers its requests for metrics, which it aggregates (prom-client).
import cluster from "node:cluster";
import { AggregatorRegistry } from "prom-client";
import type { DecisionLog, DecisionRecord } from "./decision-log.ts";
import type { GatewayMetrics } from "./metrics.ts";

/** Set by the primary when it hosts the admin API: the workers then start none. */
export const ADMIN_IN_PRIMARY_ENV = "PORTCULLIS_ADMIN_IN_PRIMARY";

export interface DecisionsMessage {
  readonly type: "portcullis:decisions";
  readonly records: readonly DecisionRecord[];
}

/** A worker's open device connections, sent when the count changes (the primary's GET /status sums them). */
export interface ConnectionsMessage {
  readonly type: "portcullis:connections";
  readonly open: number;
}

const FLUSH_MS = 200;
const MAX_BATCH = 500;
const CONNECTIONS_MS = 1000;

export function adminInPrimary(): boolean {
  return cluster.isWorker && process.env[ADMIN_IN_PRIMARY_ENV] === "1";
}

/**
 * In a worker: serves the primary's metrics requests, forwards decisions and reports its open connections.
 * Returns a stop function.
 */
export function linkToPrimary(
  decisions: DecisionLog,
  metrics: GatewayMetrics,
  connections: () => number = () => 0,
): () => void {
  AggregatorRegistry.setRegistries([metrics.registry]);
  new AggregatorRegistry(); // installs the worker's answer to the primary's metrics requests
  const worker = cluster.worker?.id;
  let batch: DecisionRecord[] = [];
  let reported: number | undefined;
  const report = () => {
    const open = connections();
    if (open === reported || !process.connected) return;
    reported = open;
    process.send?.({ type: "portcullis:connections", open } satisfies ConnectionsMessage);
  };
  const reporter = setInterval(report, CONNECTIONS_MS);
  reporter.unref();
  const flush = () => {
    if (batch.length === 0 || !process.connected) return;
    process.send?.({ type: "portcullis:decisions", records: batch } satisfies DecisionsMessage);
    batch = [];
  };
  const timer = setInterval(flush, FLUSH_MS);
  timer.unref();
  const unsubscribe = decisions.onRecord((r) => {
    batch.push({ ...r, worker });
    if (batch.length >= MAX_BATCH) flush();
  });
  return () => {
    unsubscribe();
    clearInterval(timer);
    clearInterval(reporter);
    flush();
  };
}
