// The benchmark's side of a simulated fleet: several device processes (bench/lib/fleet-client.ts), each
// holding a share of the devices from its own loopback source addresses, so that neither one process's
// file limit nor one address's ephemeral ports cap the fleet.
import { fileURLToPath } from "node:url";
import type { Attempts, FleetReply, FleetRequest, FleetStatus, FleetTarget } from "./fleet-protocol.ts";
import { IpcChild } from "./ipc-child.ts";

const CLIENT = fileURLToPath(new URL("./fleet-client.ts", import.meta.url));

/** Attempts of every process together, with per-device time percentiles. */
export interface AttemptSummary {
  readonly ok: number;
  readonly failed: number;
  readonly failures: Record<string, number>;
  readonly resumed: number;
  /** From the first connect to the last answer (the slowest process). */
  readonly elapsedMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface FleetStatusSummary {
  readonly connected: number;
  readonly dropped: number;
  /** Sum over the device processes. */
  readonly rssKiB: number;
}

export class FleetDevices {
  readonly #children: IpcChild<FleetRequest, FleetReply>[] = [];
  readonly #addresses: string[][] = [];
  /** Devices opened per process so far. */
  readonly #held: number[] = [];

  /** `processes` device processes; process i binds to `addressesPerProcess` addresses 127.0.0.<10 + …>. */
  constructor(processes: number, addressesPerProcess = 2) {
    for (let i = 0; i < processes; i++) {
      this.#children.push(new IpcChild(`devices ${i + 1}`, CLIENT));
      this.#addresses.push(
        Array.from({ length: addressesPerProcess }, (_, j) => `127.0.0.${10 + i * addressesPerProcess + j}`),
      );
      this.#held.push(0);
    }
  }

  get processes(): number {
    return this.#children.length;
  }

  get pids(): number[] {
    return this.#children.map((c) => c.pid);
  }

  /** Opens `count` more devices, spread evenly over the processes. */
  async open(
    target: FleetTarget,
    count: number,
    concurrency: number,
    timeoutMs = 120_000,
  ): Promise<AttemptSummary> {
    const shares = split(count, this.#children.length);
    const perProcess = Math.max(1, Math.ceil(concurrency / this.#children.length));
    const replies = await Promise.all(
      this.#children.map((child, i) => {
        const share = shares[i] ?? 0;
        this.#held[i] = (this.#held[i] ?? 0) + share;
        return ask(child, {
          kind: "open",
          target,
          count: share,
          concurrency: perProcess,
          localAddresses: this.#addresses[i] ?? ["127.0.0.1"],
          timeoutMs,
        });
      }),
    );
    return summarize(replies.map((r) => expect(r, "opened")));
  }

  /** `count` held devices (spread over the processes) drop their connection and reconnect all at once. */
  async storm(count: number, resume: boolean, timeoutMs = 180_000): Promise<AttemptSummary> {
    const shares = split(count, this.#children.length);
    const replies = await Promise.all(
      this.#children.map((child, i) =>
        ask(child, { kind: "storm", count: Math.min(shares[i] ?? 0, this.#held[i] ?? 0), resume, timeoutMs }),
      ),
    );
    return summarize(replies.map((r) => expect(r, "stormed")));
  }

  async status(): Promise<FleetStatusSummary> {
    const replies = await Promise.all(this.#children.map((c) => ask(c, { kind: "status" })));
    const all = replies.map((r) => expect(r, "status") as FleetStatus);
    return {
      connected: all.reduce((n, s) => n + s.connected, 0),
      dropped: all.reduce((n, s) => n + s.dropped, 0),
      rssKiB: all.reduce((n, s) => n + s.rssKiB, 0),
    };
  }

  /** Disconnects every device (the processes stay). */
  async close(): Promise<void> {
    await Promise.all(this.#children.map((c) => ask(c, { kind: "close" })));
    this.#held.fill(0);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#children.map((c) => c.stop()));
  }
}

function ask(child: IpcChild<FleetRequest, FleetReply>, request: FleetRequest): Promise<FleetReply> {
  return child.ask(request);
}

function expect<K extends FleetReply["kind"]>(reply: FleetReply, kind: K): Extract<FleetReply, { kind: K }> {
  if (reply.kind === "error") throw new Error(`device process: ${reply.message}`);
  if (reply.kind !== kind) throw new Error(`device process: expected ${kind}, got ${reply.kind}`);
  return reply as Extract<FleetReply, { kind: K }>;
}

function split(count: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(count / parts) + (i < count % parts ? 1 : 0));
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function summarize(parts: readonly Attempts[]): AttemptSummary {
  const failures: Record<string, number> = {};
  for (const part of parts)
    for (const [cause, n] of Object.entries(part.failures)) failures[cause] = (failures[cause] ?? 0) + n;
  const sorted = Float64Array.from(parts.flatMap((p) => p.times)).sort();
  return {
    ok: parts.reduce((n, p) => n + p.ok, 0),
    failed: parts.reduce((n, p) => n + p.failed, 0),
    failures,
    resumed: parts.reduce((n, p) => n + p.resumed, 0),
    elapsedMs: Math.max(0, ...parts.map((p) => p.elapsedMs)),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1] ?? 0,
  };
}
