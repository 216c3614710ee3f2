// DeviceStore on Node's built-in node:sqlite (WAL, synchronous=FULL): the embedded default registry.
//
// Durability: WAL with synchronous=FULL syncs the log at every commit, so a write that was acknowledged
// survives kill -9 and power loss. Every write runs in BEGIN IMMEDIATE, which takes the file's write lock
// before reading, so read-check-write sequences (ifVersion, binding ownership) are atomic across
// processes too. node:sqlite is synchronous: a write waiting on another process's lock blocks this
// event loop for up to busyTimeoutMs, acceptable for an admin write path; lookups are served by the
// DeviceCache. Changes reach this process's subscribers at commit and other processes through the
// polled change feed (sqlite-change-feed.ts).
import { randomUUID } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { ChangeHub, RESYNC } from "./change-hub.ts";
import { migrateSqlite } from "./migrations.ts";
import { SqliteChangeFeed } from "./sqlite-change-feed.ts";
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
  type DeviceStore,
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
  normalizeBatch,
  normalizeNewDevice,
  normalizePatch,
  normalizeQuery,
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

export class SqliteDeviceStore implements DeviceStore {
  readonly #db: DatabaseSync;
  readonly #hub = new ChangeHub();
  readonly #pollMs: number;
  readonly #tables: SqliteTables;
  #feed: SqliteChangeFeed | undefined;
  #health: StoreHealth = { kind: "sqlite", ok: true, since: new Date() };

  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.#pollMs = options.pollIntervalMs ?? 250;
    try {
      this.#db = new DatabaseSync(path, { timeout: options.busyTimeoutMs ?? 5000 });
      this.#db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON");
      this.#tables = new SqliteTables(this.#db);
    } catch (error) {
      throw new StoreUnavailableError(`cannot open SQLite registry ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async migrate(): Promise<void> {
    this.#run(() => migrateSqlite(this.#db));
    if (this.#feed === undefined) {
      this.#feed = new SqliteChangeFeed(this.#db, randomUUID());
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

  async create(input: NewDevice): Promise<Device> {
    const device = normalizeNewDevice(input);
    const now = Date.now();
    const created = this.#write(() => {
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
    const { device, change } = this.#write(() => {
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
    const change = this.#write((): DeviceChange => {
      const current = this.#tables.get(id);
      if (current === undefined) throw new DeviceNotFoundError(`device ${id} not found`);
      this.#tables.delete(id);
      const change: DeviceChange = { id, kind: "deleted", bindings: current.bindings };
      this.#record(change, now);
      return change;
    });
    this.#hub.emit(change);
  }

  async importDevices(input: readonly NewDevice[]): Promise<number> {
    const { devices, indexes, failures } = normalizeBatch(input);
    const now = Date.now();
    this.#write(() => {
      const found: ImportFailure[] = [...failures];
      devices.forEach((device, n) => {
        const index = indexes[n] ?? n;
        if (this.#tables.exists(device.id))
          found.push({ index, id: device.id, message: "device exists already" });
        for (const b of device.bindings) {
          const owner = this.#tables.owner(b);
          if (owner !== undefined)
            found.push({ index, id: device.id, message: bindingConflict(b, owner).message });
        }
      });
      if (found.length > 0) throw new ImportRejectedError(found.sort((a, b) => a.index - b.index));
      for (const device of devices) this.#tables.insert(device, now);
      if (devices.length > BULK_CHANGE_LIMIT) this.#record(RESYNC, now);
      else for (const d of devices) this.#record(createdChange(d), now);
    });
    if (devices.length > BULK_CHANGE_LIMIT) this.#hub.emit(RESYNC);
    else for (const d of devices) this.#hub.emit(createdChange(d));
    return devices.length;
  }

  async touch(lastSeen: ReadonlyMap<string, Date>): Promise<void> {
    if (lastSeen.size === 0) return;
    this.#write(() => {
      for (const [id, at] of lastSeen) this.#tables.touch(id, at.getTime());
    });
  }

  onChange(listener: (change: DeviceChange) => void): () => void {
    return this.#hub.subscribe(listener);
  }

  health(): StoreHealth {
    return this.#health;
  }

  async close(): Promise<void> {
    this.#feed?.stop();
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

  /** One write transaction; the write lock is taken up front (IMMEDIATE). */
  #write<T>(body: () => T): T {
    return this.#run(() => {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        const result = body();
        this.#db.exec("COMMIT");
        return result;
      } catch (error) {
        if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
        throw error;
      }
    });
  }

  #run<T>(body: () => T): T {
    try {
      const result = body();
      if (!this.#health.ok) this.#health = { kind: "sqlite", ok: true, since: new Date() };
      return result;
    } catch (error) {
      if (!isUnavailable(error)) throw error;
      this.#fail(error);
      throw new StoreUnavailableError(`SQLite registry unavailable: ${(error as Error).message}`, {
        cause: error,
      });
    }
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

function createdChange(device: NormalizedDevice): DeviceChange {
  return { id: device.id, kind: "created", bindings: device.bindings, status: device.status };
}
