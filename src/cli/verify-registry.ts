// `verify --config`: the registry step of a route with `registry: required|optional`, read-only. The device
// store the config names is looked up for the certificate's bindings (no migration, nothing written; a
// SQLite file that does not exist is not created) and judged as the gateway judges it: unknown_device,
// device_suspended/revoked/pending, group_not_allowed, or the device. When the store cannot be read, it
// says so plainly: a required registry then answers registry_unavailable, as a gateway without a cache would.
import { existsSync } from "node:fs";
import type { CompiledConfig } from "../config/compile.ts";
import type { ReasonCode } from "../identity/reasons.ts";
import type { AuthPolicy, DeviceIdentity } from "../identity/types.ts";
import type { Device, DeviceStore } from "../registry/types.ts";

export interface RegistryVerdict {
  /** Whether the store could be read. */
  readonly consulted: boolean;
  /** The line `verify` prints. */
  readonly line: string;
  readonly deny?: { readonly reason: ReasonCode; readonly detail: string };
  readonly deviceId?: string;
}

async function lookUp(store: DeviceStore, identity: DeviceIdentity): Promise<Device | undefined> {
  const { bindingsOf } = await import("../gateway/device-registry.ts");
  const bindings = bindingsOf(identity.leaf);
  if (store.findByAnyBinding) return store.findByAnyBinding(bindings);
  for (const binding of bindings) {
    const device = await store.findByBinding(binding);
    if (device) return device;
  }
  return undefined;
}

function judge(device: Device, policy: AuthPolicy): RegistryVerdict {
  if (device.status !== "active") {
    const reason: ReasonCode =
      device.status === "suspended"
        ? "device_suspended"
        : device.status === "revoked"
          ? "device_revoked"
          : "device_pending";
    const detail = `device "${device.id}" is ${device.status}`;
    return { consulted: true, line: `registry: ${detail}`, deny: { reason, detail }, deviceId: device.id };
  }
  if (policy.groups && !device.groups.some((g) => policy.groups?.includes(g))) {
    const detail = `device "${device.id}" is in none of the groups ${policy.groups.join(", ")}`;
    return {
      consulted: true,
      line: `registry: ${detail}`,
      deny: { reason: "group_not_allowed", detail },
      deviceId: device.id,
    };
  }
  const groups = device.groups.length > 0 ? `, groups ${device.groups.join(", ")}` : "";
  return {
    consulted: true,
    line: `registry: registered device "${device.id}" (active${groups})`,
    deviceId: device.id,
  };
}

/** The registry's say on an identity the engine accepted, for a route whose policy consults it. */
export async function consultRegistry(
  config: CompiledConfig,
  identity: DeviceIdentity,
  policy: AuthPolicy,
): Promise<RegistryVerdict> {
  const required = policy.registry === "required";
  const url = config.store.url;
  const sqlitePath = url.startsWith("sqlite:") ? url.slice("sqlite:".length) : undefined;
  const what = sqlitePath ? `SQLite registry ${sqlitePath}` : "PostgreSQL registry";
  const couldNot = (why: string): RegistryVerdict => {
    const line = `registry (${policy.registry}): could not consult the ${what}: ${why}`;
    if (!required) return { consulted: false, line: `${line}; an optional registry lets it pass` };
    return {
      consulted: false,
      line,
      deny: {
        reason: "registry_unavailable",
        detail: `the ${what} could not be read (${why}): the verdict depends on it`,
      },
    };
  };
  if (sqlitePath !== undefined && !existsSync(sqlitePath)) return couldNot("the file does not exist");
  let store: DeviceStore | undefined;
  let device: Device | undefined;
  try {
    const { openDeviceStore } = await import("../registry/open-store.ts");
    store = openDeviceStore(url);
    device = await lookUp(store, identity);
  } catch (err) {
    return couldNot((err as Error).message);
  } finally {
    await store?.close().catch(() => {});
  }
  if (device) return judge(device, policy);
  const trustStore = policy.trustStores.find((s) => s.name === identity.trustStore);
  if (trustStore && trustStore.autoRegister !== "off") {
    const status = trustStore.autoRegister;
    const line = `registry: not registered; the gateway would register it just in time as ${status}`;
    if (status === "active") return { consulted: true, line };
    return {
      consulted: true,
      line,
      deny: { reason: "device_pending", detail: "the device would be registered as pending" },
    };
  }
  const detail = `no device is registered for certificate ${identity.leaf.fingerprint}`;
  if (!required) return { consulted: true, line: `registry: ${detail}; an optional registry lets it pass` };
  return { consulted: true, line: `registry: ${detail}`, deny: { reason: "unknown_device", detail } };
}
