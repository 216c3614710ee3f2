// A bulk import into SQLite, off the main thread. node:sqlite is synchronous: checking and inserting 100,000
// devices and committing them takes seconds of CPU and I/O that would stop every request of the gateway. So
// the store hands a large batch, chunk by chunk, to this worker thread, which opens its own connection and
// runs the whole import as one transaction (BEGIN IMMEDIATE … COMMIT, all or nothing) while the main thread
// keeps serving: its connection reads the last committed state (WAL), so nothing of the import is visible
// before the commit, and the store queues its own writes behind the import (see SqliteDeviceStore).
//
// This module is also imported by the store (for ImportChecker, the check-and-insert loop shared by the small,
// in-thread imports); its worker part only runs in a thread started with IMPORT_WORKER_MARK.
import { DatabaseSync } from "node:sqlite";
import { parentPort, workerData } from "node:worker_threads";
import { RESYNC } from "./change-hub.ts";
import { SqliteChangeFeed } from "./sqlite-change-feed.ts";
import { isUnavailable } from "./sqlite-rows.ts";
import { SqliteTables } from "./sqlite-tables.ts";
import type { ImportFailure, NormalizedDevice } from "./validate.ts";

export const IMPORT_WORKER_MARK = "portcullis-sqlite-import";

export interface ImportWorkerData {
  readonly mark: typeof IMPORT_WORKER_MARK;
  readonly path: string;
  /** The store's change-feed origin, so that the store's own poller skips the import's resync row. */
  readonly origin: string;
  readonly busyTimeoutMs: number;
  readonly now: number;
}

export type ToImportWorker =
  | { readonly kind: "chunk"; readonly devices: NormalizedDevice[]; readonly indexes: number[] }
  | { readonly kind: "end" };

export type FromImportWorker =
  | { readonly kind: "progress"; readonly done: number }
  | { readonly kind: "committed" }
  | { readonly kind: "rejected"; readonly failures: ImportFailure[] }
  | { readonly kind: "error"; readonly message: string; readonly unavailable: boolean };

/**
 * Checks each device against the rows that exist (id taken, binding held by another device) and inserts it,
 * inside the caller's transaction. After the first failure nothing more is inserted (the caller rolls back)
 * but every device is still checked, so that every failure is named.
 */
export class ImportChecker {
  readonly #tables: SqliteTables;
  readonly #now: number;
  readonly failures: ImportFailure[] = [];
  /** Devices checked so far. */
  done = 0;

  constructor(tables: SqliteTables, now: number) {
    this.#tables = tables;
    this.#now = now;
  }

  add(devices: readonly NormalizedDevice[], indexes: readonly number[]): void {
    devices.forEach((device, n) => {
      const index = indexes[n] ?? n;
      const before = this.failures.length;
      if (this.#tables.exists(device.id))
        this.failures.push({ index, id: device.id, message: "device exists already" });
      for (const b of device.bindings) {
        const owner = this.#tables.owner(b);
        if (owner !== undefined) {
          this.failures.push({
            index,
            id: device.id,
            message: `binding ${b.kind}:${b.value} is already bound to device ${owner}`,
          });
        }
      }
      // Ids and bindings are unique within a normalised batch: an inserted device never fails a later one.
      if (before === 0 && this.failures.length === 0) this.#tables.insert(device, this.#now);
      this.done++;
    });
  }
}

function runWorker(data: ImportWorkerData): void {
  const port = parentPort;
  if (port === null) return;
  const post = (message: FromImportWorker) => port.postMessage(message);
  let db: DatabaseSync | undefined;
  const finish = (message: FromImportWorker) => {
    try {
      if (db?.isOpen && db.isTransaction) db.exec("ROLLBACK");
      if (db?.isOpen) db.close();
    } catch {
      // The answer below is what matters; closing the connection releases its lock anyway.
    }
    post(message);
    port.close();
  };
  const fail = (error: unknown) =>
    finish({
      kind: "error",
      message: (error as Error)?.message ?? String(error),
      unavailable: isUnavailable(error),
    });
  let checker: ImportChecker;
  let feed: SqliteChangeFeed;
  try {
    db = new DatabaseSync(data.path, { timeout: data.busyTimeoutMs });
    // A larger page cache than the default 2 MiB: index pages of a 100,000-row insert stay in memory.
    db.exec("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536");
    feed = new SqliteChangeFeed(db, data.origin);
    db.exec("BEGIN IMMEDIATE");
    checker = new ImportChecker(new SqliteTables(db), data.now);
  } catch (error) {
    fail(error);
    return;
  }
  const database = db;
  port.on("message", (message: ToImportWorker) => {
    try {
      if (message.kind === "chunk") {
        checker.add(message.devices, message.indexes);
        post({ kind: "progress", done: checker.done });
        return;
      }
      if (checker.failures.length > 0) {
        finish({ kind: "rejected", failures: checker.failures });
        return;
      }
      // Bulk imports are announced as one resync (the store only sends batches over BULK_CHANGE_LIMIT here).
      feed.record(RESYNC, data.now);
      database.exec("COMMIT");
      finish({ kind: "committed" });
    } catch (error) {
      fail(error);
    }
  });
}

const data = workerData as Partial<ImportWorkerData> | null;
if (parentPort !== null && data?.mark === IMPORT_WORKER_MARK) runWorker(data as ImportWorkerData);
