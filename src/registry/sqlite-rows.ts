// SQL text and row mapping of the SQLite store: a device and its bindings come back in one statement.
import type { Binding, Device, DeviceStatus } from "./types.ts";

/** Columns of a device with its bindings aggregated in position order, for `FROM devices d`. */
export const DEVICE_COLUMNS = `d.id, d.status, d.groups, d.metadata, d.created_at, d.updated_at, d.last_seen_at,
  d.version, (SELECT json_group_array(json_array(b.kind, b.value) ORDER BY b.pos)
              FROM bindings b WHERE b.device_id = d.id) AS bindings`;

export interface DeviceRow {
  id: string;
  status: string;
  groups: string;
  metadata: string;
  created_at: number;
  updated_at: number;
  last_seen_at: number | null;
  version: number;
  bindings: string;
}

export function toDevice(row: DeviceRow): Device {
  const pairs = JSON.parse(row.bindings) as [Binding["kind"], string][];
  return {
    id: row.id,
    status: row.status as DeviceStatus,
    bindings: pairs.map(([kind, value]) => ({ kind, value })),
    groups: JSON.parse(row.groups) as string[],
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    lastSeenAt: row.last_seen_at === null ? undefined : new Date(row.last_seen_at),
    version: row.version,
  };
}

/** The candidates of findByAnyBinding as a VALUES list with their priority. */
export function anyBindingSql(count: number): string {
  const values = Array.from({ length: count }, (_, i) => `(${i}, ?, ?)`).join(", ");
  return `WITH c (p, kind, value) AS (VALUES ${values})
    SELECT ${DEVICE_COLUMNS} FROM c JOIN bindings x ON x.kind = c.kind AND x.value = c.value
    JOIN devices d ON d.id = x.device_id ORDER BY c.p LIMIT 1`;
}

// Result codes that mean "the store cannot serve right now" rather than "this request is wrong":
// BUSY, LOCKED, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOTADB (the low byte of extended codes).
const UNAVAILABLE_CODES = new Set([5, 6, 10, 11, 13, 14, 15, 26]);

export function isUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; errcode?: unknown };
  if (e?.code === "ERR_INVALID_STATE") return true; // the database is closed
  return typeof e?.errcode === "number" && UNAVAILABLE_CODES.has(e.errcode & 0xff);
}
