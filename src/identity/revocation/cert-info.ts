// What revocation needs from a certificate beyond the engine's Certificate: its key identifier (from the
// engine's fields), CRL Distribution Points and OCSP responders, decoded once per certificate object.
import * as pkijs from "pkijs";
import type { Certificate } from "../certificate.ts";
import { keyIdentifierOf } from "./der.ts";

export interface RevocationInfo {
  /** SKI of the certificate (or SHA-1 of its key): what the AKI of the CRLs it signs names. */
  readonly keyId: string;
  /** HTTP(S) URIs of its CRL Distribution Points. */
  readonly crlUrls: readonly string[];
  /** HTTP(S) URIs of the OCSP responders in its Authority Information Access. */
  readonly ocspUrls: readonly string[];
}

const OID = {
  crlDistributionPoints: "2.5.29.31",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
  ocsp: "1.3.6.1.5.5.7.48.1",
} as const;

const URI = 6;
const cache = new WeakMap<Certificate, RevocationInfo>();

/** Only http(s) URLs are fetched: ldap:// and file:// distribution points are ignored, as most clients do. */
function httpUris(names: readonly pkijs.GeneralName[] | undefined): string[] {
  const out: string[] = [];
  for (const name of names ?? []) {
    if (name.type === URI && typeof name.value === "string" && /^https?:\/\//i.test(name.value)) {
      out.push(name.value);
    }
  }
  return out;
}

function decode(cert: Certificate): RevocationInfo {
  const crlUrls: string[] = [];
  const ocspUrls: string[] = [];
  try {
    const parsed = pkijs.Certificate.fromBER(cert.der);
    for (const ext of parsed.extensions ?? []) {
      const value = ext.parsedValue;
      if (ext.extnID === OID.crlDistributionPoints && value instanceof pkijs.CRLDistributionPoints) {
        for (const dp of value.distributionPoints) {
          if (Array.isArray(dp.distributionPoint)) crlUrls.push(...httpUris(dp.distributionPoint));
        }
      } else if (ext.extnID === OID.authorityInfoAccess && value instanceof pkijs.InfoAccess) {
        const responders = value.accessDescriptions.filter((d) => d.accessMethod === OID.ocsp);
        ocspUrls.push(...httpUris(responders.map((d) => d.accessLocation)));
      }
    }
  } catch {
    // The engine parsed this certificate already; an extension pkijs cannot read just yields no URLs.
  }
  return { keyId: keyIdentifierOf(cert), crlUrls, ocspUrls };
}

export function revocationInfo(cert: Certificate): RevocationInfo {
  let info = cache.get(cert);
  if (info === undefined) {
    info = decode(cert);
    cache.set(cert, info);
  }
  return info;
}
