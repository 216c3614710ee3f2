// Test fake: an in-memory DeviceStore that keeps the interface's promises (input checks shared with the real
// stores, versions, keyset pagination, all-or-nothing import, one device per binding, change events, the
// store errors) so the admin API can be tested without a database. `available = false` simulates an outage.
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
  type DeviceStore,
  ImportRejectedError,
  type NewDevice,
  StoreConflictError,
  type StoreHealth,
  StoreUnavailableError,
} from "../../registry/types.ts";
import {
  bindingKey,
  type ImportFailure,
  type NormalizedDevice,
  normalizeBatch,
  normalizeNewDevice,
  normalizePatch,
  normalizeQuery,
  statusCounts,
} from "../../registry/validate.ts";

export class MemoryDeviceStore implements DeviceStore {
  readonly #devices = new Map<string, Device>();
  /** binding key → device id */
  readonly #byBinding = new Map<string, string>();
  readonly #listeners = new Set<(change: DeviceChange) => void>();
  #available = true;
  #since = new Date();

  get available(): boolean {
    return this.#available;
  }

  set available(value: boolean) {
    if (value !== this.#available) this.#since = new Date();
    this.#available = value;
  }

  #check(): void {
    if (!this.#available) throw new StoreUnavailableError("memory store switched off");
  }

  #emit(change: DeviceChange): void {
    for (const listener of this.#listeners) listener(change);
  }

  /** The device other than `id` that holds one of these bindings, with that binding. */
  #owned(id: string, bindings: readonly Binding[]): { binding: Binding; owner: string } | undefined {
    for (const binding of bindings) {
      const owner = this.#byBinding.get(bindingKey(binding));
      if (owner !== undefined && owner !== id) return { binding, owner };
    }
    return undefined;
  }

  #conflict(id: string, bindings: readonly Binding[]): void {
    const owned = this.#owned(id, bindings);
    if (owned) {
      throw new StoreConflictError(
        `binding ${bindingKey(owned.binding)} is already bound to device ${owned.owner}`,
      );
    }
  }

  #index(device: Device, previous: Device | undefined): void {
    for (const b of previous?.bindings ?? []) this.#byBinding.delete(bindingKey(b));
    for (const b of device.bindings) this.#byBinding.set(bindingKey(b), device.id);
    this.#devices.set(device.id, device);
  }

  #insert(input: NormalizedDevice, now: Date): void {
    const device: Device = { ...input, createdAt: now, updatedAt: now, lastSeenAt: undefined, version: 1 };
    this.#index(device, undefined);
    this.#emit({ id: device.id, kind: "created", bindings: device.bindings, status: device.status });
  }

  async migrate(): Promise<void> {}

  async findByBinding(binding: Binding): Promise<Device | undefined> {
    this.#check();
    const id = this.#byBinding.get(bindingKey(binding));
    return id === undefined ? undefined : this.#devices.get(id);
  }

  async get(id: string): Promise<Device | undefined> {
    this.#check();
    return this.#devices.get(id);
  }

  async list(query: DeviceQuery): Promise<DevicePage> {
    const q = normalizeQuery(query);
    this.#check();
    const bound = q.binding ? this.#byBinding.get(bindingKey(q.binding)) : undefined;
    const matches = [...this.#devices.values()]
      .filter(
        (d) =>
          (q.after === undefined || d.id > q.after) &&
          (q.idPrefix === undefined || d.id.startsWith(q.idPrefix)) &&
          (q.status === undefined || d.status === q.status) &&
          (q.group === undefined || d.groups.includes(q.group)) &&
          (q.binding === undefined || d.id === bound),
      )
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const devices = matches.slice(0, q.limit);
    return { devices, next: matches.length > q.limit ? devices.at(-1)?.id : undefined };
  }

  async countByStatus(): Promise<Record<DeviceStatus, number>> {
    this.#check();
    const counts = statusCounts([]);
    for (const device of this.#devices.values()) counts[device.status]++;
    return counts;
  }

  async create(input: NewDevice): Promise<Device> {
    const device = normalizeNewDevice(input);
    this.#check();
    if (this.#devices.has(device.id)) throw new DeviceExistsError(`device ${device.id} exists already`);
    this.#conflict(device.id, device.bindings);
    this.#insert(device, new Date());
    return this.#mustGet(device.id);
  }

  async update(id: string, input: DevicePatch): Promise<Device> {
    const patch = normalizePatch(input);
    this.#check();
    const current = this.#devices.get(id);
    if (!current) throw new DeviceNotFoundError(`device ${id} not found`);
    if (patch.ifVersion !== undefined && patch.ifVersion !== current.version) {
      throw new StoreConflictError(`device ${id} is at version ${current.version}, not ${patch.ifVersion}`);
    }
    if (patch.bindings) this.#conflict(id, patch.bindings);
    const device: Device = {
      ...current,
      status: patch.status ?? current.status,
      bindings: patch.bindings ?? current.bindings,
      groups: patch.groups ?? current.groups,
      metadata: patch.metadata ?? current.metadata,
      updatedAt: new Date(),
      version: current.version + 1,
    };
    this.#index(device, current);
    const bindings = [...current.bindings, ...device.bindings.filter((b) => !current.bindings.includes(b))];
    this.#emit({ id, kind: "updated", bindings, status: device.status });
    return device;
  }

  async delete(id: string): Promise<void> {
    this.#check();
    const current = this.#devices.get(id);
    if (!current) throw new DeviceNotFoundError(`device ${id} not found`);
    for (const b of current.bindings) this.#byBinding.delete(bindingKey(b));
    this.#devices.delete(id);
    this.#emit({ id, kind: "deleted", bindings: current.bindings });
  }

  async importDevices(input: readonly NewDevice[]): Promise<number> {
    const { devices, failures } = normalizeBatch(input);
    this.#check();
    // Every check before the first insert: a refused batch leaves the store untouched.
    const found: ImportFailure[] = [...failures];
    const indexOf = new Map(input.map((d, i) => [d.id, i] as const));
    for (const device of devices) {
      const index = indexOf.get(device.id) ?? -1;
      if (this.#devices.has(device.id))
        found.push({ index, id: device.id, message: "device exists already" });
      const owned = this.#owned(device.id, device.bindings);
      if (owned) {
        const message = `binding ${bindingKey(owned.binding)} is already bound to device ${owned.owner}`;
        found.push({ index, id: device.id, message });
      }
    }
    if (found.length > 0) throw new ImportRejectedError(found.sort((a, b) => a.index - b.index));
    const now = new Date();
    for (const device of devices) this.#insert(device, now);
    return devices.length;
  }

  async touch(lastSeen: ReadonlyMap<string, Date>): Promise<void> {
    this.#check();
    for (const [id, at] of lastSeen) {
      const current = this.#devices.get(id);
      if (current) this.#devices.set(id, { ...current, lastSeenAt: at });
    }
  }

  onChange(listener: (change: DeviceChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  health(): StoreHealth {
    return this.#available
      ? { kind: "sqlite", ok: true, since: this.#since }
      : { kind: "sqlite", ok: false, error: "memory store switched off", since: this.#since };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }

  #mustGet(id: string): Device {
    const device = this.#devices.get(id);
    if (!device) throw new DeviceNotFoundError(`device ${id} not found`);
    return device;
  }
}
