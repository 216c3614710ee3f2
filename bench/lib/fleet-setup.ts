// What the fleet benchmarks run against: the demo PKI, a gateway config shaped like the demo's (a trust store
// with the demo CRL in strict mode, a route that needs a registered active device), device-001 registered
// in the SQLite store, and a fixed-answer keep-alive upstream.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import type { ConfigInput } from "../../src/config/schema.ts";
import { registerDemoDevice } from "../../src/demo/demo-device.ts";
import { type DemoPki, ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { openDeviceStore } from "../../src/registry/open-store.ts";

export const FLEET_PATH = "/echo";

/**
 * The gateway's refusal counters from its admin API's /metrics, summed over workers: handshake failures
 * and connection-limit hits by their labels (without `worker`), and the handshake deadline's extensions
 * (handshakes the gateway's own load had delayed, given more time).
 */
export async function refusalCounters(adminPort: number, tokenFile: string): Promise<Record<string, number>> {
  const token = (await import("node:fs")).readFileSync(tokenFile, "utf8").trim();
  const res = await fetch(`http://127.0.0.1:${adminPort}/metrics`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const text = await res.text();
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m =
      /^(portcullis_(?:handshake_failures|connection_limit_hits|handshake_deadline_extensions)_total)\{([^}]*)\} (\S+)$/.exec(
        line,
      );
    if (!m) continue;
    const labels = (m[2] ?? "")
      .split(",")
      .filter((l) => !l.startsWith("worker=") && !l.startsWith("listener="))
      .join(",");
    const key = `${m[1]?.replace("portcullis_", "").replace("_total", "")}{${labels}}`;
    out[key] = (out[key] ?? 0) + Number(m[3]);
  }
  return out;
}

export interface FleetConfigOptions {
  readonly port: number;
  readonly upstreamPort: number;
  /** Per worker process: the listener's maxConnections. */
  readonly maxConnections: number;
  readonly idleTimeout: string;
  /** An admin listener (loopback) for the gateway's own counters, e.g. handshake failures by reason. */
  readonly adminPort?: number;
  /** The listener's handshakeTimeout (the gateway's default when absent). */
  readonly handshakeTimeout?: string;
}

/**
 * The demo's shape, with the limits a fleet sharing one certificate needs: every simulated device presents
 * the demo device certificate, so maxConnectionsPerIdentity must hold the whole fleet.
 */
export function fleetConfig(pki: DemoPki, o: FleetConfigOptions): ConfigInput {
  return {
    listeners: [
      {
        name: "devices",
        host: "127.0.0.1",
        port: o.port,
        clientAuth: "application",
        certificates: [{ cert: pki.serverCert, key: pki.serverKey }],
        trustStores: ["devices"],
        limits: {
          idleTimeout: o.idleTimeout,
          ...(o.handshakeTimeout ? { handshakeTimeout: o.handshakeTimeout } : {}),
          maxConnections: o.maxConnections,
          maxConnectionsPerIdentity: o.maxConnections,
        },
      },
    ],
    trustStores: [
      {
        name: "devices",
        ca: [pki.caChain],
        revocation: { mode: "strict", crl: { files: [pki.crl], distributionPoints: false } },
      },
    ],
    services: [{ name: "upstream", targets: [`http://127.0.0.1:${o.upstreamPort}`] }],
    routes: [
      {
        name: "echo",
        hosts: ["localhost", "127.0.0.1"],
        paths: [FLEET_PATH],
        service: "upstream",
        auth: { trustStores: ["devices"], registry: "required" },
      },
    ],
    ...(o.adminPort ? { admin: { host: "127.0.0.1", port: o.adminPort, tokenFile: pki.adminToken } } : {}),
    log: { level: "warn" },
    store: { url: `sqlite:${join(pki.dir, "fleet.db")}` },
  };
}

/** The demo PKI in `dir`, the config file written beside it, and device-001 registered in its store. */
export async function prepareFleet(
  dir: string,
  o: FleetConfigOptions,
): Promise<{ pki: DemoPki; file: string }> {
  const pki = await ensureDemoPki(dir);
  const config = fleetConfig(pki, o);
  const file = join(dir, "fleet.yaml");
  writeFileSync(file, stringify(config));
  const store = openDeviceStore(config.store?.url ?? "");
  try {
    await store.migrate();
    await registerDemoDevice(store, pki.deviceCert, pki.deviceId);
  } finally {
    await store.close();
  }
  return { pki, file };
}

/** The gateway bench's fixed upstream (servers.ts), answering every body-less request at almost no CPU. */
export { startFixedUpstream } from "./servers.ts";
