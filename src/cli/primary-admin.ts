// The admin API of a --workers gateway, hosted by the primary so that it speaks for every worker: devices
// in the shared store, the workers' decisions (forwarded to it), their metrics (aggregated on request)
// and one status.
import cluster, { type Worker } from "node:cluster";
import { createRequire } from "node:module";
import { AggregatorRegistry } from "prom-client";
import { standaloneTrust } from "../admin/console/standalone-trust.ts";
import { AdminServer } from "../admin/server.ts";
import type { CompiledConfig } from "../config/compile.ts";
import { bindError } from "../gateway/bind-error.ts";
import { DecisionLog } from "../gateway/decision-log.ts";
import type { ConnectionsMessage, DecisionsMessage } from "../gateway/worker-link.ts";
import { openDeviceStore } from "../registry/open-store.ts";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

export interface PrimaryAdmin {
  readonly port: number;
  close(): Promise<void>;
}

/** Starts the admin listener in the primary; `ports` gives the listeners' bound ports once known. */
export async function startPrimaryAdmin(
  config: CompiledConfig,
  ports: () => ReadonlyMap<string, number>,
): Promise<PrimaryAdmin | undefined> {
  const admin = config.admin;
  if (!admin) return undefined;
  const store = openDeviceStore(config.store.url);
  await store.migrate();
  const decisions = new DecisionLog(admin.decisionsKept);
  // Each worker's open connections, as it last reported them (GET /status sums them).
  const open = new Map<number, number>();
  const onMessage = (worker: Worker, message: DecisionsMessage | ConnectionsMessage) => {
    if (message?.type === "portcullis:decisions") for (const r of message.records) decisions.record(r);
    else if (message?.type === "portcullis:connections") open.set(worker.id, message.open);
  };
  const onExit = (worker: Worker) => open.delete(worker.id);
  cluster.on("message", onMessage);
  cluster.on("exit", onExit);
  const trust = standaloneTrust(config.trustStores);
  const aggregator = new AggregatorRegistry();
  const startedAt = Date.now();
  const server = new AdminServer({
    host: admin.host,
    port: admin.port,
    token: admin.token,
    tls: admin.tls ? { cert: admin.tls.cert, key: admin.tls.key, ca: admin.tls.ca } : undefined,
    store,
    enrollmentStore: store,
    enrollment: () => config.enrollment,
    decisions,
    console: admin.console,
    trust: () => trust.source(),
    publicHealth: admin.publicHealth,
    // Ready once a worker listens on every listener (the workers report their bound ports).
    readiness: () => {
      const unbound = config.listeners.filter((l) => !ports().has(l.name)).map((l) => l.name);
      return [
        { name: "config", ok: true },
        { name: "listeners", ok: unbound.length === 0, detail: `not listening yet: ${unbound.join(", ")}` },
      ];
    },
    metrics: { text: () => aggregator.clusterMetrics(), contentType: aggregator.contentType },
    status: () => ({
      status: "ok",
      version,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      configGeneration: config.generation,
      workers: Object.values(cluster.workers ?? {}).filter((w) => w?.isConnected()).length,
      connections: { open: [...open.values()].reduce((a, b) => a + b, 0) },
      listeners: config.listeners.map((l) => ({
        name: l.name,
        address: l.host,
        port: ports().get(l.name) ?? l.port,
        clientAuth: l.clientAuth,
      })),
    }),
  });
  const { port } = await server
    .listen(admin.host, admin.port)
    .catch((err: unknown) => bindError(err, "admin listener", admin.host, admin.port));
  return {
    port,
    async close() {
      cluster.off("message", onMessage);
      cluster.off("exit", onExit);
      await server.close();
      await trust.close();
      await store.close();
    },
  };
}
