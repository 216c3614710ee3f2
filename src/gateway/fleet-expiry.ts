// The fleet's certificate expiry: which certificates the devices this node admitted recently present, and
// when they expire (fed from the request path, at most one map write per device every few seconds), plus
// the certificates enrollment issued (from the store). Read at scrape time by the fleet metrics and by
// GET /fleet/expiring, so that a mass expiry shows weeks ahead instead of as an outage.
import type { EnrollmentStore, IssuedCertificate } from "../registry/enrollment-types.ts";

export const DAY_MS = 86_400_000;

/** One device's certificate as this node saw it last. */
export interface SeenCertificate {
  readonly deviceId: string;
  /** ms since the epoch. */
  readonly notAfter: number;
  readonly seenAt: number;
  readonly fingerprint: string;
  readonly serial: string;
}

/** A device whose best known certificate expires within the asked window (GET /fleet/expiring). */
export interface ExpiringDevice {
  readonly deviceId: string;
  readonly notAfter: Date;
  /** Days left, rounded down (negative once expired). */
  readonly daysLeft: number;
  /** `seen`: presented to this node in the window; `enrolled`: issued through enrollment (the store). */
  readonly source: "seen" | "enrolled";
  readonly fingerprint: string;
  readonly serial: string;
}

export interface FleetExpiryOptions {
  /** Devices tracked at most; the least recently seen is dropped first. */
  readonly maxDevices?: number;
  /** A device counts while it was seen within this window. */
  readonly windowMs?: number;
  /** A device's entry is rewritten at most this often (when its certificate is unchanged). */
  readonly touchIntervalMs?: number;
}

export const FLEET_DEFAULTS = { maxDevices: 100_000, windowMs: DAY_MS, touchIntervalMs: 5_000 } as const;

export class FleetExpiry {
  readonly maxDevices: number;
  readonly windowMs: number;
  readonly touchIntervalMs: number;
  /** In order of last write (= seen order, give or take touchIntervalMs): the oldest first. */
  readonly #seen = new Map<string, SeenCertificate>();

  constructor(options: FleetExpiryOptions = {}) {
    this.maxDevices = options.maxDevices ?? FLEET_DEFAULTS.maxDevices;
    this.windowMs = options.windowMs ?? FLEET_DEFAULTS.windowMs;
    this.touchIntervalMs = options.touchIntervalMs ?? FLEET_DEFAULTS.touchIntervalMs;
  }

  get size(): number {
    return this.#seen.size;
  }

  /**
   * A device was admitted with this leaf. A no-op (one map read) when the same certificate was recorded
   * less than touchIntervalMs ago, so keep-alive traffic costs nothing more.
   */
  seen(
    deviceId: string,
    leaf: { readonly notAfter: Date; readonly fingerprint: string; readonly serialNumber: string },
    now: number,
  ): void {
    const known = this.#seen.get(deviceId);
    if (
      known !== undefined &&
      known.fingerprint === leaf.fingerprint &&
      now - known.seenAt < this.touchIntervalMs
    ) {
      return;
    }
    if (known !== undefined) this.#seen.delete(deviceId); // re-inserted last: the map stays in seen order
    this.#seen.set(deviceId, {
      deviceId,
      notAfter: leaf.notAfter.getTime(),
      seenAt: now,
      fingerprint: leaf.fingerprint,
      serial: leaf.serialNumber,
    });
    if (this.#seen.size > this.maxDevices) {
      const oldest = this.#seen.keys().next();
      if (!oldest.done) this.#seen.delete(oldest.value);
    }
  }

  /** The devices seen within the window, least recently seen first; older entries are dropped. */
  current(now: number): SeenCertificate[] {
    const since = now - this.windowMs;
    for (const [id, entry] of this.#seen) {
      if (entry.seenAt >= since) break;
      this.#seen.delete(id);
    }
    return [...this.#seen.values()];
  }
}

/** Whole days left, rounded down: 0 on the last day, negative once expired. */
export function daysLeft(notAfter: number, now: number): number {
  return Math.floor((notAfter - now) / DAY_MS);
}

const PAGE = 1000;

/**
 * Per device, the enrolled certificate that lasts longest among those still valid at `now` and not revoked:
 * a device that renewed is judged by its new certificate, not by the one it replaced.
 */
export async function enrolledCertificates(
  store: Pick<EnrollmentStore, "listIssuedCertificates">,
  now: number,
): Promise<Map<string, IssuedCertificate>> {
  const best = new Map<string, IssuedCertificate>();
  let after: string | undefined;
  do {
    const page = await store.listIssuedCertificates({ limit: PAGE, ...(after ? { after } : {}) });
    for (const c of page.certificates) {
      if (c.revokedAt !== undefined || c.notAfter.getTime() <= now || c.notBefore.getTime() > now) continue;
      const known = best.get(c.deviceId);
      if (!known || c.notAfter.getTime() > known.notAfter.getTime()) best.set(c.deviceId, c);
    }
    after = page.next;
  } while (after !== undefined);
  return best;
}

/**
 * The devices whose best known certificate (the later-expiring of the one seen and the one enrolled)
 * expires within `withinMs` of `now`, soonest first. A device seen with an old certificate that has since
 * renewed through enrollment is not listed.
 */
export function expiringDevices(
  seen: readonly SeenCertificate[],
  enrolled: ReadonlyMap<string, IssuedCertificate>,
  withinMs: number,
  now: number,
): ExpiringDevice[] {
  const best = new Map<string, ExpiringDevice>();
  const offer = (d: ExpiringDevice) => {
    const known = best.get(d.deviceId);
    if (!known || d.notAfter.getTime() > known.notAfter.getTime()) best.set(d.deviceId, d);
  };
  for (const s of seen) {
    offer({
      deviceId: s.deviceId,
      notAfter: new Date(s.notAfter),
      daysLeft: daysLeft(s.notAfter, now),
      source: "seen",
      fingerprint: s.fingerprint,
      serial: s.serial,
    });
  }
  for (const c of enrolled.values()) {
    offer({
      deviceId: c.deviceId,
      notAfter: c.notAfter,
      daysLeft: daysLeft(c.notAfter.getTime(), now),
      source: "enrolled",
      fingerprint: c.fingerprint,
      serial: c.serial,
    });
  }
  return [...best.values()]
    .filter((d) => d.notAfter.getTime() - now <= withinMs)
    .sort((a, b) => a.notAfter.getTime() - b.notAfter.getTime() || a.deviceId.localeCompare(b.deviceId));
}
