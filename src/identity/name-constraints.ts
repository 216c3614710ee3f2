// nameConstraints (RFC 5280 §4.2.1.10, §6.1.4): a CA limits the names that certificates below it may
// carry. Decoded when the CA is parsed; checked against every certificate below it on a path.
//
// Names checked, per certificate below the constraining CA (self-issued intermediates excepted, §6.1.4):
//   DNS   subjectAltName dNSNames; for the leaf only, when it has no dNSName, each CN that looks like a
//         fully-qualified host name (LDH labels with at least one dot; "device-001" is not one), as
//         OpenSSL does: a DNS-constrained CA cannot then certify "www.evil.com" through the CN.
//   email subjectAltName rfc822Names, and emailAddress attributes of the subject DN.
//   URI   the host of subjectAltName URIs.
//   IP    subjectAltName iPAddresses (v4 and v6) against address/mask subtrees of the same family.
//   DN    the subject DN (when not empty) and subjectAltName directoryNames: a constraint is an RDN prefix.
// A name of a type for which the CA has permitted subtrees must fall within one of them; a name within an
// excluded subtree is refused. A name that cannot be judged under a constraint of its type is refused too
// (fail closed, as Go does): a dNSName that is not a valid host name, an e-mail address without a valid
// domain, a URI without a host (e.g. urn:device:…) or with an IP-literal host. Types the engine cannot
// interpret (otherName, x400, ediParty, registeredID) fail closed the same way. Every comparison is
// counted against the decision's budget (chainLimits.maxNameChecks).
import type { Certificate } from "./certificate.ts";
import { children, ctx, DerError, decodeSmallInt, readTlv, TAG } from "./der.ts";
import { certificateLabel } from "./describe.ts";
import { OID_COMMON_NAME, OID_EMAIL_ADDRESS, type Rdn, sameRdn, valuesOf } from "./dn.ts";
import { decodeGeneralName, type GeneralName } from "./general-names.ts";
import type { WorkBudget } from "./limits.ts";
import type { PathFailure } from "./path-building.ts";
import { isPreferredDnsName } from "./profile.ts";

export interface NameConstraints {
  readonly permitted: readonly GeneralName[];
  readonly excluded: readonly GeneralName[];
}

/** NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees OPTIONAL, excludedSubtrees [1] … } */
export function decodeNameConstraints(der: Uint8Array): NameConstraints {
  const seq = readTlv(der, 0);
  if (seq.tag !== TAG.sequence || seq.end !== der.length) throw new DerError("malformed nameConstraints");
  const permitted: GeneralName[] = [];
  const excluded: GeneralName[] = [];
  for (const part of children(der, seq)) {
    const into = part.tag === ctx(0, true) ? permitted : part.tag === ctx(1, true) ? excluded : undefined;
    if (!into) throw new DerError("malformed nameConstraints");
    for (const subtree of children(der, part)) {
      // GeneralSubtree ::= SEQUENCE { base GeneralName, minimum [0] DEFAULT 0, maximum [1] OPTIONAL }
      const [base, ...rest] = subtree.tag === TAG.sequence ? children(der, subtree) : [];
      if (!base) throw new DerError("malformed GeneralSubtree");
      for (const field of rest) {
        // RFC 5280: minimum MUST be zero and maximum MUST be absent; anything else has no defined meaning.
        if (field.tag !== ctx(0, false) || decodeSmallInt(der, field) !== 0) {
          throw new DerError("GeneralSubtree minimum/maximum other than the RFC 5280 profile");
        }
      }
      into.push(decodeGeneralName(der, base, true));
    }
  }
  return { permitted, excluded };
}

const lower = (s: string): string => s.toLowerCase().replace(/\.$/, "");
const labels = (s: string): string[] => (s === "" ? [] : lower(s).split("."));

/**
 * Is DNS `name` within the subtree `constraint`? "example.com" holds itself and every subdomain;
 * ".example.com" only subdomains; "" everything. `wildcardAny`: a "*" label of the name may stand for any
 * label (for excluded subtrees: "*.example.com" reaches "a.example.com").
 */
function dnsWithin(name: string, constraint: string, wildcardAny: boolean): boolean {
  const subdomainsOnly = constraint.startsWith(".");
  const c = labels(subdomainsOnly ? constraint.slice(1) : constraint);
  const n = labels(name);
  if (n.length < c.length + (subdomainsOnly ? 1 : 0)) return false;
  for (let i = 1; i <= c.length; i++) {
    const nl = n[n.length - i];
    if (nl !== c[c.length - i] && !(wildcardAny && nl === "*" && n.length - i === 0)) return false;
  }
  return true;
}

function emailWithin(name: string, constraint: string): boolean {
  const at = name.lastIndexOf("@");
  if (at < 0) return false;
  if (constraint.includes("@")) {
    const cat = constraint.lastIndexOf("@");
    return (
      name.slice(0, at) === constraint.slice(0, cat) &&
      lower(name.slice(at + 1)) === lower(constraint.slice(cat + 1))
    );
  }
  const host = lower(name.slice(at + 1));
  return constraint.startsWith(".") ? dnsWithin(host, constraint, false) : host === lower(constraint);
}

/** The host of a URI with an authority, lower-cased; undefined without one or for an IP literal. */
export function uriHost(uri: string): string | undefined {
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(uri);
  if (!m) return undefined;
  const authority = (m[1] ?? "").replace(/^.*@/, "");
  if (authority.startsWith("[")) return undefined;
  const host = lower(authority.replace(/:\d*$/, ""));
  return host === "" || /^[\d.]+$/.test(host) ? undefined : host;
}

function uriWithin(name: string, constraint: string): boolean {
  const host = uriHost(name);
  if (host === undefined) return false;
  return constraint.startsWith(".") ? dnsWithin(host, constraint, false) : host === lower(constraint);
}

function ipWithin(address: Uint8Array, subtree: Uint8Array): boolean {
  const half = subtree.length / 2;
  if (address.length !== half) return false;
  for (let i = 0; i < half; i++) {
    const mask = subtree[half + i] ?? 0;
    if (((address[i] ?? 0) & mask) !== ((subtree[i] ?? 0) & mask)) return false;
  }
  return true;
}

function dnWithin(rdns: readonly Rdn[], constraint: readonly Rdn[]): boolean {
  if (rdns.length < constraint.length) return false;
  return constraint.every((rdn, i) => {
    const other = rdns[i];
    return other !== undefined && sameRdn(rdn, other);
  });
}

function within(name: GeneralName, subtree: GeneralName, excluded: boolean): boolean {
  if (name.kind !== subtree.kind) return false;
  switch (name.kind) {
    case "dns":
      return dnsWithin(name.value, subtree.value, excluded);
    case "email":
      return emailWithin(name.value, subtree.value);
    case "uri":
      return uriWithin(name.value, subtree.value);
    case "ip":
      return subtree.kind === "ip" && ipWithin(name.bytes, subtree.bytes);
    case "dn":
      return subtree.kind === "dn" && dnWithin(name.rdns, subtree.rdns);
    default:
      // Uninterpreted types: never provably permitted, always presumed excluded (fail closed).
      return name.kind === "other" && subtree.kind === "other" && name.tag === subtree.tag && excluded;
  }
}

const HOSTNAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

/** The names of `cert` that nameConstraints apply to (see the file comment). */
export function constrainedNames(cert: Certificate, isLeaf: boolean): GeneralName[] {
  const names: GeneralName[] = [...cert.subjectAltNames];
  if (cert.subjectRdns.length > 0) names.push({ kind: "dn", value: cert.subject, rdns: cert.subjectRdns });
  for (const value of valuesOf(cert.subjectRdns, OID_EMAIL_ADDRESS)) names.push({ kind: "email", value });
  if (isLeaf && !cert.subjectAltNames.some((n) => n.kind === "dns")) {
    for (const cn of valuesOf(cert.subjectRdns, OID_COMMON_NAME)) {
      if (HOSTNAME.test(cn) && !/^[\d.]+$/.test(cn)) names.push({ kind: "dns", value: cn });
    }
  }
  return names;
}

const KIND_LABEL: Readonly<Record<GeneralName["kind"], string>> = {
  dns: "DNS",
  email: "email",
  uri: "URI",
  ip: "IP",
  dn: "DirName",
  other: "otherName",
};
const show = (name: GeneralName): string => `${KIND_LABEL[name.kind]}:"${name.value}"`;

/** Whether `name` has the syntax its type needs to be compared with subtrees of that type. */
function judgeable(name: GeneralName): boolean {
  switch (name.kind) {
    case "dns":
      return isPreferredDnsName(name.value);
    case "email": {
      const at = name.value.lastIndexOf("@");
      return at > 0 && isPreferredDnsName(name.value.slice(at + 1));
    }
    case "uri":
      return uriHost(name.value) !== undefined;
    default:
      return true;
  }
}

interface Subtrees {
  readonly permitted: readonly GeneralName[];
  readonly excluded: readonly GeneralName[];
}
const NO_SUBTREES: Subtrees = { permitted: [], excluded: [] };
const byKindCache = new WeakMap<NameConstraints, ReadonlyMap<GeneralName["kind"], Subtrees>>();

/** A CA's subtrees grouped by name type, computed once per CA. */
function subtreesByKind(nc: NameConstraints): ReadonlyMap<GeneralName["kind"], Subtrees> {
  let map = byKindCache.get(nc);
  if (map) return map;
  const groups = new Map<GeneralName["kind"], { permitted: GeneralName[]; excluded: GeneralName[] }>();
  const group = (kind: GeneralName["kind"]) => {
    let g = groups.get(kind);
    if (!g) {
      g = { permitted: [], excluded: [] };
      groups.set(kind, g);
    }
    return g;
  };
  for (const s of nc.permitted) group(s.kind).permitted.push(s);
  for (const s of nc.excluded) group(s.kind).excluded.push(s);
  map = groups;
  byKindCache.set(nc, map);
  return map;
}

/** `ca`'s nameConstraints against the certificates below it on the path (`below[0]` is the leaf). */
export function checkNameConstraints(
  ca: Certificate,
  below: readonly Certificate[],
  budget: WorkBudget,
): PathFailure | undefined {
  const nc = ca.nameConstraints;
  if (!nc) return undefined;
  const kinds = subtreesByKind(nc);
  for (let i = 0; i < below.length; i++) {
    const cert = below[i];
    if (!cert || (i > 0 && cert.selfIssued)) continue;
    for (const name of constrainedNames(cert, i === 0)) {
      const { permitted, excluded } = kinds.get(name.kind) ?? NO_SUBTREES;
      if (permitted.length === 0 && excluded.length === 0) continue;
      const fail = (why: string): PathFailure => ({
        reason: "name_constraints_violation",
        detail: `name ${show(name)} of certificate ${certificateLabel(cert)} ${why} of CA ${certificateLabel(ca)}`,
      });
      if (!judgeable(name)) return fail("cannot be checked against the nameConstraints");
      budget.names(permitted.length + excluded.length);
      if (permitted.length > 0 && !permitted.some((s) => within(name, s, false))) {
        return fail("is outside the permitted nameConstraints");
      }
      const hit = excluded.find((s) => within(name, s, true));
      if (hit) return fail(`is within the excluded subtree ${show(hit)} of the nameConstraints`);
    }
  }
  return undefined;
}
