// Prepared statements over the SQLite registry tables; the store calls them inside its transactions.
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { DEVICE_COLUMNS, type DeviceRow, toDevice } from "./sqlite-rows.ts";
import type { Binding, Device, DeviceStatus } from "./types.ts";
import type { NormalizedDevice } from "./validate.ts";

export class SqliteTables {
  readonly #db: DatabaseSync;
  /** Prepared once per SQL text: node:sqlite statements are reusable and preparing costs a parse. */
  readonly #statements = new Map<string, StatementSync>();

  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  stmt(sql: string): StatementSync {
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  /** The one device a statement selects with DEVICE_COLUMNS, if any. */
  one(sql: string, ...params: string[]): Device | undefined {
    const row = this.stmt(sql).get(...params) as DeviceRow | undefined;
    return row === undefined ? undefined : toDevice(row);
  }

  get(id: string): Device | undefined {
    return this.one(`SELECT ${DEVICE_COLUMNS} FROM devices d WHERE d.id = ?`, id);
  }

  exists(id: string): boolean {
    return this.stmt("SELECT 1 FROM devices WHERE id = ?").get(id) !== undefined;
  }

  /** The device a binding belongs to, if any. */
  owner(binding: Binding): string | undefined {
    const row = this.stmt("SELECT device_id FROM bindings WHERE kind = ? AND value = ?").get(
      binding.kind,
      binding.value,
    ) as { device_id: string } | undefined;
    return row?.device_id;
  }

  insert(device: NormalizedDevice, now: number): void {
    this.stmt(
      `INSERT INTO devices (id, status, groups, metadata, created_at, updated_at, version)
       VALUES (?, ?, ?, ?, ?, ?, 1)`,
    ).run(device.id, device.status, JSON.stringify(device.groups), JSON.stringify(device.metadata), now, now);
    this.#insertBindings(device.id, device.bindings);
    this.#insertGroups(device.id, device.groups);
  }

  replaceBindings(id: string, bindings: readonly Binding[]): void {
    this.stmt("DELETE FROM bindings WHERE device_id = ?").run(id);
    this.#insertBindings(id, bindings);
  }

  replaceGroups(id: string, groups: readonly string[]): void {
    this.stmt("DELETE FROM device_groups WHERE device_id = ?").run(id);
    this.#insertGroups(id, groups);
  }

  /** version = version + 1 in the statement itself: the increment can never be lost. */
  update(
    id: string,
    fields: { status: DeviceStatus; groups: readonly string[]; metadata: Readonly<Record<string, unknown>> },
    now: number,
  ): void {
    this.stmt(
      `UPDATE devices SET status = ?, groups = ?, metadata = ?, updated_at = max(?, created_at),
       version = version + 1 WHERE id = ?`,
    ).run(fields.status, JSON.stringify(fields.groups), JSON.stringify(fields.metadata), now, id);
  }

  delete(id: string): void {
    // Bindings and group rows go with it (ON DELETE CASCADE).
    this.stmt("DELETE FROM devices WHERE id = ?").run(id);
  }

  /** Never moves last_seen_at backwards when two nodes flush out of order. */
  touch(id: string, at: number): void {
    this.stmt("UPDATE devices SET last_seen_at = max(coalesce(last_seen_at, 0), ?) WHERE id = ?").run(at, id);
  }

  #insertBindings(id: string, bindings: readonly Binding[]): void {
    const stmt = this.stmt("INSERT INTO bindings (device_id, kind, value, pos) VALUES (?, ?, ?, ?)");
    for (const [pos, b] of bindings.entries()) stmt.run(id, b.kind, b.value, pos);
  }

  #insertGroups(id: string, groups: readonly string[]): void {
    const stmt = this.stmt("INSERT INTO device_groups (device_id, grp) VALUES (?, ?)");
    for (const group of groups) stmt.run(id, group);
  }
}
