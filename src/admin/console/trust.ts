// GET /trust: the trust stores of the config now serving, each CA certificate with its expiry, and the
// revocation data loaded for it: CRLs (issuer, source, thisUpdate, nextUpdate, fresh, revoked entries) and
// OCSP settings with the size of the answer cache. Read-only: nothing here fetches or reloads.
import { DAY_MS } from "../../gateway/fleet-expiry.ts";
import type { Certificate } from "../../identity/certificate.ts";
import type { ParsedCrl } from "../../identity/revocation/crl.ts";
import { RevocationState } from "../../identity/revocation/revocation-state.ts";
import type { TrustStore } from "../../identity/types.ts";
import type { RevocationService } from "../../revocation/revocation-service.ts";

/** What GET /trust reads: the serving config's trust stores and its revocation service (none: no data). */
export interface TrustSource {
  readonly trustStores: readonly TrustStore[];
  readonly revocation: RevocationService | undefined;
  /** Why the revocation data cannot be shown (e.g. the --workers primary could not load it). */
  readonly revocationError?: string;
}

export interface CaJson {
  readonly subject: string;
  readonly issuer: string;
  readonly kind: "anchor" | "intermediate";
  readonly fingerprint: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly daysLeft: number;
}

export interface CrlJson {
  readonly issuer: string;
  /** `file:PATH` or `url:URL` (configured, or a CRL Distribution Point followed). */
  readonly source: string;
  readonly thisUpdate: string;
  readonly nextUpdate: string | null;
  /** Issued and not past its nextUpdate. */
  readonly fresh: boolean;
  /** Revoked serials it lists. */
  readonly revoked: number;
  readonly crlNumber: string | null;
}

export interface TrustStoreJson {
  readonly name: string;
  readonly cas: readonly CaJson[];
  readonly revocation: {
    readonly mode: "off" | "soft" | "strict";
    readonly scope: "leaf" | "chain";
    readonly crls: readonly CrlJson[];
    /** Configured CRL files and URLs, each with whether a CRL from it is loaded. */
    readonly sources: readonly { readonly source: string; readonly loaded: boolean }[];
    readonly ocsp: {
      readonly enabled: boolean;
      readonly responder: string | null;
      readonly maxAgeSeconds: number;
      /** OCSP answers and remembered failures cached (shared by every store). */
      readonly cachedResponses: number;
    };
    readonly error?: string;
  };
}

const iso = (d: Date): string => d.toISOString();

function caJson(cert: Certificate, kind: CaJson["kind"], now: number): CaJson {
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    kind,
    fingerprint: cert.fingerprint,
    notBefore: iso(cert.notBefore),
    notAfter: iso(cert.notAfter),
    daysLeft: Math.floor((cert.notAfter.getTime() - now) / DAY_MS),
  };
}

/** `issuer`: the CA's subject, written as the CA list writes it. */
function crlJson(source: string, crl: ParsedCrl, issuer: string, now: number): CrlJson {
  const issued = crl.thisUpdate.getTime() <= now;
  return {
    issuer,
    source,
    thisUpdate: iso(crl.thisUpdate),
    nextUpdate: crl.nextUpdate ? iso(crl.nextUpdate) : null,
    fresh: issued && (crl.nextUpdate === undefined || crl.nextUpdate.getTime() >= now),
    revoked: crl.revoked.size,
    crlNumber: crl.crlNumber === undefined ? null : crl.crlNumber.toString(),
  };
}

export function trustSnapshot(source: TrustSource, now: number): { trustStores: TrustStoreJson[] } {
  const state = source.revocation?.view();
  const loaded = state instanceof RevocationState ? state.crls.sources : new Map<string, ParsedCrl[]>();
  const ocspSize = state instanceof RevocationState ? state.ocsp.size : 0;
  const trustStores = source.trustStores.map((store): TrustStoreJson => {
    const { revocation } = store;
    const subjects = new Map(
      [...store.anchors, ...store.intermediates].map((c) => [c.subjectDer.toString("hex"), c.subject]),
    );
    const crls: CrlJson[] = [];
    if (revocation.mode !== "off") {
      for (const [id, list] of loaded) {
        for (const crl of list) {
          const issuer = subjects.get(crl.issuerDer.toString("hex"));
          if (issuer !== undefined) crls.push(crlJson(id, crl, issuer, now));
        }
      }
    }
    const configured = [
      ...revocation.crl.files.map((f) => `file:${f}`),
      ...revocation.crl.urls.map((u) => `url:${u}`),
    ];
    return {
      name: store.name,
      cas: [
        ...store.anchors.map((c) => caJson(c, "anchor", now)),
        ...store.intermediates.map((c) => caJson(c, "intermediate", now)),
      ],
      revocation: {
        mode: revocation.mode,
        scope: revocation.scope,
        crls,
        sources: configured.map((s) => ({ source: s, loaded: (loaded.get(s)?.length ?? 0) > 0 })),
        ocsp: {
          enabled: revocation.ocsp.enabled,
          responder: revocation.ocsp.responder ?? null,
          maxAgeSeconds: Math.round(revocation.ocsp.maxAgeMs / 1000),
          cachedResponses: revocation.mode === "off" ? 0 : ocspSize,
        },
        ...(source.revocationError !== undefined && revocation.mode !== "off"
          ? { error: source.revocationError }
          : {}),
      },
    };
  });
  return { trustStores };
}
