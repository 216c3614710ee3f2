// Registers the demo's device-001 in the device store at start: created when missing, its certificate
// bound when the demo PKI was regenerated. An operator's status (e.g. suspended) is left as it is.
import { readFileSync } from "node:fs";
import type { Gateway } from "../gateway/gateway.ts";
import { parsePemBundle } from "../identity/certificate.ts";
import { type Binding, type Device, DeviceExistsError } from "../registry/types.ts";

export async function registerDemoDevice(
  gateway: Gateway,
  certFile: string,
  deviceId: string,
): Promise<Device> {
  const store = gateway.registry?.store;
  if (!store) throw new Error("the gateway has no device store");
  const [leaf] = parsePemBundle(readFileSync(certFile, "utf8"));
  if (!leaf) throw new Error(`${certFile}: no certificate`);
  const binding: Binding = { kind: "fingerprint", value: leaf.fingerprint };
  const existing = await store.get(deviceId);
  if (!existing) {
    try {
      return await store.create({ id: deviceId, status: "active", bindings: [binding], groups: ["demo"] });
    } catch (err) {
      if (!(err instanceof DeviceExistsError)) throw err;
      // Another demo gateway on the same store registered it first.
      return (await store.get(deviceId)) ?? Promise.reject(err);
    }
  }
  if (existing.bindings.some((b) => b.kind === binding.kind && b.value === binding.value)) return existing;
  return store.update(deviceId, {
    bindings: [...existing.bindings.filter((b) => b.kind !== "fingerprint"), binding],
  });
}
