// The steps of an issuance transaction on PostgreSQL that touch the device: create or lock it, check the bindings
// it claims, rewrite its bindings with their retirement times, and turn a lost race into a StoreConflictError.
import type pg from "pg";
import type { StoredBinding } from "./enrollment-plan.ts";
import type { NormalizedIssuance } from "./enrollment-validate.ts";
import { uniqueViolation } from "./postgres-errors.ts";
import { DEVICE_COLUMNS, type DeviceRow, toDevice } from "./postgres-rows.ts";
import { type Binding, type Device, StoreConflictError } from "./types.ts";
import { bindingKey } from "./validate.ts";

export const LOCK_DEVICE = `SELECT ${DEVICE_COLUMNS} FROM devices d WHERE d.id = $1 FOR UPDATE OF d`;
export const BUMP = "updated_at = GREATEST(now(), created_at), version = version + 1";

/**
 * Creates the device (`expect` absent) or locks it and checks its version, then sets its status and bumps it;
 * returns the device as it was (undefined when created).
 */
export async function prepareDevice(
  c: pg.PoolClient,
  issuance: NormalizedIssuance,
): Promise<Device | undefined> {
  const id = issuance.certificate.deviceId;
  const { expect } = issuance;
  if ("create" in expect) {
    const exists = await c.query("SELECT 1 FROM devices WHERE id = $1", [id]);
    if (exists.rowCount) throw new StoreConflictError(`device ${id} exists already`);
    await c.query(
      `INSERT INTO devices (id, status, groups, metadata, created_at, updated_at)
       VALUES ($1, $2, $3, $4, now(), now())`,
      [
        id,
        issuance.status ?? expect.create.status,
        expect.create.groups,
        JSON.stringify(expect.create.metadata),
      ],
    );
    return undefined;
  }
  const row = (await c.query<DeviceRow>(LOCK_DEVICE, [id])).rows[0];
  if (row === undefined) throw new StoreConflictError(`device ${id} was deleted; re-read and retry`);
  const before = toDevice(row);
  if (before.version !== expect.version) {
    throw new StoreConflictError(
      `device ${id} is at version ${before.version}, not ${expect.version}; re-read and retry`,
    );
  }
  await c.query(`UPDATE devices SET status = $2, ${BUMP} WHERE id = $1`, [
    id,
    issuance.status ?? before.status,
  ]);
  return before;
}

export async function checkNewCertificate(
  c: pg.PoolClient,
  serial: string,
  fingerprint: string,
): Promise<void> {
  const { rows } = await c.query<{ serial: string }>(
    "SELECT serial FROM issued_certificates WHERE serial = $1 OR fingerprint = $2 LIMIT 1",
    [serial, fingerprint],
  );
  const found = rows[0];
  if (found === undefined) return;
  throw new StoreConflictError(
    found.serial === serial
      ? `a certificate with serial ${serial} was recorded already`
      : `a certificate with fingerprint ${fingerprint} was recorded already (serial ${found.serial})`,
  );
}

export async function checkOwners(
  c: pg.PoolClient,
  bindings: readonly Binding[],
  self: string,
): Promise<void> {
  const { rows } = await c.query<{ kind: Binding["kind"]; value: string; device_id: string }>(
    `SELECT b.kind, b.value, b.device_id FROM bindings b
     JOIN unnest($1::text[], $2::text[]) AS w (kind, value) ON b.kind = w.kind AND b.value = w.value
     WHERE b.device_id <> $3 LIMIT 1`,
    [bindings.map((b) => b.kind), bindings.map((b) => b.value), self],
  );
  const owned = rows[0];
  if (owned !== undefined) {
    throw new StoreConflictError(
      `binding ${bindingKey(owned)} is already bound to device ${owned.device_id}`,
    );
  }
}

export async function storedBindings(c: pg.PoolClient, id: string): Promise<StoredBinding[]> {
  const { rows } = await c.query<{ kind: Binding["kind"]; value: string; retire_at: Date | null }>(
    "SELECT kind, value, retire_at FROM bindings WHERE device_id = $1 ORDER BY pos",
    [id],
  );
  return rows.map((r) => ({ kind: r.kind, value: r.value, retireAt: r.retire_at ?? undefined }));
}

export async function replaceBindings(
  c: pg.PoolClient,
  id: string,
  bindings: readonly StoredBinding[],
): Promise<void> {
  await c.query("DELETE FROM bindings WHERE device_id = $1", [id]);
  await c.query(
    `INSERT INTO bindings (device_id, kind, value, pos, retire_at)
     SELECT $1, t.kind, t.value, t.pos, t.retire_at
     FROM unnest($2::text[], $3::text[], $4::int[], $5::timestamptz[]) AS t (kind, value, pos, retire_at)`,
    [
      id,
      bindings.map((b) => b.kind),
      bindings.map((b) => b.value),
      bindings.map((_, pos) => pos),
      bindings.map((b) => b.retireAt ?? null),
    ],
  );
}

/** A unique violation: a concurrent transaction won a race that the checks could not see yet. */
export function issuanceRace(error: unknown, issuance: NormalizedIssuance): unknown {
  const { deviceId, serial, fingerprint } = issuance.certificate;
  switch (uniqueViolation(error)) {
    case undefined:
      return error;
    case "devices_pkey":
      return new StoreConflictError(`device ${deviceId} exists already`);
    case "issued_certificates_pkey":
      return new StoreConflictError(`a certificate with serial ${serial} was recorded already`);
    case "issued_certificates_fingerprint_key":
      return new StoreConflictError(`a certificate with fingerprint ${fingerprint} was recorded already`);
    default:
      return new StoreConflictError(
        `a binding of device ${deviceId} was just bound to another device; retry`,
      );
  }
}
