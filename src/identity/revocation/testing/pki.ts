// Test helper: a small PKI for revocation tests (root → intermediate → devices, delegated OCSP responders),
// valid around the real clock so that services running on Date.now() accept it, plus CRLs and settings.

import { createCrl, type RevokedEntry } from "../../../pki/issue.ts";
import { EKU } from "../../certificate.ts";
import { type Minted, mint, mintCa, mintDevice } from "../../testing/mint.ts";
import { compileTrustStore } from "../../trust-store.ts";
import type { TrustStore } from "../../types.ts";
import { x509 } from "../../x509.ts";
import type { RevocationSettings } from "../types.ts";

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

export interface TestPki {
  readonly root: Minted;
  readonly int: Minted;
}

export async function testPki(name = "Rev"): Promise<TestPki> {
  const root = await mintCa(`O=${name}, CN=${name} Root CA`);
  const int = await mintCa(`O=${name}, CN=${name} Device CA`, root, { pathLength: 0 });
  return { root, int };
}

/** A device certificate, with a CRL Distribution Point and an OCSP URL when given. */
export function device(
  cn: string,
  issuer: Minted,
  urls: { crl?: string; ocsp?: string } = {},
): Promise<Minted> {
  const extensions: x509.Extension[] = [];
  if (urls.crl) extensions.push(new x509.CRLDistributionPointsExtension([urls.crl]));
  if (urls.ocsp) extensions.push(new x509.AuthorityInfoAccessExtension({ ocsp: [urls.ocsp] }));
  return mintDevice(cn, issuer, { extensions });
}

/** A delegated OCSP responder certificate issued by `issuer`; `eku: false` leaves out id-kp-OCSPSigning. */
export function responder(issuer: Minted, options: { eku?: boolean } = {}): Promise<Minted> {
  return mint({
    subject: `CN=OCSP responder of ${issuer.cert.commonName ?? "CA"}`,
    issuer,
    keyUsage: ["digitalSignature"],
    extKeyUsage: options.eku === false ? [EKU.clientAuth] : [EKU.ocspSigning],
  });
}

export interface CrlSpec {
  readonly revoked?: readonly Minted[];
  readonly reason?: string;
  readonly thisUpdate?: Date;
  readonly nextUpdate?: Date;
  readonly crlNumber?: number;
}

/** A PEM CRL of `issuer`, signed with `signer`'s key (default: the issuer's own). */
export async function crlPem(issuer: Minted, spec: CrlSpec = {}, signer: Minted = issuer): Promise<string> {
  const now = Date.now();
  const revoked: RevokedEntry[] = (spec.revoked ?? []).map((m) => ({
    serialNumber: m.cert.serialNumber,
    revokedAt: new Date(now - HOUR),
    reason: spec.reason ?? "keyCompromise",
  }));
  const { pem } = await createCrl(
    { cert: issuer.x509, keys: signer.keys, algorithm: "ec-p256" },
    {
      revoked,
      thisUpdate: spec.thisUpdate ?? new Date(now - 60_000),
      nextUpdate: spec.nextUpdate ?? new Date(now + DAY),
      crlNumber: spec.crlNumber,
    },
  );
  return pem;
}

type Overrides = {
  readonly mode?: RevocationSettings["mode"];
  readonly scope?: RevocationSettings["scope"];
  readonly crl?: Partial<RevocationSettings["crl"]>;
  readonly ocsp?: Partial<RevocationSettings["ocsp"]>;
};

export function settings(overrides: Overrides = {}): RevocationSettings {
  return {
    mode: overrides.mode ?? "strict",
    scope: overrides.scope ?? "leaf",
    crl: {
      files: [],
      urls: [],
      distributionPoints: true,
      refreshIntervalMs: HOUR,
      timeoutMs: 2_000,
      maxBytes: 1024 * 1024,
      ...overrides.crl,
    },
    ocsp: {
      enabled: false,
      responder: undefined,
      timeoutMs: 2_000,
      proxy: undefined,
      maxAgeMs: HOUR,
      ...overrides.ocsp,
    },
  };
}

/** A trust store of `pki`'s root and intermediate with these revocation settings. */
export function store(pki: TestPki, overrides: Overrides = {}, name = "devices"): TrustStore {
  return compileTrustStore(name, pki.root.pem + pki.int.pem, { revocation: settings(overrides) });
}
