// The registry on the request path: maps a certificate the engine accepted to its device (through the
// DeviceCache), applies the route's registry policy (required / optional, groups), registers unknown
// devices just in time when their trust store says so, and closes the live connections of a device the
// moment it is suspended, revoked, deleted or unbound — on whichever node the change was made.
import type { Certificate } from "../identity/certificate.ts";
import type { AuthPolicy, DeviceIdentity } from "../identity/types.ts";
import { DeviceCache, type DeviceLookup, isStoreUnavailable } from "../registry/device-cache.ts";
import {
  type Binding,
  type Device,
  type DeviceChange,
  DeviceExistsError,
  type DeviceStore,
  StoreConflictError,
} from "../registry/types.ts";
import type { ConnectionState } from "../tls/connection-state.ts";
import type { RegistryGate, RegistryOutcome } from "./authorize.ts";
import type { Logger } from "./log.ts";
import type { GatewayMetrics } from "./metrics.ts";

const bindingsByLeaf = new WeakMap<Certificate, readonly Binding[]>();

/**
 * The bindings a certificate can be registered under, strongest first. Computed once per certificate
 * (parsed certificates are shared), since every request on a registry route asks for them.
 */
export function bindingsOf(leaf: Certificate): readonly Binding[] {
  let known = bindingsByLeaf.get(leaf);
  if (!known) {
    known = Object.freeze(computeBindings(leaf));
    bindingsByLeaf.set(leaf, known);
  }
  return known;
}

function computeBindings(leaf: Certificate): Binding[] {
  const out: Binding[] = [
    { kind: "fingerprint", value: leaf.fingerprint },
    { kind: "spki", value: leaf.spkiSha256 },
  ];
  for (const value of leaf.sanUris) out.push({ kind: "uri", value });
  for (const value of leaf.sanDns) out.push({ kind: "dns", value });
  if (leaf.commonName !== undefined) out.push({ kind: "cn", value: leaf.commonName });
  return out;
}

export interface DeviceRegistryOptions {
  readonly cacheMaxEntries: number;
  readonly cacheTtlMs: number;
  readonly outageGraceMs: number;
  readonly lastSeenIntervalMs: number;
  /** The live connections of this node, and how to close some of them. */
  readonly connections: () => Iterable<ConnectionState>;
  readonly closeConnections: (match: (state: ConnectionState) => boolean) => number;
  readonly logger: Logger;
  readonly metrics: GatewayMetrics;
}

const NEGATIVE_TTL_MS = 5_000;
const DENY = (
  reason: Extract<RegistryOutcome, { allow: false }>["reason"],
  detail: string,
): RegistryOutcome => ({
  allow: false,
  reason,
  detail,
});

export class DeviceRegistry implements RegistryGate {
  readonly store: DeviceStore;
  readonly #cache: DeviceCache;
  readonly #options: DeviceRegistryOptions;
  readonly #flushTimer: NodeJS.Timeout;
  readonly #unsubscribe: () => void;

  constructor(store: DeviceStore, options: DeviceRegistryOptions) {
    this.store = store;
    this.#options = options;
    this.#cache = new DeviceCache(store, {
      maxEntries: options.cacheMaxEntries,
      ttlMs: options.cacheTtlMs,
      negativeTtlMs: Math.min(NEGATIVE_TTL_MS, options.cacheTtlMs),
      outageGraceMs: options.outageGraceMs,
    });
    this.#flushTimer = setInterval(() => {
      this.#cache.flushSeen().catch((err: unknown) => options.logger.warn({ err }, "last-seen flush failed"));
    }, options.lastSeenIntervalMs);
    this.#flushTimer.unref();
    this.#unsubscribe = store.onChange((change) => this.#onChange(change));
  }

  check(identity: DeviceIdentity, policy: AuthPolicy, now: Date): RegistryOutcome | Promise<RegistryOutcome> {
    const found = this.#cache.lookup(bindingsOf(identity.leaf), now);
    const judge = (lookup: DeviceLookup) => this.#judge(lookup, identity, policy, now);
    return found instanceof Promise ? found.then(judge) : judge(found);
  }

  #judge(
    lookup: DeviceLookup,
    identity: DeviceIdentity,
    policy: AuthPolicy,
    now: Date,
  ): RegistryOutcome | Promise<RegistryOutcome> {
    const required = policy.registry === "required";
    if (isStoreUnavailable(lookup)) {
      this.#options.metrics.registryLookups.inc({ result: "error" });
      return required
        ? DENY("registry_unavailable", "the device store is unreachable and this device is not cached")
        : { allow: true, deviceId: identity.deviceId, groups: [] };
    }
    if (lookup === undefined) {
      this.#options.metrics.registryLookups.inc({ result: "miss" });
      const store = policy.trustStores.find((s) => s.name === identity.trustStore);
      if (store && store.autoRegister !== "off") return this.#register(identity, store.autoRegister, policy);
      return required
        ? DENY("unknown_device", `no device is registered for certificate ${identity.leaf.fingerprint}`)
        : { allow: true, deviceId: identity.deviceId, groups: [] };
    }
    this.#options.metrics.registryLookups.inc({ result: "hit" });
    return this.#admitDevice(lookup, policy, now);
  }

  #admitDevice(device: Device, policy: AuthPolicy, now: Date): RegistryOutcome {
    if (device.status !== "active") {
      const reason =
        device.status === "suspended"
          ? "device_suspended"
          : device.status === "revoked"
            ? "device_revoked"
            : "device_pending";
      return DENY(reason, `device "${device.id}" is ${device.status}`);
    }
    if (policy.groups && !device.groups.some((g) => policy.groups?.includes(g))) {
      return DENY(
        "group_not_allowed",
        `device "${device.id}" is in none of the groups ${policy.groups.join(", ")}`,
      );
    }
    this.#cache.markSeen(device.id, now);
    return { allow: true, deviceId: device.id, groups: device.groups };
  }

  /** Just-in-time registration: creates the device, never binds a certificate to an existing one. */
  async #register(
    identity: DeviceIdentity,
    status: "pending" | "active",
    policy: AuthPolicy,
  ): Promise<RegistryOutcome> {
    const { leaf } = identity;
    const id = identity.deviceId ?? leaf.commonName ?? `fp-${leaf.fingerprint.slice(0, 16)}`;
    const bindings: Binding[] = [{ kind: "fingerprint", value: leaf.fingerprint }];
    try {
      const device = await this.store.create({ id, status, bindings, metadata: { autoRegistered: true } });
      this.#options.logger.info(
        { deviceId: id, status, fingerprint: leaf.fingerprint },
        "device registered just in time",
      );
      return this.#admitDevice(device, policy, new Date());
    } catch (err) {
      if (err instanceof DeviceExistsError || err instanceof StoreConflictError) {
        // Another request (or node) registered it first, or the id belongs to another certificate.
        const again = await this.store.findByBinding(bindings[0] as Binding);
        if (again) return this.#admitDevice(again, policy, new Date());
        return DENY("unknown_device", `device id "${id}" is registered to another certificate`);
      }
      this.#options.logger.warn({ err, deviceId: id }, "just-in-time registration failed");
      return DENY("registry_unavailable", "the device could not be registered");
    }
  }

  /** Instant revocation: a change that makes a device unusable closes its connections on this node. */
  #onChange(change: DeviceChange): void {
    if (change.kind === "resync") {
      void this.#recheckAll();
      return;
    }
    if (change.kind === "deleted" || (change.status !== undefined && change.status !== "active")) {
      this.#close(change.id, `device ${change.kind === "deleted" ? "deleted" : change.status}`);
      return;
    }
    // Bindings may have changed: a connection whose certificate no longer maps to the device goes.
    void this.#recheck(change.id);
  }

  async #recheckAll(): Promise<void> {
    const ids = new Set<string>();
    for (const state of this.#options.connections())
      if (state.deviceId !== undefined) ids.add(state.deviceId);
    for (const id of ids) await this.#recheck(id);
  }

  async #recheck(id: string): Promise<void> {
    let device: Device | undefined;
    try {
      device = await this.store.get(id);
    } catch {
      return; // The store is unreachable: the cache's outage rules apply to the next request.
    }
    if (device?.status !== "active") {
      this.#close(id, device ? `device ${device.status}` : "device deleted");
      return;
    }
    const bound = new Set(device.bindings.map((b) => `${b.kind}:${b.value}`));
    const closed = this.#options.closeConnections(
      (state) =>
        state.deviceId === id &&
        !(
          state.identity.leaf &&
          bindingsOf(state.identity.leaf).some((b) => bound.has(`${b.kind}:${b.value}`))
        ),
    );
    if (closed > 0)
      this.#options.logger.info({ deviceId: id, closed }, "closed connections of an unbound certificate");
    const groups = [...device.groups].sort().join("\n");
    const regrouped = this.#options.closeConnections(
      (state) =>
        state.deviceId === id &&
        state.grantedGroups !== undefined &&
        [...state.grantedGroups].sort().join("\n") !== groups,
    );
    if (regrouped > 0) {
      this.#options.logger.info(
        { deviceId: id, closed: regrouped },
        "closed connections whose device groups changed",
      );
    }
  }

  #close(id: string, why: string): void {
    const closed = this.#options.closeConnections((state) => state.deviceId === id);
    if (closed > 0) this.#options.logger.info({ deviceId: id, closed, why }, "closed device connections");
  }

  async close(): Promise<void> {
    clearInterval(this.#flushTimer);
    this.#unsubscribe();
    this.#cache.close();
    await this.#cache.flushSeen().catch(() => {});
    await this.store.close();
  }
}
