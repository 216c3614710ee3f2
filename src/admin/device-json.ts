// What the admin API reads and writes for a device: request documents turned into store input (a PEM
// certificate becomes its fingerprint and SPKI bindings) and a stored device turned into its JSON.
import { CertificateParseError, parsePemBundle } from "../identity/certificate.ts";
import type { Binding, Device, NewDevice } from "../registry/types.ts";
import type { FieldError } from "./errors.ts";
import { dedupeBindings, MAX_BINDINGS, type NewDeviceInput } from "./validation.ts";

export interface DeviceJson {
  readonly id: string;
  readonly status: Device["status"];
  readonly bindings: readonly Binding[];
  readonly groups: readonly string[];
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly lastSeenAt: string | null;
  readonly version: number;
}

export function toDeviceJson(device: Device): DeviceJson {
  return {
    id: device.id,
    status: device.status,
    bindings: device.bindings,
    groups: device.groups,
    metadata: device.metadata,
    createdAt: device.createdAt.toISOString(),
    updatedAt: device.updatedAt.toISOString(),
    lastSeenAt: device.lastSeenAt ? device.lastSeenAt.toISOString() : null,
    version: device.version,
  };
}

/** The fingerprint and SPKI bindings of a PEM's first certificate (the leaf, when a chain is given). */
export function certificateBindings(pem: string): Binding[] | string {
  try {
    const [leaf] = parsePemBundle(pem);
    if (!leaf) return "expected a PEM certificate (-----BEGIN CERTIFICATE-----)";
    return [
      { kind: "fingerprint", value: leaf.fingerprint },
      { kind: "spki", value: leaf.spkiSha256 },
    ];
  } catch (err) {
    if (err instanceof CertificateParseError) return err.message;
    throw err;
  }
}

/**
 * Store input for a validated document; field errors (with `prefix` before their path, e.g. an import
 * line) when the certificate cannot be read. Absent fields get the API's documented defaults here, so the
 * answer does not depend on the store's.
 */
export function toNewDevice(input: NewDeviceInput): NewDevice | FieldError[] {
  let bindings = input.bindings ?? [];
  if (input.certificate !== undefined) {
    const fromCert = certificateBindings(input.certificate);
    if (typeof fromCert === "string") return [{ path: "certificate", message: fromCert }];
    bindings = dedupeBindings([...bindings, ...fromCert]);
    if (bindings.length > MAX_BINDINGS) {
      return [{ path: "bindings", message: `at most ${MAX_BINDINGS} bindings, certificate included` }];
    }
  }
  return {
    id: input.id,
    status: input.status ?? "active",
    bindings,
    groups: input.groups ?? [],
    metadata: input.metadata ?? {},
  };
}
