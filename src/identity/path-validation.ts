// Certification path validation: the per-link and per-path rules of RFC 5280 §6 with the Web PKI's
// practical rules for client certificates, and verifyChain, which runs them over the paths that
// path-building.ts proposes. Name constraints and the algorithm policy live in their own files.
import { checkPublicKey, checkSignatureAlgorithm } from "./algorithm-policy.ts";
import { type Certificate, EKU } from "./certificate.ts";
import { certificateLabel } from "./describe.ts";
import { BudgetSpent, WorkBudget } from "./limits.ts";
import { checkNameConstraints } from "./name-constraints.ts";
import { isStoreCertificate, type PathFailure, searchPath } from "./path-building.ts";
import { checkProfile } from "./profile.ts";
import type { ReasonCode } from "./reasons.ts";
import { wholeSecond } from "./time.ts";
import type { Purpose, TrustStore } from "./types.ts";

export type { PathFailure } from "./path-building.ts";

export type PathResult =
  | {
      readonly ok: true;
      /** The leaf's issuer first, the anchor last. */
      readonly path: Certificate[];
      readonly anchor: Certificate;
      /** Set when the leaf's notBefore is still ahead and the store's notBeforeGrace accepted it. */
      readonly graceUsedMs?: number;
    }
  | { readonly ok: false; readonly reason: ReasonCode; readonly detail: string };

const REQUIRED_EKU: Record<Purpose, string | undefined> = {
  client: EKU.clientAuth,
  server: EKU.serverAuth,
  any: undefined,
};

/**
 * Signature results by child certificate, then issuer fingerprint. A signature check is the one costly
 * step (~60-80 µs for ECDSA); the same links are re-examined when decide() tries several stores, and
 * the result of verifying fixed bytes with a fixed key never changes. Weak keys: entries die with the
 * certificate objects (per connection, or in parseCertificateCached's LRU). Only a check not known yet
 * spends the decision's budget.
 */
const signatures = new WeakMap<Certificate, Map<string, boolean>>();

function signedBy(child: Certificate, issuer: Certificate, budget: WorkBudget): boolean {
  let byIssuer = signatures.get(child);
  const cached = byIssuer?.get(issuer.fingerprint);
  if (cached !== undefined) return cached;
  budget.signature();
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

/**
 * `graceMs`: a notBefore up to this far ahead of `now` still passes (the leaf's clock-skew grace).
 * Certificate times have one-second resolution and validity is inclusive (RFC 5280 §4.1.2.5), so `now` is
 * compared by its whole second: 12:00:00.005 is within a notAfter of 12:00:00.
 */
function checkValidity(cert: Certificate, now: number, graceMs = 0): PathFailure | undefined {
  const second = wholeSecond(now);
  if (second < cert.notBefore.getTime() - graceMs) {
    const grace =
      graceMs > 0 ? `, more than the trust store's notBeforeGrace of ${graceMs / 1000}s ahead` : "";
    return {
      reason: "certificate_not_yet_valid",
      detail: `certificate ${certificateLabel(cert)} is not valid before ${cert.notBefore.toISOString()}${grace}`,
    };
  }
  if (second > cert.notAfter.getTime()) {
    return {
      reason: "certificate_expired",
      detail: `certificate ${certificateLabel(cert)} expired at ${cert.notAfter.toISOString()}`,
    };
  }
  return undefined;
}

/**
 * Whether an EKU list allows `purpose` (no list: no restriction). anyExtendedKeyUsage does not stand in for
 * the purpose (RFC 5280 §4.2.1.12 lets an application require the purpose's own OID): OpenSSL refuses it for
 * a TLS client, leaf and intermediates alike, so both client-auth modes judge such a certificate the same.
 */
function ekuAllows(eku: readonly string[] | undefined, purpose: Purpose): boolean {
  const required = REQUIRED_EKU[purpose];
  return required === undefined || eku === undefined || eku.includes(required);
}

interface LinkContext {
  readonly leaf: Certificate;
  readonly store: TrustStore;
  readonly now: number;
  readonly budget: WorkBudget;
}

/** Rules for `issuer` as the issuer of `child`; `below` are the issuers between it and the leaf. */
function checkLink(
  child: Certificate,
  issuer: Certificate,
  below: readonly Certificate[],
  anchor: boolean,
  { leaf, store, now, budget }: LinkContext,
): PathFailure | undefined {
  // The algorithm first: a forged SHA-1 or MD5 signature could "verify" and must not be trusted to.
  const algorithm = checkSignatureAlgorithm(child);
  if (algorithm) return algorithm;
  // The key policy before the key is used: a key built to be expensive (a huge RSA exponent or modulus)
  // is refused for the price of reading it.
  const key = checkPublicKey(issuer, store);
  if (key) return key;
  // Then the signature: a name-matching certificate whose key did not sign `child` is not its issuer
  // at all, and reporting its other defects would blame the wrong certificate.
  if (!signedBy(child, issuer, budget)) {
    return {
      reason: "bad_signature",
      detail: `certificate ${certificateLabel(child)} is not signed by the key of ${certificateLabel(issuer)}`,
    };
  }
  const issuerOf = `issuer ${certificateLabel(issuer)} of ${certificateLabel(child)}`;
  if (issuer.version < 3) {
    return {
      reason: "untrusted_issuer",
      detail: `${issuerOf} is an X.509 v${issuer.version} certificate: only v3 CA certificates can issue`,
    };
  }
  if (!issuer.isCA)
    return { reason: "untrusted_issuer", detail: `${issuerOf} is not a CA (basicConstraints)` };
  if (issuer.keyUsage && !issuer.keyUsage.has("keyCertSign")) {
    return { reason: "untrusted_issuer", detail: `${issuerOf} lacks keyUsage keyCertSign` };
  }
  // The store's own certificates passed the profile when the store was compiled; a presented issuer is
  // judged here. Only a self-signed certificate may leave out its authorityKeyIdentifier: for a
  // self-issued CA that does, whether it signed itself decides (a key-rollover certificate is self-issued,
  // not self-signed).
  if (!isStoreCertificate(store, issuer)) {
    const selfSigned =
      issuer.selfIssued && issuer.authorityKeyId === undefined && signedBy(issuer, issuer, budget);
    const profile = checkProfile(issuer, "intermediate", store.profile, selfSigned);
    if (profile) return profile;
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
  // An intermediate's EKU, when present, bounds what it may certify (as OpenSSL, Go and the CA/B
  // Forum read it). Anchors are trusted by configuration and exempt.
  if (!anchor && !ekuAllows(issuer.extKeyUsage, store.purpose)) {
    return {
      reason: "wrong_purpose",
      detail: `intermediate CA ${certificateLabel(issuer)} has an extendedKeyUsage without ${store.purpose} authentication`,
    };
  }
  return checkNameConstraints(issuer, [leaf, ...below], budget);
}

/** Rules for the end-entity certificate: well-formed, strong key, usable now, for this purpose. */
function checkLeaf(leaf: Certificate, store: TrustStore, now: number): PathFailure | undefined {
  const profile = checkProfile(leaf, "leaf", store.profile);
  if (profile) return profile;
  const key = checkPublicKey(leaf, store);
  if (key) return key;
  const validity = checkValidity(leaf, now, store.notBeforeGraceMs);
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
  if (!ekuAllows(leaf.extKeyUsage, store.purpose)) {
    return {
      reason: "wrong_purpose",
      detail: `certificate ${certificateLabel(leaf)} extendedKeyUsage does not allow ${store.purpose} authentication`,
    };
  }
  return undefined;
}

/** A spent budget as a denial. */
export const tooComplex = (spent: BudgetSpent): PathResult => ({
  ok: false,
  reason: "chain_too_complex",
  detail: spent.detail,
});

/**
 * Finds and validates a certification path from `leaf` to an anchor of `store` at time `now`, using
 * `untrusted` (what the client sent) and the store's intermediates as candidate issuers, within `budget`
 * (shared by every store one decision tries; a fresh default budget when omitted).
 */
export function verifyChain(
  leaf: Certificate,
  untrusted: readonly Certificate[],
  store: TrustStore,
  now: Date,
  budget: WorkBudget = new WorkBudget(),
): PathResult {
  if (budget.spent) return tooComplex(budget.spent);
  const t = now.getTime();
  const context: LinkContext = { leaf, store, now: t, budget };
  // Leaf rules do not depend on the path: evaluated once, and only for a path that reached an anchor,
  // so that an untrusted chain reads "untrusted_issuer" rather than some defect of a stranger's leaf.
  let leafFailure: PathFailure | null | undefined;
  let result: ReturnType<typeof searchPath>;
  try {
    result = searchPath(
      leaf,
      untrusted,
      store,
      {
        link: (child, issuer, below, anchor) => checkLink(child, issuer, below, anchor, context),
        complete: () => {
          if (leafFailure === undefined) leafFailure = checkLeaf(leaf, store, t) ?? null;
          return leafFailure ?? undefined;
        },
      },
      budget,
    );
  } catch (err) {
    if (err instanceof BudgetSpent) return tooComplex(err);
    throw err;
  }
  if (!result.ok) return { ok: false, reason: result.failure.reason, detail: result.failure.detail };
  const anchor = result.path[result.path.length - 1];
  // searchPath only succeeds on reaching an anchor, so the path is never empty.
  if (!anchor) return { ok: false, reason: "untrusted_issuer", detail: "empty certification path" };
  const ahead = leaf.notBefore.getTime() - wholeSecond(t);
  return ahead > 0
    ? { ok: true, path: result.path, anchor, graceUsedMs: ahead }
    : { ok: true, path: result.path, anchor };
}
