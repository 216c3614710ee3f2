// What the pure engine asks about revocation: a synchronous view over revocation data already loaded
// (CRL snapshots, cached OCSP responses). Fetching and refreshing live outside the engine.
import type { Certificate } from "../certificate.ts";

export type RevocationSource = "crl" | "ocsp";

export type RevocationStatus =
  | { readonly status: "good"; readonly source: RevocationSource }
  | {
      readonly status: "revoked";
      readonly source: RevocationSource;
      readonly revokedAt: Date;
      /** RFC 5280 CRLReason name, when given. */
      readonly reason?: string;
    }
  | {
      readonly status: "unknown";
      /** Why no answer: no CRL for this issuer, CRL stale, responder unreachable, "unknown" from OCSP... */
      readonly detail: string;
    };

export interface RevocationView {
  /** The status of `cert`, issued by `issuer`, at `now`, from what is loaded (never blocks). */
  status(cert: Certificate, issuer: Certificate, now: Date): RevocationStatus;
  /** Increases whenever any loaded revocation data changes: cached verdicts older than it are stale. */
  readonly epoch: number;
}

/** A trust store's compiled revocation settings (config `trustStores[].revocation`, files resolved). */
export interface RevocationSettings {
  readonly mode: "off" | "soft" | "strict";
  readonly scope: "leaf" | "chain";
  readonly crl: {
    /** Absolute paths. */
    readonly files: readonly string[];
    readonly urls: readonly string[];
    readonly distributionPoints: boolean;
    readonly refreshIntervalMs: number;
    readonly timeoutMs: number;
    readonly maxBytes: number;
  };
  readonly ocsp: {
    readonly enabled: boolean;
    readonly responder: string | undefined;
    readonly timeoutMs: number;
    readonly proxy: string | undefined;
    readonly maxAgeMs: number;
  };
}

export const REVOCATION_OFF: RevocationSettings = Object.freeze({
  mode: "off",
  scope: "leaf",
  crl: Object.freeze({
    files: [],
    urls: [],
    distributionPoints: true,
    refreshIntervalMs: 3_600_000,
    timeoutMs: 5_000,
    maxBytes: 10 * 1024 * 1024,
  }),
  ocsp: Object.freeze({
    enabled: false,
    responder: undefined,
    timeoutMs: 3_000,
    proxy: undefined,
    maxAgeMs: 3_600_000,
  }),
});
