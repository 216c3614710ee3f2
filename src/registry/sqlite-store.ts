// DeviceStore and EnrollmentStore on node:sqlite (WAL, synchronous=FULL): the embedded default registry.
//
// Durability: WAL with synchronous=FULL syncs the log at every commit, so a write that was acknowledged
// survives kill -9 and power loss. Every write runs in BEGIN IMMEDIATE, which takes the file's write lock
// before reading, so read-check-write sequences (ifVersion, binding ownership) are atomic across
// processes too. node:sqlite is synchronous: a write waiting on another process's lock blocks this
// event loop for up to busyTimeoutMs, acceptable for an admin write path; lookups are served by the
// DeviceCache. Changes reach this process's subscribers at commit and other processes through the
// polled change feed (sqlite-change-feed.ts).
//
// Writes of one store run one at a time (an async queue), so a write never lands inside another's
// transaction. A large import (over IN_THREAD_IMPORT_LIMIT devices) runs in a worker thread on its own
// connection (sqlite-import-worker.ts): the event loop keeps serving, reads see the last committed state,
// and the store's other writes wait in the queue until the import committed or rolled back.
import { randomUUID } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { ChangeHub, RESYNC } from "./change-hub.ts";
import type { Written } from "./enrollment-plan.ts";
import type {
  EnrollmentToken,
  EnrollmentTokenPage,
  EnrollmentTokenQuery,
  Issuance,
  IssuedCertificate,
  IssuedCertificatePage,
  IssuedCertificateQuery,
  NewEnrollmentToken,
  RegistryStore,
} from "./enrollment-types.ts";
import {
  normalizeCertificateQuery,
  normalizeIssuance,
  normalizeNewToken,
  normalizeTokenQuery,
  validateDate,
  validateReason,
} from "./enrollment-validate.ts";
import { normalizeBatchInSlices, Slicer } from "./import-batch.ts";
import { migrateSqlite } from "./migrations.ts";
import { SqliteChangeFeed } from "./sqlite-change-feed.ts";
import { SqliteEnrollment } from "./sqlite-enrollment.ts";
import { prepareDatabaseFile } from "./sqlite-file-mode.ts";
import {
  type FromImportWorker,
  IMPORT_WORKER_MARK,
  ImportChecker,
  type ImportWorkerData,
} from "./sqlite-import-worker.ts";
import { anyBindingSql, DEVICE_COLUMNS, type DeviceRow, isUnavailable, toDevice } from "./sqlite-rows.ts";
import { SqliteTables } from "./sqlite-tables.ts";
import {
  type Binding,
  type Device,
  type DeviceChange,
  DeviceExistsError,
  DeviceNotFoundError,
  type DevicePage,
  type DevicePatch,
  type DeviceQuery,
  type DeviceStatus,
  type ImportOptions,
  ImportRejectedError,
  type NewDevice,
  StoreConflictError,
  type StoreHealth,
  StoreUnavailableError,
} from "./types.ts";
import {
  bindingKey,
  type ImportFailure,
  type NormalizedDevice,
  normalizeNewDevice,
  normalizePatch,
  normalizeQuery,
  prefixRange,
  statusCounts,
  unionBindings,
} from "./validate.ts";

export interface SqliteStoreOptions {
  /** How long a write waits for another process's lock before failing with StoreUnavailableError. */
  readonly busyTimeoutMs?: number;
  /** How often other processes' changes are polled from the `changes` table. */
  readonly pollIntervalMs?: number;
}

/** Imports larger than this announce one resync instead of one change per device. */
const BULK_CHANGE_LIMIT = 100;
/**
 * Imports up to this many devices run in this thread, in one synchronous transaction of a few milliseconds;
 * larger ones in a worker thread. Above BULK_CHANGE_LIMIT: the worker only announces resyncs.
 */
const IN_THREAD_IMPORT_LIMIT = 256;
/** Devices per message to the import worker. */
const IMPORT_CHUNK = 1000;
const IMPORT_WORKER_URL = new URL(
  import.meta.url.endsWith(".ts") ? "./sqlite-import-worker.ts" : "./sqlite-import-worker.js",
  import.meta.url,
);

export class SqliteDeviceStore implements RegistryStore {
  readonly #db: DatabaseSync;
  readonly #hub = new ChangeHub();
  readonly #pollMs: number;
  readonly #tables: SqliteTables;
  readonly #enrollment: SqliteEnrollment;
  /** Tags this store's rows of the change feed (its poller skips them). */
  readonly #origin = randomUUID();
  /** The end of the write queue: every write waits for the one before it. */
  #writes: Promise<unknown> = Promise.resolve();
  #importWorker: Worker | undefined;
  #busyMs: number | undefined;
  #feed: SqliteChangeFeed | undefined;
  #health: StoreHealth = { kind: "sqlite", ok: true, since: new Date() };

  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.#pollMs = options.pollIntervalMs ?? 250;
    try {
      prepareDatabaseFile(path); // 0600, as keys and tokens: SQLite gives -wal and -shm the same mode
      this.#db = new DatabaseSync(path, { timeout: options.busyTimeoutMs ?? 5000 });
      this.#db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
      this.#tables = new SqliteTables(this.#db);
      this.#enrollment = new SqliteEnrollment(this.#tables);
    } catch (error) {
      throw new StoreUnavailableError(`cannot open SQLite registry ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async migrate(): Promise<void> {
    this.#run(() => migrateSqlite(this.#db));
    if (this.#feed === undefined) {
      this.#feed = new SqliteChangeFeed(this.#db, this.#origin);
      this.#feed.start(
        this.#pollMs,
        (change) => this.#hub.emit(change),
        (error) => this.#fail(error),
      );
    }
  }

  async findByBinding(binding: Binding): Promise<Device | undefined> {
    return this.#read(
      `SELECT ${DEVICE_COLUMNS} FROM bindings x JOIN devices d ON d.id = x.device_id WHERE x.kind = ? AND x.value = ?`,
      binding.kind,
      binding.value,
    );
  }

  async findByAnyBinding(bindings: readonly Binding[]): Promise<Device | undefined> {
    if (bindings.length === 0) return undefined;
    return this.#read(anyBindingSql(bindings.length), ...bindings.flatMap((b) => [b.kind, b.value]));
  }

  async get(id: string): Promise<Device | undefined> {
    return this.#run(() => this.#tables.get(id));
  }

  async list(query: DeviceQuery): Promise<DevicePage> {
    const q = normalizeQuery(query);
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (q.idPrefix !== undefined) {
      const { low, high } = prefixRange(q.idPrefix);
      where.push("d.id >= ? AND d.id < ?");
      params.push(low, high);
    }
    if (q.status !== undefined) {
      where.push("d.status = ?");
      params.push(q.status);
    }
    if (q.group !== undefined) {
      where.push("d.id IN (SELECT device_id FROM device_groups WHERE grp = ?)");
      params.push(q.group);
    }
    if (q.binding !== undefined) {
      where.push("d.id IN (SELECT device_id FROM bindings WHERE kind = ? AND value = ?)");
      params.push(q.binding.kind, q.binding.value);
    }
    if (q.after !== undefined) {
      where.push("d.id > ?");
      params.push(q.after);
    }
    const filter = where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`;
    // One row more than asked tells whether a next page exists without a count query.
    const sql = `SELECT ${DEVICE_COLUMNS} FROM devices d ${filter} ORDER BY d.id LIMIT ?`;
    const rows = this.#run(() =>
      this.#tables.stmt(sql).all(...params, q.limit + 1),
    ) as unknown as DeviceRow[];
    const devices = rows.slice(0, q.limit).map(toDevice);
    return { devices, next: rows.length > q.limit ? devices.at(-1)?.id : undefined };
  }

  async countByStatus(): Promise<Record<DeviceStatus, number>> {
    const rows = this.#run(() =>
      this.#tables.stmt("SELECT status, count(*) AS n FROM devices GROUP BY status").all(),
    ) as unknown as { status: string; n: number }[];
    return statusCounts(rows);
  }

  async create(input: NewDevice): Promise<Device> {
    const device = normalizeNewDevice(input);
    const now = Date.now();
    const created = await this.#write(() => {
      if (this.#tables.exists(device.id)) throw new DeviceExistsError(`device ${device.id} exists already`);
      for (const b of device.bindings) {
        const owner = this.#tables.owner(b);
        if (owner !== undefined) throw bindingConflict(b, owner);
      }
      this.#tables.insert(device, now);
      this.#record(createdChange(device), now);
      return this.#mustGet(device.id);
    });
    this.#hub.emit(createdChange(device));
    return created;
  }

  async update(id: string, input: DevicePatch): Promise<Device> {
    const patch = normalizePatch(input);
    const now = Date.now();
    const { device, change } = await this.#write(() => {
      const current = this.#tables.get(id);
      if (current === undefined) throw new DeviceNotFoundError(`device ${id} not found`);
      if (patch.ifVersion !== undefined && patch.ifVersion !== current.version) {
        throw new StoreConflictError(
          `device ${id} is at version ${current.version}, not ${patch.ifVersion}; re-read and retry`,
        );
      }
      if (patch.bindings !== undefined) {
        for (const b of patch.bindings) {
          const owner = this.#tables.owner(b);
          if (owner !== undefined && owner !== id) throw bindingConflict(b, owner);
        }
        this.#tables.replaceBindings(id, patch.bindings);
      }
      if (patch.groups !== undefined) this.#tables.replaceGroups(id, patch.groups);
      const status = patch.status ?? current.status;
      const groups = patch.groups ?? current.groups;
      this.#tables.update(id, { status, groups, metadata: patch.metadata ?? current.metadata }, now);
      const change: DeviceChange = {
        id,
        kind: "updated",
        bindings: unionBindings(current.bindings, patch.bindings ?? []),
        status,
      };
      this.#record(change, now);
      return { device: this.#mustGet(id), change };
    });
    this.#hub.emit(change);
    return device;
  }

  async delete(id: string): Promise<void> {
    const now = Date.now();
    const change = await this.#write((): DeviceChange => {
      const current = this.#tables.get(id);
      if (current === undefined) throw new DeviceNotFoundError(`device ${id} not found`);
      this.#tables.delete(id);
      const change: DeviceChange = { id, kind: "deleted", bindings: current.bindings };
      this.#record(change, now);
      return change;
    });
    this.#hub.emit(change);
  }

  async importDevices(input: readonly NewDevice[], options: ImportOptions = {}): Promise<number> {
    const { devices, indexes, failures } = await normalizeBatchInSlices(input);
    const total = devices.length;
    const now = Date.now();
    // An in-memory database has no file another connection could open: its imports stay in this thread.
    const inMemory = this.#db.isOpen && this.#db.location() === null;
    if (total + failures.length <= IN_THREAD_IMPORT_LIMIT || inMemory) {
      await this.#write(() => {
        const checker = new ImportChecker(this.#tables, now);
        checker.add(devices, indexes);
        const found = [...failures, ...checker.failures];
        if (found.length > 0) throw new ImportRejectedError(found.sort((a, b) => a.index - b.index));
        if (total > BULK_CHANGE_LIMIT) this.#record(RESYNC, now);
        else for (const d of devices) this.#record(createdChange(d), now);
      });
    } else {
      await this.#exclusive(() => this.#importInWorker(devices, indexes, failures, now, options));
    }
    options.onProgress?.({ written: total, total });
    if (total > BULK_CHANGE_LIMIT) this.#hub.emit(RESYNC);
    else for (const d of devices) this.#hub.emit(createdChange(d));
    return total;
  }

  /** One import transaction in a worker thread; the caller holds the write queue. */
  async #importInWorker(
    devices: readonly NormalizedDevice[],
    indexes: readonly number[],
    failures: readonly ImportFailure[],
    now: number,
    options: ImportOptions,
  ): Promise<void> {
    if (this.#feed === undefined) throw new Error("SqliteDeviceStore: call migrate() before writing");
    const path = this.#db.isOpen ? this.#db.location() : null;
    if (path === null) {
      throw this.#translate(
        Object.assign(new Error("the database is closed"), { code: "ERR_INVALID_STATE" }),
      );
    }
    const data: ImportWorkerData = {
      mark: IMPORT_WORKER_MARK,
      path,
      origin: this.#origin,
      busyTimeoutMs: this.#busyTimeoutMs(),
      now,
    };
    const worker = new Worker(IMPORT_WORKER_URL, { workerData: data });
    this.#importWorker = worker;
    const total = devices.length;
    const outcome = new Promise<FromImportWorker>((resolve) => {
      worker.on("message", (message: FromImportWorker) => {
        if (message.kind === "progress") {
          if (message.done < total) options.onProgress?.({ written: message.done, total });
        } else resolve(message);
      });
      worker.once("error", (error) => resolve({ kind: "error", message: error.message, unavailable: false }));
      worker.once("exit", () =>
        resolve({ kind: "error", message: "the import was interrupted (store closed)", unavailable: true }),
      );
    });
    try {
      // Chunks are copied to the worker one by one, with a turn of the event loop between two.
      const slicer = new Slicer();
      for (let start = 0; start < total; start += IMPORT_CHUNK) {
        worker.postMessage({
          kind: "chunk",
          devices: devices.slice(start, start + IMPORT_CHUNK),
          indexes: indexes.slice(start, start + IMPORT_CHUNK),
        });
        await slicer.yield();
      }
      worker.postMessage({ kind: "end" });
      const result = await outcome;
      if (result.kind === "error") {
        const error = new Error(result.message);
        if (!result.unavailable) throw error;
        this.#fail(error);
        throw new StoreUnavailableError(`SQLite registry unavailable: ${result.message}`, { cause: error });
      }
      const found = [...failures, ...(result.kind === "rejected" ? result.failures : [])];
      if (found.length > 0) throw new ImportRejectedError(found.sort((a, b) => a.index - b.index));
      if (!this.#health.ok) this.#health = { kind: "sqlite", ok: true, since: new Date() };
    } finally {
      this.#importWorker = undefined;
      await worker.terminate();
    }
  }

  async touch(lastSeen: ReadonlyMap<string, Date>): Promise<void> {
    if (lastSeen.size === 0) return;
    await this.#write(() => {
      for (const [id, at] of lastSeen) this.#tables.touch(id, at.getTime());
    });
  }

  async createEnrollmentToken(token: NewEnrollmentToken): Promise<EnrollmentToken> {
    const input = normalizeNewToken(token);
    return this.#write(() => this.#enrollment.createToken(input, Date.now()));
  }

  async findEnrollmentToken(id: string): Promise<{ token: EnrollmentToken; secretHash: string } | undefined> {
    return this.#run(() => this.#enrollment.findToken(id));
  }

  async listEnrollmentTokens(query: EnrollmentTokenQuery): Promise<EnrollmentTokenPage> {
    const q = normalizeTokenQuery(query);
    return this.#run(() => this.#enrollment.listTokens(q));
  }

  async revokeEnrollmentToken(id: string, now: Date): Promise<EnrollmentToken> {
    const at = validateDate(now, "now").getTime();
    return this.#write(() => this.#enrollment.revokeToken(id, at));
  }

  async recordIssuance(issuance: Issuance, now: Date): Promise<IssuedCertificate> {
    const input = normalizeIssuance(issuance);
    const at = validateDate(now, "now");
    return this.#writeAnnounced(() => this.#enrollment.recordIssuance(input, at));
  }

  async getIssuedCertificate(serial: string): Promise<IssuedCertificate | undefined> {
    return this.#run(() => this.#enrollment.getCertificate(serial));
  }

  async listIssuedCertificates(query: IssuedCertificateQuery): Promise<IssuedCertificatePage> {
    const q = normalizeCertificateQuery(query);
    return this.#run(() => this.#enrollment.listCertificates(q));
  }

  async revokeIssuedCertificate(serial: string, reason: string, now: Date): Promise<IssuedCertificate> {
    const why = validateReason(reason);
    const at = validateDate(now, "now").getTime();
    return this.#writeAnnounced(() => this.#enrollment.revokeCertificate(serial, why, at));
  }

  async retireBindings(now: Date): Promise<number> {
    const at = validateDate(now, "now").getTime();
    return this.#writeAnnounced(() => this.#enrollment.retireDue(at));
  }

  async nextBindingRetirement(): Promise<Date | undefined> {
    return this.#run(() => this.#enrollment.nextRetirement());
  }

  onChange(listener: (change: DeviceChange) => void): () => void {
    return this.#hub.subscribe(listener);
  }

  health(): StoreHealth {
    return this.#health;
  }

  async close(): Promise<void> {
    this.#feed?.stop();
    // An import in flight is rolled back (its connection goes with its thread) and fails.
    await this.#importWorker?.terminate();
    if (this.#db.isOpen) this.#db.close();
  }

  /** Polls the change feed now (tests; production relies on the timer). */
  pollChanges(): void {
    this.#feed?.poll((change) => this.#hub.emit(change));
  }

  #read(sql: string, ...params: string[]): Device | undefined {
    return this.#run(() => this.#tables.one(sql, ...params));
  }

  /** Read back inside the write's transaction, so the answer is exactly what was committed. */
  #mustGet(id: string): Device {
    const device = this.#tables.get(id);
    if (device === undefined) throw new DeviceNotFoundError(`device ${id} not found`);
    return device;
  }

  #record(change: DeviceChange, now: number): void {
    if (this.#feed === undefined) throw new Error("SqliteDeviceStore: call migrate() before writing");
    this.#feed.record(change, now);
  }

  /** A write whose device changes are recorded in its transaction and emitted after the commit. */
  async #writeAnnounced<T>(body: () => Written<T>): Promise<T> {
    const { result, changes } = await this.#write(() => {
      const written = body();
      const now = Date.now();
      for (const change of written.changes) this.#record(change, now);
      return written;
    });
    for (const change of changes) this.#hub.emit(change);
    return result;
  }

  /** Runs `body` when every write queued before it has finished (whatever its outcome). */
  #exclusive<T>(body: () => T | Promise<T>): Promise<T> {
    const run = this.#writes.then(body);
    this.#writes = run.catch(() => undefined);
    return run;
  }

  /** One write transaction, queued behind the store's other writes; the file's write lock is taken up front. */
  #write<T>(body: () => T): Promise<T> {
    return this.#exclusive(async () => {
      try {
        await this.#begin();
      } catch (error) {
        throw this.#translate(error);
      }
      return this.#run(() => {
        try {
          const result = body();
          this.#db.exec("COMMIT");
          return result;
        } catch (error) {
          if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
          throw error;
        }
      });
    });
  }

  /**
   * BEGIN IMMEDIATE without SQLite's blocking busy wait: while another process (or an import thread) holds
   * the file's write lock, this waits in short asynchronous pauses, up to the busy timeout.
   */
  async #begin(): Promise<void> {
    const budget = this.#busyTimeoutMs();
    const deadline = performance.now() + budget;
    for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
      this.#db.exec("PRAGMA busy_timeout = 0");
      try {
        this.#db.exec("BEGIN IMMEDIATE");
        return;
      } catch (error) {
        if (!isBusy(error) || performance.now() >= deadline) throw error;
      } finally {
        this.#db.exec(`PRAGMA busy_timeout = ${budget}`);
      }
      await sleep(pause);
    }
  }

  /** The connection's busy timeout (the `busyTimeoutMs` option), read once. */
  #busyTimeoutMs(): number {
    this.#busyMs ??= (this.#db.prepare("PRAGMA busy_timeout").get() as { timeout: number }).timeout;
    return this.#busyMs;
  }

  #run<T>(body: () => T): T {
    try {
      const result = body();
      if (!this.#health.ok) this.#health = { kind: "sqlite", ok: true, since: new Date() };
      return result;
    } catch (error) {
      throw this.#translate(error);
    }
  }

  /** An error that means the store cannot serve becomes StoreUnavailableError (and health says so). */
  #translate(error: unknown): unknown {
    if (!isUnavailable(error)) return error;
    this.#fail(error);
    return new StoreUnavailableError(`SQLite registry unavailable: ${(error as Error).message}`, {
      cause: error,
    });
  }

  #fail(error: unknown): void {
    // `since` stays at the start of the outage.
    if (this.#health.ok) {
      this.#health = {
        kind: "sqlite",
        ok: false,
        error: (error as Error)?.message ?? String(error),
        since: new Date(),
      };
    }
  }
}

function bindingConflict(binding: Binding, owner: string): StoreConflictError {
  return new StoreConflictError(`binding ${bindingKey(binding)} is already bound to device ${owner}`);
}

/** SQLITE_BUSY: another connection holds the lock. */
function isBusy(error: unknown): boolean {
  const code = (error as { errcode?: unknown })?.errcode;
  return typeof code === "number" && (code & 0xff) === 5;
}

function createdChange(device: NormalizedDevice): DeviceChange {
  return { id: device.id, kind: "created", bindings: device.bindings, status: device.status };
}
