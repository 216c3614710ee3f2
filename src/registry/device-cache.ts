// The request path's view of the registry: an LRU of binding → device with TTLs, change invalidation and outage grace.
//
// lookup() answers synchronously on a hit (no Promise is allocated) and with a Promise on a miss, which
// costs one store query per candidate set however many requests wait for it. Answers:
//   Device             — the device owning the highest-priority candidate binding that is bound;
//   undefined          — no candidate is bound: an unknown device (cached for negativeTtlMs);
//   STORE_UNAVAILABLE  — the store could not answer and nothing usable was cached: fail closed.
// The Promise never rejects: a store error becomes STORE_UNAVAILABLE, or, for a device whose entry
// expired less than outageGraceMs ago, that cached device. After a failure the store is not asked
// again for outageRetryMs, so an outage costs no connect timeout per request; those answers are sync.
// Every change from store.onChange drops the keys of its bindings and of its device; a resync (or any
// change) also discards answers of queries still in flight, which may predate it.
import type { Binding, Device, DeviceChange, DeviceStore } from "./types.ts";
import { bindingKey } from "./validate.ts";

export interface StoreUnavailable {
  readonly error: "store_unavailable";
}
export const STORE_UNAVAILABLE: StoreUnavailable = Object.freeze({ error: "store_unavailable" });

export type DeviceLookup = Device | undefined | StoreUnavailable;

export function isStoreUnavailable(result: DeviceLookup): result is StoreUnavailable {
  return result === STORE_UNAVAILABLE;
}

export interface DeviceCacheOptions {
  readonly maxEntries: number;
  readonly ttlMs: number;
  readonly negativeTtlMs: number;
  readonly outageGraceMs: number;
  /** After a failed query, answer from cache only for this long before asking the store again. */
  readonly outageRetryMs?: number;
}

export interface DeviceCacheStats {
  hits: number;
  negativeHits: number;
  misses: number;
  storeQueries: number;
  servedInOutage: number;
  unavailable: number;
}

interface Entry {
  readonly key: string;
  readonly device: Device | undefined;
  readonly expires: number;
}

const ms = (now: Date | number): number => (typeof now === "number" ? now : now.getTime());

export class DeviceCache {
  readonly #store: DeviceStore;
  readonly #options: Required<DeviceCacheOptions>;
  readonly #entries = new Map<string, Entry>();
  /** Keys of positive entries per device id, so a change can drop them all. */
  readonly #byDevice = new Map<string, Set<string>>();
  readonly #inflight = new Map<string, Promise<DeviceLookup>>();
  readonly #unsubscribe: () => void;
  #epoch = 0;
  /** The last store query failed: lookups answer from grace while one probe at a time checks the store. */
  #failing = false;
  #retryAt = 0;
  #probe: Promise<void> | undefined;
  #seen = new Map<string, number>();
  #flushing: Promise<void> | undefined;
  readonly stats: DeviceCacheStats = {
    hits: 0,
    negativeHits: 0,
    misses: 0,
    storeQueries: 0,
    servedInOutage: 0,
    unavailable: 0,
  };

  constructor(store: DeviceStore, options: DeviceCacheOptions) {
    if (!(Number.isInteger(options.maxEntries) && options.maxEntries > 0)) {
      throw new RangeError(`maxEntries must be a positive integer, got ${options.maxEntries}`);
    }
    for (const name of ["ttlMs", "negativeTtlMs", "outageGraceMs"] as const) {
      if (!(options[name] >= 0)) throw new RangeError(`${name} must be >= 0, got ${options[name]}`);
    }
    this.#store = store;
    this.#options = { outageRetryMs: 1000, ...options };
    this.#unsubscribe = store.onChange((change) => this.invalidate(change));
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Candidate bindings of one certificate in priority order: fingerprint, spki, uri, dns, cn. */
  lookup(bindings: readonly Binding[], now: Date | number): DeviceLookup | Promise<DeviceLookup> {
    const t = ms(now);
    let complete = true;
    for (const binding of bindings) {
      const key = bindingKey(binding);
      const entry = this.#entries.get(key);
      if (entry === undefined || t >= entry.expires) {
        complete = false;
        break;
      }
      if (entry.device !== undefined) {
        this.#entries.delete(key);
        this.#entries.set(key, entry);
        this.stats.hits++;
        return entry.device;
      }
    }
    if (complete) {
      this.stats.negativeHits++;
      return undefined;
    }
    this.stats.misses++;
    const keys = bindings.map(bindingKey);
    if (this.#failing) {
      // The store failed last time: answer at once (grace or fail closed) and let one background query at
      // a time find out whether it is back, rather than make every request wait out a timeout.
      if (t >= this.#retryAt && this.#probe === undefined) {
        this.#probe = this.#flight(bindings, keys, t).then(() => {
          this.#probe = undefined;
        });
      }
      return this.#fromGrace(keys, t);
    }
    return this.#flight(bindings, keys, t);
  }

  /** One store query for these bindings (concurrent lookups of the same ones share it). */
  #flight(bindings: readonly Binding[], keys: readonly string[], t: number): Promise<DeviceLookup> {
    const flightKey = keys.join("\n");
    const pending = this.#inflight.get(flightKey);
    if (pending !== undefined) return pending;
    const epoch = this.#epoch;
    const started = performance.now();
    this.stats.storeQueries++;
    const done = (): void => {
      if (this.#inflight.get(flightKey) === flight) this.#inflight.delete(flightKey);
    };
    const flight: Promise<DeviceLookup> = this.#query(bindings).then(
      (device) => {
        done();
        this.#failing = false;
        // An invalidation during the query may mean this answer is already stale: use it, don't keep it.
        if (epoch === this.#epoch) this.#remember(keys, device, t);
        return device;
      },
      () => {
        done();
        this.#failing = true;
        // Counted from when the failure is known (on the caller's clock): a query may take a whole timeout.
        this.#retryAt = t + (performance.now() - started) + this.#options.outageRetryMs;
        return this.#fromGrace(keys, t);
      },
    );
    this.#inflight.set(flightKey, flight);
    return flight;
  }

  /** Drops what a change touched; on resync, everything. Subscribed to the store; public for tests. */
  invalidate(change: DeviceChange): void {
    this.#epoch++;
    this.#inflight.clear();
    // A change notification came through, so the store is reachable: ask it again at once.
    this.#failing = false;
    if (change.kind === "resync") {
      this.#entries.clear();
      this.#byDevice.clear();
      return;
    }
    for (const binding of change.bindings) this.#delete(bindingKey(binding));
    for (const key of [...(this.#byDevice.get(change.id) ?? [])]) this.#delete(key);
  }

  clear(): void {
    this.invalidate({ id: "", kind: "resync", bindings: [] });
  }

  /** Notes that a device was seen; flushSeen() writes all of them in one store.touch. */
  markSeen(deviceId: string, now: Date | number): void {
    const t = ms(now);
    const previous = this.#seen.get(deviceId);
    if (previous === undefined || t > previous) this.#seen.set(deviceId, t);
  }

  /** Writes the collected last-seen times; on failure they are kept for the next flush and the error is thrown. */
  flushSeen(): Promise<void> {
    if (this.#flushing !== undefined) return this.#flushing;
    if (this.#seen.size === 0) return Promise.resolve();
    const batch = this.#seen;
    this.#seen = new Map();
    const dates = new Map([...batch].map(([id, t]) => [id, new Date(t)] as const));
    this.#flushing = this.#store.touch(dates).then(
      () => {
        this.#flushing = undefined;
      },
      (error: unknown) => {
        this.#flushing = undefined;
        for (const [id, t] of batch) this.markSeen(id, t);
        throw error;
      },
    );
    return this.#flushing;
  }

  close(): void {
    this.#unsubscribe();
  }

  async #query(bindings: readonly Binding[]): Promise<Device | undefined> {
    if (this.#store.findByAnyBinding !== undefined) return this.#store.findByAnyBinding(bindings);
    for (const binding of bindings) {
      const device = await this.#store.findByBinding(binding);
      if (device !== undefined) return device;
    }
    return undefined;
  }

  /** During an outage: a device whose entry expired less than outageGraceMs ago, else fail closed. */
  #fromGrace(keys: readonly string[], t: number): DeviceLookup {
    for (const key of keys) {
      const entry = this.#entries.get(key);
      if (entry?.device !== undefined && t - entry.expires < this.#options.outageGraceMs) {
        this.stats.servedInOutage++;
        return entry.device;
      }
    }
    this.stats.unavailable++;
    return STORE_UNAVAILABLE;
  }

  #remember(keys: readonly string[], device: Device | undefined, t: number): void {
    const own = new Set(device?.bindings.map(bindingKey));
    let matched = false;
    for (const key of keys) {
      if (own.has(key)) {
        matched = true;
        this.#set({ key, device, expires: t + this.#options.ttlMs });
      } else if (!matched) {
        // Candidates before the one that matched are known to be unbound. When a device did match, they
        // are part of that answer and live as long (a change to any of them invalidates them anyway);
        // otherwise this is an unknown certificate, re-asked after the short negative TTL.
        const ttl = device === undefined ? this.#options.negativeTtlMs : this.#options.ttlMs;
        this.#set({ key, device: undefined, expires: t + ttl });
      }
    }
  }

  #set(entry: Entry): void {
    this.#delete(entry.key);
    this.#entries.set(entry.key, entry);
    if (entry.device !== undefined) {
      let keys = this.#byDevice.get(entry.device.id);
      if (keys === undefined) {
        keys = new Set();
        this.#byDevice.set(entry.device.id, keys);
      }
      keys.add(entry.key);
    }
    while (this.#entries.size > this.#options.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#delete(oldest.value);
    }
  }

  #delete(key: string): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    this.#entries.delete(key);
    if (entry.device === undefined) return;
    const keys = this.#byDevice.get(entry.device.id);
    keys?.delete(key);
    if (keys?.size === 0) this.#byDevice.delete(entry.device.id);
  }
}
