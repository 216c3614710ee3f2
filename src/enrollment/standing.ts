// The registry's side of an enrollment: whether the device may get a certificate now (or is created pending
// for an operator's approval), and which of its bindings the new certificate supersedes. A superseded
// certificate stays bound until it expires or the profile's overlap ends, whichever comes first; a name
// binding the renewed certificate matched (CN, URI, DNS, SPKI) is replaced by fingerprint bindings, so that
// the old certificate's end can be enforced.
import type { CompiledEnrollmentProfile } from "../config/compile-enrollment.ts";
import { bindingsOf } from "../gateway/device-registry.ts";
import type { RegistryStore } from "../registry/enrollment-types.ts";
import { type Binding, type Device, DeviceExistsError } from "../registry/types.ts";
import { bindingKey } from "../registry/validate.ts";
import type { Credential, Refusal } from "./est-credentials.ts";

export type Standing =
  /** Issue now; `device` is undefined when enrollment creates it. */
  | { readonly kind: "issue"; readonly device: Device | undefined }
  | { readonly kind: "pending" }
  | { readonly kind: "refused"; readonly refusal: Refusal };

export async function standingFor(
  store: RegistryStore,
  profile: CompiledEnrollmentProfile,
  credential: Credential,
  now: Date,
): Promise<Standing> {
  const { deviceId } = credential;
  const device = await store.get(deviceId);
  if (device?.status === "suspended" || device?.status === "revoked") {
    const reason = device.status === "suspended" ? "device_suspended" : "device_revoked";
    return {
      kind: "refused",
      refusal: { reason, detail: `device "${deviceId}" is ${device.status}`, deviceId },
    };
  }
  // A token is an operator's approval; a renewal comes from an active device (the registry checked it).
  if (credential.via !== "factory" || profile.approval === "auto") return { kind: "issue", device };
  if (device?.status === "active") return { kind: "issue", device };
  if (device === undefined) {
    try {
      await store.create({
        id: deviceId,
        status: "pending",
        groups: profile.groups,
        metadata: {
          enrollment: {
            profile: profile.name,
            factoryCertificate: credential.leaf.fingerprint,
            requestedAt: now.toISOString(),
          },
        },
      });
    } catch (err) {
      // Created meanwhile by a retry of the same device: pending either way, its status decides next time.
      if (!(err instanceof DeviceExistsError)) throw err;
    }
  }
  return { kind: "pending" };
}

export interface BindingChanges {
  readonly unbind: readonly Binding[];
  readonly retire: readonly { readonly binding: Binding; readonly at: Date }[];
}

/** The bindings an issuance removes now and retires later. */
export async function bindingChanges(
  store: RegistryStore,
  profile: CompiledEnrollmentProfile,
  credential: Credential,
  device: Device | undefined,
  now: Date,
): Promise<BindingChanges> {
  if (!device) return { unbind: [], retire: [] };
  const bound = new Set(device.bindings.map(bindingKey));
  const retireAt = (notAfter: Date) =>
    new Date(Math.min(notAfter.getTime(), now.getTime() + profile.overlapMs));
  const retire: { binding: Binding; at: Date }[] = [];
  let unbind: Binding[] = [];
  if (credential.via === "certificate") {
    const leaf = credential.leaf;
    const [fingerprint, ...names] = bindingsOf(leaf);
    unbind = names.filter((b) => bound.has(bindingKey(b)));
    if (fingerprint) retire.push({ binding: fingerprint, at: retireAt(leaf.notAfter) });
  }
  // The device's latest issued certificate is superseded too (a renewal retried from an older certificate, a
  // factory reset, a new token); older ones were retired when it was issued. A binding already retiring keeps
  // its earlier end (the store takes the earlier of the two).
  const { certificates } = await store.listIssuedCertificates({ deviceId: device.id, limit: 1000 });
  const latest = certificates
    .filter((c) => c.revokedAt === undefined && c.notAfter > now)
    .filter((c) => bound.has(bindingKey({ kind: "fingerprint", value: c.fingerprint })))
    .sort((a, b) => b.issuedAt.getTime() - a.issuedAt.getTime())[0];
  if (latest && !retire.some((r) => r.binding.value === latest.fingerprint)) {
    retire.push({
      binding: { kind: "fingerprint", value: latest.fingerprint },
      at: retireAt(latest.notAfter),
    });
  }
  return { unbind, retire };
}
