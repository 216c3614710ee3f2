// Cross-process change propagation for SQLite: writes append to a `changes` table that other processes poll.
//
// Several processes may share one SQLite file (node:cluster workers, or a CLI next to the gateway).
// SQLite has no NOTIFY, so every write also appends a row (monotonic AUTOINCREMENT id, the writer's
// origin token) in the same transaction; each store polls `id > last` every ~250 ms, which in WAL mode
// is one indexed read that never blocks writers. Rows from this store's own origin are skipped: those
// changes were already emitted in-process at commit. Rows older than ten minutes are pruned; a poller
// that finds a gap (it slept past the pruning) emits a resync instead of guessing.
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { RESYNC } from "./change-hub.ts";
import type { Binding, DeviceChange, DeviceStatus } from "./types.ts";

const KEEP_MS = 10 * 60_000;
const PRUNE_EVERY = 256;
const BATCH = 1000;

interface ChangeRow {
  id: number;
  origin: string;
  device_id: string;
  kind: string;
  bindings: string;
  status: string | null;
}

export class SqliteChangeFeed {
  readonly #origin: string;
  readonly #insert: StatementSync;
  readonly #prune: StatementSync;
  readonly #read: StatementSync;
  #last: number;
  #writes = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(db: DatabaseSync, origin: string) {
    this.#origin = origin;
    this.#insert = db.prepare(
      "INSERT INTO changes (origin, device_id, kind, bindings, status, at) VALUES (?, ?, ?, ?, ?, ?)",
    );
    this.#prune = db.prepare("DELETE FROM changes WHERE at < ? AND id < (SELECT max(id) FROM changes)");
    this.#read = db.prepare(
      "SELECT id, origin, device_id, kind, bindings, status FROM changes WHERE id > ? ORDER BY id LIMIT ?",
    );
    const row = db.prepare("SELECT coalesce(max(id), 0) AS last FROM changes").get() as { last: number };
    this.#last = row.last;
  }

  /** Appends a change; call inside the write's transaction so it commits (or not) with it. */
  record(change: DeviceChange, now: number): void {
    this.#insert.run(
      this.#origin,
      change.id,
      change.kind,
      JSON.stringify(change.bindings.map((b) => [b.kind, b.value])),
      change.status ?? null,
      now,
    );
    // The newest row is always kept, so a poller's gap check never mistakes pruning for "nothing new".
    if (++this.#writes % PRUNE_EVERY === 0) this.#prune.run(now - KEEP_MS);
  }

  /** Starts polling; `emit` receives other processes' changes (and resyncs). */
  start(intervalMs: number, emit: (change: DeviceChange) => void, onError: (error: unknown) => void): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      try {
        this.poll(emit);
      } catch (error) {
        onError(error);
      }
    }, intervalMs);
    // Polling alone must not keep a process alive.
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One poll; public so tests can drive it without waiting. */
  poll(emit: (change: DeviceChange) => void): void {
    for (;;) {
      const rows = this.#read.all(this.#last, BATCH) as unknown as ChangeRow[];
      if (rows.length === 0) return;
      const first = rows[0];
      if (first !== undefined && first.id > this.#last + 1 && this.#last > 0) emit(RESYNC);
      for (const row of rows) {
        this.#last = row.id;
        if (row.origin === this.#origin) continue;
        emit(toChange(row));
      }
      if (rows.length < BATCH) return;
    }
  }
}

function toChange(row: ChangeRow): DeviceChange {
  if (row.kind === "resync") return RESYNC;
  const pairs = JSON.parse(row.bindings) as [Binding["kind"], string][];
  return {
    id: row.device_id,
    kind: row.kind as DeviceChange["kind"],
    bindings: pairs.map(([kind, value]) => ({ kind, value })),
    ...(row.status !== null && { status: row.status as DeviceStatus }),
  };
}
