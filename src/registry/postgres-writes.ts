// The write transactions of the PostgreSQL store, each ending with the pg_notify that announces it.
import type pg from "pg";
import { RESYNC } from "./change-hub.ts";
import { uniqueViolation } from "./postgres-errors.ts";
import { DEVICE_COLUMNS, type DeviceRow, encodeChange, NOTIFY_CHANNEL, toDevice } from "./postgres-rows.ts";
import {
  type Binding,
  type Device,
  type DeviceChange,
  DeviceExistsError,
  DeviceNotFoundError,
  type ImportProgress,
  ImportRejectedError,
  StoreConflictError,
} from "./types.ts";
import {
  bindingKey,
  type ImportFailure,
  type NormalizedDevice,
  type NormalizedPatch,
  unionBindings,
} from "./validate.ts";

type Tx = <T>(body: (client: pg.PoolClient) => Promise<T>) => Promise<T>;

/** Imports larger than this announce one resync instead of one change per device. */
const BULK_CHANGE_LIMIT = 100;
/**
 * Devices per step of an import (one check of ids, one of bindings, one INSERT of each table): the rows and
 * parameters of a step are built synchronously, so a step stays a few milliseconds of this thread's time.
 */
const CHUNK = 1000;

const SELECT_DEVICE = `SELECT ${DEVICE_COLUMNS} FROM devices d WHERE d.id = $1`;

export class PgWrites {
  readonly #tx: Tx;
  readonly #schema: string;
  readonly #origin: string;

  constructor(tx: Tx, schema: string, origin: string) {
    this.#tx = tx;
    this.#schema = schema;
    this.#origin = origin;
  }

  async create(device: NormalizedDevice): Promise<Device> {
    try {
      return await this.#tx(async (c) => {
        const exists = await c.query("SELECT 1 FROM devices WHERE id = $1", [device.id]);
        if (exists.rowCount) throw new DeviceExistsError(`device ${device.id} exists already`);
        await this.#checkOwners(c, device.bindings, device.id);
        await insertDevices(c, [device]);
        await this.#notify(c, {
          id: device.id,
          kind: "created",
          bindings: device.bindings,
          status: device.status,
        });
        return await readDevice(c, device.id);
      });
    } catch (error) {
      throw await this.#raceToConflict(error, device.id);
    }
  }

  async update(id: string, patch: NormalizedPatch): Promise<{ device: Device; change: DeviceChange }> {
    try {
      return await this.#tx(async (c) => {
        // The row lock makes read-check-write atomic: concurrent updates queue here, one version each.
        const locked = await c.query<DeviceRow>(`${SELECT_DEVICE} FOR UPDATE OF d`, [id]);
        const row = locked.rows[0];
        if (row === undefined) throw new DeviceNotFoundError(`device ${id} not found`);
        const current = toDevice(row);
        if (patch.ifVersion !== undefined && patch.ifVersion !== current.version) {
          throw new StoreConflictError(
            `device ${id} is at version ${current.version}, not ${patch.ifVersion}; re-read and retry`,
          );
        }
        if (patch.bindings !== undefined) {
          await this.#checkOwners(c, patch.bindings, id);
          await c.query("DELETE FROM bindings WHERE device_id = $1", [id]);
          await insertBindings(c, [{ id, bindings: patch.bindings }]);
        }
        const status = patch.status ?? current.status;
        await c.query(
          `UPDATE devices SET status = $2, groups = $3, metadata = $4,
             updated_at = GREATEST(now(), created_at), version = version + 1 WHERE id = $1`,
          [id, status, patch.groups ?? current.groups, JSON.stringify(patch.metadata ?? current.metadata)],
        );
        const change: DeviceChange = {
          id,
          kind: "updated",
          bindings: unionBindings(current.bindings, patch.bindings ?? []),
          status,
        };
        await this.#notify(c, change);
        return { device: await readDevice(c, id), change };
      });
    } catch (error) {
      throw await this.#raceToConflict(error, id);
    }
  }

  async delete(id: string): Promise<DeviceChange> {
    return this.#tx(async (c) => {
      const { rows } = await c.query<DeviceRow>(`${SELECT_DEVICE} FOR UPDATE OF d`, [id]);
      const row = rows[0];
      if (row === undefined) throw new DeviceNotFoundError(`device ${id} not found`);
      await c.query("DELETE FROM devices WHERE id = $1", [id]);
      const change: DeviceChange = { id, kind: "deleted", bindings: toDevice(row).bindings };
      await this.#notify(c, change);
      return change;
    });
  }

  /**
   * Checks the batch against existing rows and inserts it, chunk by chunk, in one transaction; returns the
   * changes to emit locally. After the first failure nothing more is inserted (the transaction is rolled
   * back) but every chunk is still checked, so that every failing device is named.
   */
  async importDevices(
    batch: {
      devices: readonly NormalizedDevice[];
      indexes: readonly number[];
      failures: readonly ImportFailure[];
    },
    onProgress?: (progress: ImportProgress) => void,
  ): Promise<DeviceChange[]> {
    const { devices, indexes } = batch;
    if (devices.length === 0 && batch.failures.length === 0) return [];
    try {
      return await this.#tx(async (c) => {
        const failures = [...batch.failures];
        for (let start = 0; start < devices.length; start += CHUNK) {
          const chunk = devices.slice(start, start + CHUNK);
          const before = failures.length;
          await checkChunk(c, chunk, indexes.slice(start, start + CHUNK), failures);
          // Ids and bindings are unique within a normalised batch: an inserted chunk never fails a later one.
          if (before === 0 && failures.length === 0) await insertDevices(c, chunk);
          const written = Math.min(start + CHUNK, devices.length);
          if (written < devices.length) onProgress?.({ written, total: devices.length });
        }
        if (failures.length > 0) throw new ImportRejectedError(failures.sort((a, b) => a.index - b.index));
        const changes: DeviceChange[] =
          devices.length > BULK_CHANGE_LIMIT
            ? [RESYNC]
            : devices.map((d) => ({ id: d.id, kind: "created", bindings: d.bindings, status: d.status }));
        for (const change of changes) await this.#notify(c, change);
        return changes;
      });
    } catch (error) {
      // Another node inserted one of these ids or bindings while we checked.
      if (uniqueViolation(error) !== undefined) {
        throw new StoreConflictError(
          "a concurrent write took one of these ids or bindings; nothing imported, retry",
        );
      }
      throw error;
    }
  }

  async #checkOwners(c: pg.PoolClient, bindings: readonly Binding[], self: string): Promise<void> {
    if (bindings.length === 0) return;
    const { rows } = await c.query<{ kind: Binding["kind"]; value: string; device_id: string }>(
      `SELECT b.kind, b.value, b.device_id FROM bindings b
       JOIN unnest($1::text[], $2::text[]) AS w (kind, value) ON b.kind = w.kind AND b.value = w.value
       WHERE b.device_id <> $3 LIMIT 1`,
      [bindings.map((b) => b.kind), bindings.map((b) => b.value), self],
    );
    const owned = rows[0];
    if (owned !== undefined) throw conflict(owned, owned.device_id);
  }

  async #notify(c: pg.PoolClient, change: DeviceChange): Promise<void> {
    await c.query("SELECT pg_notify($1, $2)", [
      NOTIFY_CHANNEL,
      encodeChange(this.#schema, this.#origin, change),
    ]);
  }

  /** A unique violation means a concurrent transaction won a race that our checks could not see yet. */
  async #raceToConflict(error: unknown, id: string): Promise<unknown> {
    const constraint = uniqueViolation(error);
    if (constraint === undefined) return error;
    if (constraint === "devices_pkey") return new DeviceExistsError(`device ${id} exists already`);
    return new StoreConflictError(
      `a binding of device ${id} was just bound to another device; re-read and retry`,
    );
  }
}

/** Adds a failure for every device of `chunk` whose id exists or one of whose bindings is held already. */
async function checkChunk(
  c: pg.PoolClient,
  chunk: readonly NormalizedDevice[],
  indexes: readonly number[],
  failures: ImportFailure[],
): Promise<void> {
  const position = new Map(chunk.map((d, n) => [d.id, indexes[n] ?? n] as const));
  const existing = await c.query<{ id: string }>("SELECT id FROM devices WHERE id = ANY($1::text[])", [
    chunk.map((d) => d.id),
  ]);
  for (const { id } of existing.rows) {
    failures.push({ index: position.get(id) ?? -1, id, message: "device exists already" });
  }
  const wanted = chunk.flatMap((d) => d.bindings.map((b) => ({ ...b, id: d.id })));
  if (wanted.length === 0) return;
  const owned = await c.query<{ kind: Binding["kind"]; value: string; device_id: string }>(
    `SELECT b.kind, b.value, b.device_id FROM bindings b
     JOIN unnest($1::text[], $2::text[]) AS w (kind, value) ON b.kind = w.kind AND b.value = w.value`,
    [wanted.map((w) => w.kind), wanted.map((w) => w.value)],
  );
  const claimant = new Map(wanted.map((w) => [bindingKey(w), w.id] as const));
  for (const o of owned.rows) {
    const id = claimant.get(bindingKey(o)) ?? "";
    failures.push({ index: position.get(id) ?? -1, id, message: conflict(o, o.device_id).message });
  }
}

async function readDevice(c: pg.PoolClient, id: string): Promise<Device> {
  const { rows } = await c.query<DeviceRow>(SELECT_DEVICE, [id]);
  const row = rows[0];
  if (row === undefined) throw new DeviceNotFoundError(`device ${id} not found`);
  return toDevice(row);
}

async function insertDevices(c: pg.PoolClient, devices: readonly NormalizedDevice[]): Promise<void> {
  // Groups travel as JSON text: unnest cannot take an array of arrays of different lengths.
  await c.query(
    `INSERT INTO devices (id, status, groups, metadata, created_at, updated_at)
     SELECT t.id, t.status, ARRAY(SELECT json_array_elements_text(t.g)), t.m, now(), now()
     FROM unnest($1::text[], $2::text[], $3::json[], $4::jsonb[]) AS t (id, status, g, m)`,
    [
      devices.map((d) => d.id),
      devices.map((d) => d.status),
      devices.map((d) => JSON.stringify(d.groups)),
      devices.map((d) => JSON.stringify(d.metadata)),
    ],
  );
  await insertBindings(
    c,
    devices.map((d) => ({ id: d.id, bindings: d.bindings })),
  );
}

async function insertBindings(
  c: pg.PoolClient,
  devices: readonly { id: string; bindings: readonly Binding[] }[],
): Promise<void> {
  const rows = devices.flatMap((d) => d.bindings.map((b, pos) => [d.id, b.kind, b.value, pos] as const));
  if (rows.length === 0) return;
  await c.query(
    `INSERT INTO bindings (device_id, kind, value, pos)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[])`,
    [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3])],
  );
}

function conflict(binding: Binding, owner: string): StoreConflictError {
  return new StoreConflictError(`binding ${bindingKey(binding)} is already bound to device ${owner}`);
}
