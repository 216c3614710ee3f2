// A gateway that can look at itself: runs `portcullis start`'s gateway in this process (forked with
// --expose-gc) and answers memory questions over IPC, so that idle connections can be costed in heap,
// external and native memory, and heap snapshots taken at chosen moments.
import { readFileSync } from "node:fs";
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from "node:v8";
import { loadConfig } from "../../src/config/load.ts";
import { Gateway } from "../../src/gateway/gateway.ts";
import { createLogger } from "../../src/gateway/log.ts";

export type ProbeRequest =
  | { readonly kind: "measure" }
  | { readonly kind: "snapshot"; readonly file: string }
  | { readonly kind: "stop" }
  /** Exits at once, connections open (heaptrack then reports what they hold as leaked). */
  | { readonly kind: "exit" };

export interface MemoryFigures {
  readonly rssKiB: number;
  /** Anonymous (private) resident memory: heap, malloc arenas, buffers; no mapped code. */
  readonly anonKiB: number;
  readonly heapTotalKiB: number;
  readonly heapUsedKiB: number;
  /** Memory of C++ objects tied to JS objects that V8 is told about (includes arrayBuffers). */
  readonly externalKiB: number;
  readonly arrayBuffersKiB: number;
  readonly mallocedKiB: number;
  /** The young generation's committed size (semi-spaces): it grows with the allocation rate. */
  readonly newSpaceKiB: number;
}

export type ProbeReply =
  | { readonly kind: "ready"; readonly port: number }
  | ({ readonly kind: "measured" } & MemoryFigures)
  | { readonly kind: "snapshot"; readonly file: string }
  | { readonly kind: "error"; readonly message: string };

const kib = (bytes: number) => Math.round(bytes / 1024);

function smapsKiB(field: string): number {
  const text = readFileSync("/proc/self/smaps_rollup", "utf8");
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
  return Number(match?.[1] ?? 0);
}

async function measure(): Promise<MemoryFigures> {
  const gc = (globalThis as { gc?: () => void }).gc;
  // Twice, with a turn of the event loop between: weak callbacks and finalizers run after the first.
  gc?.();
  await new Promise((resolve) => setImmediate(resolve));
  gc?.();
  const m = process.memoryUsage();
  return {
    rssKiB: kib(m.rss),
    anonKiB: smapsKiB("Anonymous"),
    heapTotalKiB: kib(m.heapTotal),
    heapUsedKiB: kib(m.heapUsed),
    externalKiB: kib(m.external),
    arrayBuffersKiB: kib(m.arrayBuffers),
    mallocedKiB: kib(getHeapStatistics().malloced_memory),
    newSpaceKiB: kib(getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_size ?? 0),
  };
}

function reply(message: ProbeReply): void {
  process.send?.(message);
}

const file = process.argv[2];
if (!file) throw new Error("usage: gateway-probe.ts CONFIG");
const config = await loadConfig(file);
const gateway = await Gateway.start(config, createLogger(config.logLevel));
reply({ kind: "ready", port: gateway.listeners[0]?.port ?? 0 });

process.on("message", (message: ProbeRequest) => {
  const handle = async (): Promise<ProbeReply> => {
    switch (message.kind) {
      case "measure":
        return { kind: "measured", ...(await measure()) };
      case "snapshot":
        return { kind: "snapshot", file: writeHeapSnapshot(message.file) };
      case "exit":
        process.exit(0);
        break;
      case "stop":
        await gateway.stop(0);
        setImmediate(() => process.exit(0));
        return { kind: "snapshot", file: "" };
    }
  };
  handle().then(reply, (err: unknown) =>
    reply({ kind: "error", message: err instanceof Error ? err.message : String(err) }),
  );
});
process.on("disconnect", () => process.exit(0));
