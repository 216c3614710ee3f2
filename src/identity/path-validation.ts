// Certification path validation: the per-link and per-path rules of RFC 5280 that this version enforces,
// and verifyChain, which runs them over the paths that path-building.ts proposes.
import { type Certificate, EKU } from "./certificate.ts";
import { certificateLabel } from "./describe.ts";
import { type PathFailure, searchPath } from "./path-building.ts";
import type { ReasonCode } from "./reasons.ts";
import type { Purpose, TrustStore } from "./types.ts";

export type { PathFailure } from "./path-building.ts";

export type PathResult =
  | {
      readonly ok: true;
      /** The leaf's issuer first, the anchor last. */
      readonly path: Certificate[];
      readonly anchor: Certificate;
    }
  | { readonly ok: false; readonly reason: ReasonCode; readonly detail: string };

const NAME_CONSTRAINTS = "2.5.29.30";

/** Extensions this engine understands, so that marking them critical does not reject the certificate. */
const KNOWN_CRITICAL: ReadonlySet<string> = new Set([
  "2.5.29.19", // basicConstraints
  "2.5.29.15", // keyUsage
  "2.5.29.37", // extKeyUsage
  "2.5.29.17", // subjectAltName
  NAME_CONSTRAINTS, // known, but refused outright below until it is enforced
  "2.5.29.32", // certificatePolicies
  "2.5.29.36", // policyConstraints
  "2.5.29.54", // inhibitAnyPolicy
  "2.5.29.35", // authorityKeyIdentifier
  "2.5.29.14", // subjectKeyIdentifier
]);

const REQUIRED_EKU: Record<Purpose, string | undefined> = {
  client: EKU.clientAuth,
  server: EKU.serverAuth,
  any: undefined,
};

/**
 * Signature results by child certificate, then issuer fingerprint. A signature check is the one costly
 * step (~60-80 µs for ECDSA); the same links are re-examined when decide() tries several stores, and
 * the result of verifying fixed bytes with a fixed key never changes. Weak keys: entries die with the
 * per-connection certificate objects.
 */
const signatures = new WeakMap<Certificate, Map<string, boolean>>();

function signedBy(child: Certificate, issuer: Certificate): boolean {
  let byIssuer = signatures.get(child);
  const cached = byIssuer?.get(issuer.fingerprint);
  if (cached !== undefined) return cached;
  let ok: boolean;
  try {
    ok = child.node.verify(issuer.node.publicKey);
  } catch {
    ok = false; // unsupported or malformed key: not a signature we can accept
  }
  if (!byIssuer) {
    byIssuer = new Map();
    signatures.set(child, byIssuer);
  }
  byIssuer.set(issuer.fingerprint, ok);
  return ok;
}

function checkValidity(cert: Certificate, now: number): PathFailure | undefined {
  if (now < cert.notBefore.getTime()) {
    return {
      reason: "certificate_not_yet_valid",
      detail: `certificate ${certificateLabel(cert)} is not valid before ${cert.notBefore.toISOString()}`,
    };
  }
  if (now > cert.notAfter.getTime()) {
    return {
      reason: "certificate_expired",
      detail: `certificate ${certificateLabel(cert)} expired at ${cert.notAfter.toISOString()}`,
    };
  }
  return undefined;
}

function checkExtensions(cert: Certificate): PathFailure | undefined {
  for (const oid of cert.criticalExtensions) {
    if (!KNOWN_CRITICAL.has(oid)) {
      return {
        reason: "bad_certificate",
        detail: `certificate ${certificateLabel(cert)} has an unsupported critical extension ${oid}`,
      };
    }
  }
  // Fail closed, critical or not: accepting a constrained CA without enforcing its constraints would
  // trust names it was never allowed to certify.
  if (cert.extensionOids.includes(NAME_CONSTRAINTS)) {
    return {
      reason: "bad_certificate",
      detail: `certificate ${certificateLabel(cert)} has nameConstraints, which this version does not enforce`,
    };
  }
  return undefined;
}

/** Rules for `issuer` as the issuer of `child`; `below` are the issuers between it and the leaf. */
function checkLink(
  child: Certificate,
  issuer: Certificate,
  below: readonly Certificate[],
  now: number,
): PathFailure | undefined {
  // Signature first: a name-matching certificate whose key did not sign `child` is not its issuer at
  // all, and reporting its other defects would blame the wrong certificate.
  if (!signedBy(child, issuer)) {
    return {
      reason: "bad_signature",
      detail: `certificate ${certificateLabel(child)} is not signed by the key of ${certificateLabel(issuer)}`,
    };
  }
  const extensions = checkExtensions(issuer);
  if (extensions) return extensions;
  if (!issuer.isCA) {
    return {
      reason: "untrusted_issuer",
      detail: `issuer ${certificateLabel(issuer)} of ${certificateLabel(child)} is not a CA (basicConstraints)`,
    };
  }
  if (issuer.keyUsage && !issuer.keyUsage.has("keyCertSign")) {
    return {
      reason: "untrusted_issuer",
      detail: `issuer ${certificateLabel(issuer)} of ${certificateLabel(child)} lacks keyUsage keyCertSign`,
    };
  }
  const validity = checkValidity(issuer, now);
  if (validity) return validity;
  if (issuer.pathLength !== undefined) {
    // RFC 5280 6.1.4 (l)/(m) read bottom-up: self-issued intermediates do not count.
    let intermediates = 0;
    for (const cert of below) if (!cert.selfIssued) intermediates++;
    if (intermediates > issuer.pathLength) {
      return {
        reason: "chain_too_long",
        detail: `CA ${certificateLabel(issuer)} allows ${issuer.pathLength} intermediate CA(s) below it, the chain has ${intermediates}`,
      };
    }
  }
  return undefined;
}

/** Rules for the end-entity certificate: usable now, for this purpose. */
function checkLeaf(leaf: Certificate, purpose: Purpose, now: number): PathFailure | undefined {
  const extensions = checkExtensions(leaf);
  if (extensions) return extensions;
  const validity = checkValidity(leaf, now);
  if (validity) return validity;
  if (leaf.isCA) {
    return {
      reason: "wrong_purpose",
      detail: `certificate ${certificateLabel(leaf)} is a CA certificate, not a device certificate`,
    };
  }
  if (leaf.keyUsage && !leaf.keyUsage.has("digitalSignature")) {
    return {
      reason: "wrong_purpose",
      detail: `certificate ${certificateLabel(leaf)} keyUsage lacks digitalSignature`,
    };
  }
  const required = REQUIRED_EKU[purpose];
  if (
    required !== undefined &&
    leaf.extKeyUsage &&
    !leaf.extKeyUsage.includes(required) &&
    !leaf.extKeyUsage.includes(EKU.anyExtendedKeyUsage)
  ) {
    return {
      reason: "wrong_purpose",
      detail: `certificate ${certificateLabel(leaf)} extendedKeyUsage does not allow ${purpose} authentication`,
    };
  }
  return undefined;
}

/**
 * Finds and validates a certification path from `leaf` to an anchor of `store` at time `now`, using
 * `untrusted` (what the client sent) and the store's intermediates as candidate issuers.
 */
export function verifyChain(
  leaf: Certificate,
  untrusted: readonly Certificate[],
  store: TrustStore,
  now: Date,
): PathResult {
  const t = now.getTime();
  // Leaf rules do not depend on the path: evaluated once, and only for a path that reached an anchor,
  // so that an untrusted chain reads "untrusted_issuer" rather than some defect of a stranger's leaf.
  let leafFailure: PathFailure | null | undefined;
  const result = searchPath(leaf, untrusted, store, {
    link: (child, issuer, below) => checkLink(child, issuer, below, t),
    complete: () => {
      if (leafFailure === undefined) leafFailure = checkLeaf(leaf, store.purpose, t) ?? null;
      return leafFailure ?? undefined;
    },
  });
  if (!result.ok) return { ok: false, reason: result.failure.reason, detail: result.failure.detail };
  const anchor = result.path[result.path.length - 1];
  // searchPath only succeeds on reaching an anchor, so the path is never empty.
  if (!anchor) return { ok: false, reason: "untrusted_issuer", detail: "empty certification path" };
  return { ok: true, path: result.path, anchor };
}
