// Input checks and normalisation shared by both stores, so SQLite and PostgreSQL accept exactly the same devices.
import { normalizeFingerprint } from "../identity/certificate.ts";
import {
  BINDING_KINDS,
  type Binding,
  type BindingKind,
  DEVICE_STATUSES,
  type DevicePatch,
  type DeviceQuery,
  type DeviceStatus,
  InvalidDeviceError,
  type NewDevice,
} from "./types.ts";

/** A device as the stores write it: every field present and normalised. */
export interface NormalizedDevice {
  readonly id: string;
  readonly status: DeviceStatus;
  readonly bindings: readonly Binding[];
  readonly groups: readonly string[];
  readonly metadata: Readonly<Record<string, unknown>>;
}

export interface NormalizedPatch {
  readonly status?: DeviceStatus;
  readonly bindings?: readonly Binding[];
  readonly groups?: readonly string[];
  readonly metadata?: Readonly<Record<string, unknown>>;
  readonly ifVersion?: number;
}

const MAX_ID = 256;
const MAX_VALUE = 2048;
const MAX_GROUP = 128;
const MAX_BINDINGS = 32;
const MAX_GROUPS = 64;
const MAX_METADATA_BYTES = 16_384;
// Control characters would make ids and bindings ambiguous in logs, headers and NOTIFY payloads.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

const bad = (message: string): never => {
  throw new InvalidDeviceError(message);
};

/** The cache and index key of one binding. */
export function bindingKey(binding: Binding): string {
  return `${binding.kind}:${binding.value}`;
}

/** Bindings of both lists, each once: what a change touched before and after. */
export function unionBindings(a: readonly Binding[], b: readonly Binding[]): Binding[] {
  const seen = new Map(a.map((x) => [bindingKey(x), x] as const));
  for (const x of b) seen.set(bindingKey(x), x);
  return [...seen.values()];
}

export function validateId(id: unknown): string {
  if (typeof id !== "string" || id.length === 0) return bad("id must be a non-empty string");
  if (id.length > MAX_ID) return bad(`id longer than ${MAX_ID} characters`);
  if (CONTROL.test(id)) return bad("id contains control characters");
  return id;
}

function validateStatus(status: unknown): DeviceStatus {
  if (!(DEVICE_STATUSES as readonly unknown[]).includes(status)) {
    return bad(`status must be one of ${DEVICE_STATUSES.join(", ")}, got ${JSON.stringify(status)}`);
  }
  return status as DeviceStatus;
}

/**
 * Fingerprints are stored as lower-case hex without colons (what the identity engine computes), so an
 * operator may paste `AB:CD:…`; every other kind is kept exactly as given.
 */
export function normalizeBinding(binding: unknown): Binding {
  if (typeof binding !== "object" || binding === null) return bad("binding must be an object");
  const { kind, value } = binding as { kind?: unknown; value?: unknown };
  if (!(BINDING_KINDS as readonly unknown[]).includes(kind)) {
    return bad(`binding kind must be one of ${BINDING_KINDS.join(", ")}, got ${JSON.stringify(kind)}`);
  }
  if (typeof value !== "string" || value.length === 0) return bad(`${kind} binding needs a non-empty value`);
  if (value.length > MAX_VALUE) return bad(`${kind} binding longer than ${MAX_VALUE} characters`);
  if (CONTROL.test(value)) return bad(`${kind} binding contains control characters`);
  if (kind === "fingerprint") {
    const hex = normalizeFingerprint(value);
    if (hex === undefined) return bad("fingerprint binding must be a SHA-256 in hex (64 digits)");
    return { kind, value: hex };
  }
  return { kind: kind as BindingKind, value };
}

function validateBindings(bindings: unknown): Binding[] {
  if (!Array.isArray(bindings)) return bad("bindings must be an array");
  if (bindings.length > MAX_BINDINGS) return bad(`more than ${MAX_BINDINGS} bindings`);
  const out: Binding[] = [];
  const seen = new Set<string>();
  for (const raw of bindings) {
    const binding = normalizeBinding(raw);
    const key = bindingKey(binding);
    if (seen.has(key)) return bad(`duplicate binding ${key}`);
    seen.add(key);
    out.push(binding);
  }
  return out;
}

function validateGroups(groups: unknown): string[] {
  if (!Array.isArray(groups)) return bad("groups must be an array of strings");
  if (groups.length > MAX_GROUPS) return bad(`more than ${MAX_GROUPS} groups`);
  const out = new Set<string>();
  for (const group of groups) {
    if (typeof group !== "string" || group.length === 0) return bad("groups must be non-empty strings");
    if (group.length > MAX_GROUP || CONTROL.test(group)) return bad(`invalid group ${JSON.stringify(group)}`);
    out.add(group);
  }
  return [...out];
}

function validateMetadata(metadata: unknown): Record<string, unknown> {
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
    return bad("metadata must be a JSON object");
  }
  let text: string;
  try {
    text = JSON.stringify(metadata);
  } catch {
    return bad("metadata must be serialisable as JSON");
  }
  if (Buffer.byteLength(text) > MAX_METADATA_BYTES)
    return bad(`metadata larger than ${MAX_METADATA_BYTES} bytes`);
  // A JSON round trip so that what the caller gets back equals what a later read returns.
  return JSON.parse(text) as Record<string, unknown>;
}

export function normalizeNewDevice(device: NewDevice): NormalizedDevice {
  if (typeof device !== "object" || device === null) return bad("device must be an object");
  return {
    id: validateId(device.id),
    status: device.status === undefined ? "active" : validateStatus(device.status),
    bindings: device.bindings === undefined ? [] : validateBindings(device.bindings),
    groups: device.groups === undefined ? [] : validateGroups(device.groups),
    metadata: device.metadata === undefined ? {} : validateMetadata(device.metadata),
  };
}

export function normalizePatch(patch: DevicePatch): NormalizedPatch {
  if (typeof patch !== "object" || patch === null) return bad("patch must be an object");
  const { ifVersion } = patch;
  if (ifVersion !== undefined && !(Number.isSafeInteger(ifVersion) && ifVersion >= 1)) {
    return bad("ifVersion must be a positive integer");
  }
  return {
    ...(patch.status !== undefined && { status: validateStatus(patch.status) }),
    ...(patch.bindings !== undefined && { bindings: validateBindings(patch.bindings) }),
    ...(patch.groups !== undefined && { groups: validateGroups(patch.groups) }),
    ...(patch.metadata !== undefined && { metadata: validateMetadata(patch.metadata) }),
    ...(ifVersion !== undefined && { ifVersion }),
  };
}

export interface ImportFailure {
  readonly index: number;
  readonly id: string;
  readonly message: string;
}

/**
 * Validates a whole batch before anything is written: each device on its own, then ids and bindings
 * repeated inside the batch. Stores add the checks against rows that already exist.
 */
export function normalizeBatch(devices: readonly NewDevice[]): NormalizedBatch {
  const batch = new BatchNormalizer();
  devices.forEach((raw, index) => {
    batch.add(raw, index);
  });
  return batch.result();
}

export interface NormalizedBatch {
  devices: NormalizedDevice[];
  /** The batch index of each entry of `devices`. */
  indexes: number[];
  failures: ImportFailure[];
}

/**
 * Checks a batch one device at a time (so that a caller may yield between devices): each device on its
 * own, then its id and bindings against the devices before it in the batch.
 */
export class BatchNormalizer {
  readonly #out: NormalizedDevice[] = [];
  readonly #indexes: number[] = [];
  readonly #failures: ImportFailure[] = [];
  readonly #ids = new Map<string, number>();
  readonly #owners = new Map<string, number>();

  add(raw: NewDevice, index: number): void {
    const label = typeof raw?.id === "string" ? raw.id : "";
    let device: NormalizedDevice;
    try {
      device = normalizeNewDevice(raw);
    } catch (error) {
      this.#failures.push({ index, id: label, message: (error as Error).message });
      return;
    }
    const firstId = this.#ids.get(device.id);
    if (firstId !== undefined) {
      this.#failures.push({
        index,
        id: device.id,
        message: `id repeated in this batch (first at #${firstId})`,
      });
      return;
    }
    this.#ids.set(device.id, index);
    for (const binding of device.bindings) {
      const first = this.#owners.get(bindingKey(binding));
      if (first !== undefined) {
        this.#failures.push({
          index,
          id: device.id,
          message: `binding ${bindingKey(binding)} also given to #${first}`,
        });
        return;
      }
    }
    for (const binding of device.bindings) this.#owners.set(bindingKey(binding), index);
    this.#out.push(device);
    this.#indexes.push(index);
  }

  result(): NormalizedBatch {
    return { devices: this.#out, indexes: this.#indexes, failures: this.#failures };
  }
}

export const MAX_PAGE = 10_000;

/** Checks a list query; the binding filter is normalised like a stored binding. */
export function normalizeQuery(query: DeviceQuery): DeviceQuery {
  if (!(Number.isSafeInteger(query.limit) && query.limit >= 1 && query.limit <= MAX_PAGE)) {
    return bad(`limit must be an integer from 1 to ${MAX_PAGE}`);
  }
  if (query.idPrefix !== undefined && !(typeof query.idPrefix === "string" && query.idPrefix.length > 0)) {
    return bad("idPrefix must be a non-empty string");
  }
  if (query.idPrefix !== undefined && query.idPrefix.length > MAX_ID) {
    return bad(`idPrefix is at most ${MAX_ID} characters`);
  }
  return {
    limit: query.limit,
    ...(query.idPrefix !== undefined && { idPrefix: query.idPrefix }),
    ...(query.status !== undefined && { status: validateStatus(query.status) }),
    ...(query.group !== undefined && { group: String(query.group) }),
    ...(query.binding !== undefined && { binding: normalizeBinding(query.binding) }),
    ...(query.after !== undefined && { after: String(query.after) }),
  };
}

/**
 * The id range `[low, high)` holding exactly the ids that start with `prefix` in byte order (SQLite's BINARY
 * collation, PostgreSQL's "C"): `high` is the prefix with its last character's code point plus one. Bound as
 * parameters, never spliced into SQL or a LIKE pattern, so nothing needs escaping.
 */
export function prefixRange(prefix: string): { low: string; high: string } {
  const last = prefix.charCodeAt(prefix.length - 1);
  // In the BMP below the surrogates, UTF-8 byte order is code point order: the successor is exact.
  if (last < 0xd7ff) return { low: prefix, high: prefix.slice(0, -1) + String.fromCharCode(last + 1) };
  return { low: prefix, high: `${prefix}\u{10ffff}` };
}

/** Every status with its count (0 for those absent from `rows`). */
export function statusCounts(
  rows: readonly { status: string; n: number | string }[],
): Record<DeviceStatus, number> {
  const counts = Object.fromEntries(DEVICE_STATUSES.map((s) => [s, 0])) as Record<DeviceStatus, number>;
  for (const row of rows) {
    if ((DEVICE_STATUSES as readonly string[]).includes(row.status))
      counts[row.status as DeviceStatus] = Number(row.n);
  }
  return counts;
}
