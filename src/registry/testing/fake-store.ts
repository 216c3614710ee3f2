// An in-memory DeviceStore for cache tests: counts queries, can hold them back, and can be "down".
import { ChangeHub } from "../change-hub.ts";
import {
  type Binding,
  type Device,
  type DeviceChange,
  type DevicePage,
  type DeviceStatus,
  type DeviceStore,
  type NewDevice,
  type StoreHealth,
  StoreUnavailableError,
} from "../types.ts";
import { bindingKey, statusCounts } from "../validate.ts";

export class FakeStore implements DeviceStore {
  readonly devices = new Map<string, Device>();
  readonly hub = new ChangeHub();
  readonly touches: Map<string, Date>[] = [];
  queries = 0;
  down = false;
  /** When set, queries wait for it before answering (to hold a miss in flight). */
  gate: Promise<void> | undefined;

  put(device: NewDevice & { readonly bindings: readonly Binding[] }): Device {
    const full: Device = {
      status: "active",
      groups: [],
      metadata: {},
      createdAt: new Date(0),
      updatedAt: new Date(0),
      lastSeenAt: undefined,
      version: 1,
      ...device,
    };
    const previous = this.devices.get(device.id);
    this.devices.set(device.id, full);
    const change: DeviceChange = {
      id: device.id,
      kind: previous === undefined ? "created" : "updated",
      bindings: [...(previous?.bindings ?? []), ...full.bindings],
      status: full.status,
    };
    this.hub.emit(change);
    return full;
  }

  async migrate(): Promise<void> {}

  async findByBinding(binding: Binding): Promise<Device | undefined> {
    return this.findByAnyBinding([binding]);
  }

  async findByAnyBinding(bindings: readonly Binding[]): Promise<Device | undefined> {
    this.queries++;
    await this.gate;
    if (this.down) throw new StoreUnavailableError("fake store is down");
    for (const key of bindings.map(bindingKey)) {
      for (const device of this.devices.values()) {
        if (device.bindings.some((b) => bindingKey(b) === key)) return device;
      }
    }
    return undefined;
  }

  async get(id: string): Promise<Device | undefined> {
    return this.devices.get(id);
  }
  async list(): Promise<DevicePage> {
    return { devices: [...this.devices.values()], next: undefined };
  }
  async countByStatus(): Promise<Record<DeviceStatus, number>> {
    const counts = statusCounts([]);
    for (const device of this.devices.values()) counts[device.status]++;
    return counts;
  }
  async create(): Promise<Device> {
    throw new Error("not used");
  }
  async update(): Promise<Device> {
    throw new Error("not used");
  }
  async delete(id: string): Promise<void> {
    const device = this.devices.get(id);
    this.devices.delete(id);
    this.hub.emit({ id, kind: "deleted", bindings: device?.bindings ?? [] });
  }
  async importDevices(): Promise<number> {
    return 0;
  }
  async touch(lastSeen: ReadonlyMap<string, Date>): Promise<void> {
    if (this.down) throw new StoreUnavailableError("fake store is down");
    this.touches.push(new Map(lastSeen));
  }
  onChange(listener: (change: DeviceChange) => void): () => void {
    return this.hub.subscribe(listener);
  }
  health(): StoreHealth {
    return { kind: "sqlite", ok: !this.down, since: new Date(0) };
  }
  async close(): Promise<void> {}
}
