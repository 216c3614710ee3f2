// The device registry's data model and the one store interface that SQLite and PostgreSQL implement.
// Pure types: no I/O here.

export const DEVICE_STATUSES = ["active", "suspended", "revoked", "pending"] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

/** How a certificate maps to a device. A device may hold several bindings (e.g. during rotation). */
export const BINDING_KINDS = ["fingerprint", "spki", "cn", "uri", "dns"] as const;
export type BindingKind = (typeof BINDING_KINDS)[number];

export interface Binding {
  readonly kind: BindingKind;
  /**
   * fingerprint: SHA-256 of the certificate DER, lower-case hex without colons; spki: SHA-256 of the
   * SubjectPublicKeyInfo, base64; cn: subject common name; uri / dns: a SAN value, exact.
   */
  readonly value: string;
}

export interface Device {
  readonly id: string;
  readonly status: DeviceStatus;
  readonly bindings: readonly Binding[];
  readonly groups: readonly string[];
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly lastSeenAt: Date | undefined;
  /** Increases on every change; used for optimistic concurrency (`ifVersion`). */
  readonly version: number;
}

export interface NewDevice {
  readonly id: string;
  readonly status?: DeviceStatus;
  readonly bindings?: readonly Binding[];
  readonly groups?: readonly string[];
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export interface DevicePatch {
  readonly status?: DeviceStatus;
  /** Replaces every binding. */
  readonly bindings?: readonly Binding[];
  readonly groups?: readonly string[];
  readonly metadata?: Readonly<Record<string, unknown>>;
  /** Apply only if the device is still at this version (else StoreConflictError). */
  readonly ifVersion?: number;
}

export interface DeviceQuery {
  /** Only devices whose id starts with this (a range on the primary key: index-friendly). */
  readonly idPrefix?: string;
  readonly status?: DeviceStatus;
  readonly group?: string;
  readonly binding?: Binding;
  /** Keyset pagination: devices with id > after, in id order. */
  readonly after?: string;
  readonly limit: number;
}

export interface DevicePage {
  readonly devices: readonly Device[];
  /** Pass as `after` for the next page; undefined on the last page. */
  readonly next: string | undefined;
}

/**
 * A change of one device, as announced to every gateway node (LISTEN/NOTIFY on PostgreSQL).
 *
 * `kind: "resync"` is not a change of one device: it says this node may have missed changes (the
 * LISTEN connection came back after a drop, a bulk import, or a poller fell behind). Then `id` is ""
 * and `bindings` is empty; caches flush everything and live connections should be re-checked.
 */
export interface DeviceChange {
  readonly id: string;
  readonly kind: "created" | "updated" | "deleted" | "resync";
  /** The device's bindings before and after, so caches can drop every key the change touches. */
  readonly bindings: readonly Binding[];
  /** The device's status after the change; undefined when deleted (and on resync). */
  readonly status?: DeviceStatus;
}

/** Where an import stands, reported by importDevices as it goes. */
export interface ImportProgress {
  /** Devices of the batch checked against the store and written so far (visible only once all are). */
  readonly written: number;
  /** Devices in the batch. */
  readonly total: number;
}

export interface ImportOptions {
  /** Called as chunks are written, and once with `written === total` after the commit. */
  readonly onProgress?: (progress: ImportProgress) => void;
}

export interface ImportResult {
  readonly imported: number;
  readonly errors: readonly { readonly line: number; readonly message: string }[];
}

export interface StoreHealth {
  readonly kind: "sqlite" | "postgres";
  readonly ok: boolean;
  readonly error?: string;
  readonly since: Date;
}

/** Errors a store throws for the admin API to map to 404 / 409. */
export class DeviceNotFoundError extends Error {
  override name = "DeviceNotFoundError";
}
export class DeviceExistsError extends Error {
  override name = "DeviceExistsError";
}
export class StoreConflictError extends Error {
  override name = "StoreConflictError";
}
/** The input is not a valid device, patch or binding (the admin API answers 400). */
export class InvalidDeviceError extends Error {
  override name = "InvalidDeviceError";
}
/** importDevices refused the whole batch; `failures` names every device that failed, by index in the batch. */
export class ImportRejectedError extends Error {
  override name = "ImportRejectedError";
  readonly failures: readonly { readonly index: number; readonly id: string; readonly message: string }[];
  constructor(
    failures: readonly { readonly index: number; readonly id: string; readonly message: string }[],
  ) {
    super(
      `import rejected, nothing imported: ${failures.length} invalid device(s), first #${failures[0]?.index} ${failures[0]?.id}: ${failures[0]?.message}`,
    );
    this.failures = failures;
  }
}
/** The store cannot be reached right now. */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
}

export interface DeviceStore {
  /** Runs the versioned migrations (idempotent); called once at start. */
  migrate(): Promise<void>;
  findByBinding(binding: Binding): Promise<Device | undefined>;
  /**
   * The device owning the first of these bindings (in the given order) that is bound at all, in one
   * indexed query. Optional: DeviceCache falls back to findByBinding per binding when absent.
   */
  findByAnyBinding?(bindings: readonly Binding[]): Promise<Device | undefined>;
  get(id: string): Promise<Device | undefined>;
  list(query: DeviceQuery): Promise<DevicePage>;
  /** How many devices have each status (every status present, 0 when none), in one indexed query. */
  countByStatus(): Promise<Record<DeviceStatus, number>>;
  create(device: NewDevice): Promise<Device>;
  update(id: string, patch: DevicePatch): Promise<Device>;
  delete(id: string): Promise<void>;
  /**
   * All or nothing: when any device is invalid or exists already, nothing is imported and
   * ImportRejectedError lists every failing device. However large the batch, the event loop is never held
   * for more than a few milliseconds (bounded chunks, or another thread): lookups go on during an import and
   * see none of it before it is committed; the store's other writes wait for it or are refused cleanly.
   */
  importDevices(devices: readonly NewDevice[], options?: ImportOptions): Promise<number>;
  /** Batched last-seen times (never one write per request). */
  touch(lastSeen: ReadonlyMap<string, Date>): Promise<void>;
  /** Subscribes to changes made by any node (this one included); returns an unsubscribe function. */
  onChange(listener: (change: DeviceChange) => void): () => void;
  health(): StoreHealth;
  close(): Promise<void>;
}
