// Registers the demo's device-001 in the device store at start: created when missing, its certificate
// bound when the demo PKI was regenerated. An operator's status (e.g. suspended) is left as it is.
import { readFileSync } from "node:fs";
import { parsePemBundle } from "../identity/certificate.ts";
import { type Binding, type Device, DeviceExistsError, type DeviceStore } from "../registry/types.ts";

export async function registerDemoDevice(
  store: DeviceStore,
  certFile: string,
  deviceId: string,
): Promise<Device> {
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
