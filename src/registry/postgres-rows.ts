// SQL text and row mapping of the PostgreSQL store: a device and its bindings come back in one statement.
import type { Binding, Device, DeviceChange, DeviceStatus } from "./types.ts";

/** Columns of a device with its bindings aggregated in position order, for `FROM devices d`. */
export const DEVICE_COLUMNS = `d.id, d.status, d.groups, d.metadata, d.created_at, d.updated_at, d.last_seen_at,
  d.version, coalesce((SELECT json_agg(json_build_array(b.kind, b.value) ORDER BY b.pos)
                       FROM bindings b WHERE b.device_id = d.id), '[]'::json) AS bindings`;

export interface DeviceRow {
  id: string;
  status: string;
  groups: string[];
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
  last_seen_at: Date | null;
  version: number;
  bindings: [Binding["kind"], string][];
}

export function toDevice(row: DeviceRow): Device {
  return {
    id: row.id,
    status: row.status as DeviceStatus,
    bindings: row.bindings.map(([kind, value]) => ({ kind, value })),
    groups: row.groups,
    metadata: row.metadata,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastSeenAt: row.last_seen_at ?? undefined,
    version: row.version,
  };
}

/** Candidates with their priority, one indexed probe each, best first. */
export const ANY_BINDING_SQL = `SELECT ${DEVICE_COLUMNS}
  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS c (kind, value, p)
  JOIN bindings x ON x.kind = c.kind AND x.value = c.value
  JOIN devices d ON d.id = x.device_id ORDER BY c.p LIMIT 1`;

export const NOTIFY_CHANNEL = "portcullis_devices";
// NOTIFY payloads must stay under 8000 bytes; a larger change is announced as a resync instead.
const MAX_PAYLOAD = 7900;

/**
 * The NOTIFY payload: compact keys; the schema, because every schema of a database shares the channel
 * (parallel test runs, several registries in one database); the writing store's origin token, because
 * a store emits its own changes at commit and must not repeat them when its NOTIFY comes back.
 */
export function encodeChange(schema: string, origin: string, change: DeviceChange): string {
  if (change.kind === "resync") return JSON.stringify({ s: schema, o: origin, r: 1 });
  const payload = JSON.stringify({
    s: schema,
    o: origin,
    id: change.id,
    k: change.kind,
    b: change.bindings.map((b) => [b.kind, b.value]),
    ...(change.status !== undefined && { st: change.status }),
  });
  return Buffer.byteLength(payload) > MAX_PAYLOAD ? JSON.stringify({ s: schema, o: origin, r: 1 }) : payload;
}

/** The change in a payload, "resync", or undefined when it is another schema's, our own, or garbage. */
export function decodeChange(
  schema: string,
  origin: string,
  payload: string | undefined,
): DeviceChange | "resync" | undefined {
  let p: { s?: unknown; o?: unknown; r?: unknown; id?: unknown; k?: unknown; b?: unknown; st?: unknown };
  try {
    p = JSON.parse(payload ?? "");
  } catch {
    return undefined;
  }
  if (p?.s !== schema || p.o === origin) return undefined;
  if (p.r === 1) return "resync";
  if (typeof p.id !== "string" || !Array.isArray(p.b)) return undefined;
  return {
    id: p.id,
    kind: p.k as DeviceChange["kind"],
    bindings: (p.b as [Binding["kind"], string][]).map(([kind, value]) => ({ kind, value })),
    ...(typeof p.st === "string" && { status: p.st as DeviceStatus }),
  };
}
