// The engine-neutral rules of an issuance: which bindings the device ends up with, and why a token is refused.

import { type EnrollmentToken, TokenUnusableError } from "./enrollment-types.ts";
import type { NormalizedIssuance } from "./enrollment-validate.ts";
import type { Binding, DeviceChange } from "./types.ts";
import { bindingKey } from "./validate.ts";

/** What an enrollment write returns: its result, and the device changes to record and announce. */
export interface Written<T> {
  readonly result: T;
  readonly changes: readonly DeviceChange[];
}

/** A binding row as stored, with its retirement time (undefined: bound until changed). */
export interface StoredBinding extends Binding {
  readonly retireAt: Date | undefined;
}

/** The binding a certificate is known by. */
export function fingerprintBinding(fingerprint: string): Binding {
  return { kind: "fingerprint", value: fingerprint };
}

/** The bindings the issuance gives the device: each must be free or the device's own already. */
export function claimedBindings(issuance: NormalizedIssuance): Binding[] {
  return [fingerprintBinding(issuance.certificate.fingerprint), ...issuance.retire.map((r) => r.binding)];
}

/** The earlier of two retirement times (a binding already retiring never gets a later end). */
function earlier(a: Date | undefined, b: Date | undefined): Date | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a.getTime() <= b.getTime() ? a : b;
}

/**
 * The device's bindings after the issuance, in position order: `unbind` removed, `retire` given their time
 * (added when missing; one already retiring keeps the earlier time), the new fingerprint bound for good (and
 * no longer retiring, if it was).
 */
export function bindingsAfter(
  current: readonly StoredBinding[],
  issuance: NormalizedIssuance,
): StoredBinding[] {
  const removed = new Set(issuance.unbind.map(bindingKey));
  const retiring = new Map(issuance.retire.map((r) => [bindingKey(r.binding), r] as const));
  const fresh = fingerprintBinding(issuance.certificate.fingerprint);
  const after: StoredBinding[] = [];
  const kept = new Set<string>();
  for (const b of current) {
    const key = bindingKey(b);
    if (removed.has(key)) continue;
    kept.add(key);
    const retireAt = key === bindingKey(fresh) ? undefined : earlier(b.retireAt, retiring.get(key)?.at);
    after.push({ kind: b.kind, value: b.value, retireAt });
  }
  if (!kept.has(bindingKey(fresh))) after.push({ ...fresh, retireAt: undefined });
  for (const r of issuance.retire) {
    if (!kept.has(bindingKey(r.binding))) after.push({ ...r.binding, retireAt: r.at });
  }
  return after;
}

/** Why the token could not be spent for this certificate at `now` (the conditional update matched no row). */
export function tokenRefusal(
  id: string,
  token: EnrollmentToken | undefined,
  certificate: { readonly deviceId: string; readonly profile: string },
  now: Date,
): TokenUnusableError {
  const [kind, why]: [TokenUnusableError["why"], string] =
    token === undefined
      ? ["unknown", "is unknown"]
      : token.revokedAt !== undefined
        ? ["revoked", `was revoked at ${token.revokedAt.toISOString()}`]
        : token.usedAt !== undefined
          ? ["used", `was used already at ${token.usedAt.toISOString()}`]
          : token.expiresAt.getTime() <= now.getTime()
            ? ["expired", `expired at ${token.expiresAt.toISOString()}`]
            : token.deviceId !== certificate.deviceId
              ? ["mismatch", `is for device ${token.deviceId}, not ${certificate.deviceId}`]
              : token.profile !== certificate.profile
                ? ["mismatch", `is for profile ${token.profile}, not ${certificate.profile}`]
                : ["mismatch", "cannot be spent"];
  return new TokenUnusableError(`enrollment token ${id} ${why}`, kind);
}
