// The revocation rule of a trust store applied to a validated path: modes off/soft/strict, scopes leaf/chain.
import type { Certificate } from "../certificate.ts";
import { certificateLabel } from "../describe.ts";
import type { TrustStore } from "../types.ts";
import type { RevocationView } from "./types.ts";

export type RevocationCheck =
  | {
      readonly ok: true;
      /** Unknown statuses that soft mode let through: to be logged and counted. */
      readonly softFailures: readonly string[];
    }
  | {
      readonly ok: false;
      readonly reason: "certificate_revoked" | "revocation_unknown";
      readonly detail: string;
    };

const PASS: RevocationCheck = Object.freeze({ ok: true, softFailures: Object.freeze([]) });

/**
 * The (certificate, issuer) pairs a scope checks. `path` is the validated path above the leaf, the
 * anchor last: the anchor is trusted as configured, so it is never checked itself.
 */
export function revocationTargets(
  leaf: Certificate,
  path: readonly Certificate[],
  scope: TrustStore["revocation"]["scope"],
): [cert: Certificate, issuer: Certificate][] {
  const chain = [leaf, ...path];
  const last = scope === "leaf" ? 1 : chain.length - 1;
  const pairs: [Certificate, Certificate][] = [];
  for (let i = 0; i < last; i++) {
    const cert = chain[i];
    const issuer = chain[i + 1];
    if (cert !== undefined && issuer !== undefined) pairs.push([cert, issuer]);
  }
  return pairs;
}

/**
 * Whether `store`'s revocation settings accept the validated path at `now`. A revocation denies in every
 * mode but off; an unknown status denies in strict mode and is reported as a soft failure in soft mode.
 */
export function checkRevocation(
  leaf: Certificate,
  path: readonly Certificate[],
  store: TrustStore,
  view: RevocationView,
  now: Date,
): RevocationCheck {
  const { mode, scope } = store.revocation;
  if (mode === "off") return PASS;
  const unknown: string[] = [];
  // Every pair is asked before deciding: a revoked intermediate beats an unknown leaf.
  for (const [cert, issuer] of revocationTargets(leaf, path, scope)) {
    const status = view.status(cert, issuer, now);
    if (status.status === "revoked") {
      const why = status.reason ? ` (${status.reason})` : "";
      return {
        ok: false,
        reason: "certificate_revoked",
        detail: `certificate ${certificateLabel(cert)} was revoked at ${status.revokedAt.toISOString()}${why}, per ${status.source.toUpperCase()} of ${certificateLabel(issuer)} (trust store "${store.name}")`,
      };
    }
    if (status.status === "unknown") {
      unknown.push(`revocation status of ${certificateLabel(cert)} is unknown: ${status.detail}`);
    }
  }
  if (unknown.length === 0) return PASS;
  if (mode === "strict") {
    return {
      ok: false,
      reason: "revocation_unknown",
      detail: `${unknown.join("; ")} (trust store "${store.name}", strict revocation)`,
    };
  }
  return { ok: true, softFailures: unknown };
}
