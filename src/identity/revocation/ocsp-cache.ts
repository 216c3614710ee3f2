// OCSP answers and recent lookup failures per (issuer, serial), each kept until it expires; bounded in size.
import type { Certificate } from "../certificate.ts";
import { certificateLabel } from "../describe.ts";
import { canonicalSerial } from "./der.ts";
import type { OcspAnswer } from "./ocsp-response.ts";
import type { RevocationStatus } from "./types.ts";

export type OcspEntry =
  | { readonly kind: "answer"; readonly answer: OcspAnswer; readonly expiresAt: Date }
  /** A failed lookup, remembered so that a dead responder is not asked again on every request. */
  | { readonly kind: "failure"; readonly detail: string; readonly expiresAt: Date };

const DEFAULT_MAX_ENTRIES = 100_000;

const keyOf = (cert: Certificate, issuer: Certificate) =>
  `${issuer.fingerprint}:${canonicalSerial(cert.serialNumber)}`;

/** What the view shows for an entry: two entries that show the same need no re-decision. */
function visible(entry: OcspEntry | undefined): string {
  if (entry === undefined || entry.kind === "failure") return "none";
  const { answer } = entry;
  return `${answer.status}:${answer.revokedAt?.getTime() ?? ""}`;
}

export class OcspCache {
  readonly #entries = new Map<string, OcspEntry>();
  readonly #maxEntries: number;

  constructor(maxEntries = DEFAULT_MAX_ENTRIES) {
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry for `cert` still current at `now`. */
  get(cert: Certificate, issuer: Certificate, now: Date): OcspEntry | undefined {
    const entry = this.#entries.get(keyOf(cert, issuer));
    return entry !== undefined && entry.expiresAt.getTime() > now.getTime() ? entry : undefined;
  }

  /** Stores an entry; true when what the view reports for `cert` changed. */
  set(cert: Certificate, issuer: Certificate, entry: OcspEntry, now: Date): boolean {
    const key = keyOf(cert, issuer);
    const before = visible(this.get(cert, issuer, now));
    this.#entries.delete(key); // re-insert: Map order is the eviction order, oldest first
    this.#entries.set(key, entry);
    if (this.#entries.size > this.#maxEntries) this.prune(now);
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    return before !== visible(entry);
  }

  /** Drops expired entries; true when one of them was an answer (the view changed). */
  prune(now: Date): boolean {
    let changed = false;
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt.getTime() > now.getTime()) continue;
      this.#entries.delete(key);
      if (entry.kind === "answer") changed = true;
    }
    return changed;
  }

  /** The earliest expiry of a current answer: when a "good" turns into "unknown". */
  nextExpiry(now: Date): Date | undefined {
    let earliest: Date | undefined;
    for (const entry of this.#entries.values()) {
      if (entry.kind !== "answer" || entry.expiresAt.getTime() <= now.getTime()) continue;
      if (earliest === undefined || entry.expiresAt < earliest) earliest = entry.expiresAt;
    }
    return earliest;
  }

  /** What OCSP says about `cert` at `now`: undefined when nothing was asked yet. */
  status(cert: Certificate, issuer: Certificate, now: Date): RevocationStatus | undefined {
    const entry = this.get(cert, issuer, now);
    if (entry === undefined) return undefined;
    if (entry.kind === "failure") return { status: "unknown", detail: `OCSP: ${entry.detail}` };
    const { answer } = entry;
    switch (answer.status) {
      case "good":
        return { status: "good", source: "ocsp" };
      case "revoked":
        return {
          status: "revoked",
          source: "ocsp",
          revokedAt: answer.revokedAt ?? answer.thisUpdate,
          ...(answer.reason ? { reason: answer.reason } : {}),
        };
      default:
        return {
          status: "unknown",
          detail: `OCSP: ${answer.signer} answered "unknown" for certificate ${certificateLabel(cert)}`,
        };
    }
  }
}
