// The certificate profile of RFC 5280 §4: what each certificate of a path must look like on its own, apart
// from how it chains. Violations deny with `bad_certificate`. A trust store's `profile: lenient` relaxes
// only the presence and format rules that legacy device PKIs break (key identifiers present, serial number
// format, an empty extendedKeyUsage), never a rule that carries meaning (criticality of constraints, CA
// flags, key usage, names).
import type { Certificate } from "./certificate.ts";
import { certificateLabel } from "./describe.ts";
import { OID } from "./extensions.ts";
import type { PathFailure } from "./path-building.ts";

export type Profile = "strict" | "lenient";
export const PROFILES: readonly Profile[] = ["strict", "lenient"];

/** Where a certificate stands on the path: the rules differ a little for each. */
export type Role = "leaf" | "intermediate" | "anchor";

/** Extensions this engine understands, so that marking them critical does not reject the certificate. */
const KNOWN_CRITICAL: ReadonlySet<string> = new Set([
  OID.basicConstraints,
  OID.keyUsage,
  OID.extKeyUsage,
  OID.subjectAltName,
  OID.nameConstraints,
  // certificatePolicies: without requireExplicitPolicy the path is valid whatever the policies (RFC 5280
  // §6.1 with any-policy as the initial set). policyConstraints and inhibitAnyPolicy could demand explicit
  // policies, which this engine does not process: marked critical, they are refused (fail closed).
  OID.certificatePolicies,
]);

/** Extensions that RFC 5280 says MUST NOT be critical. */
const NEVER_CRITICAL: Readonly<Record<string, string>> = {
  [OID.authorityKeyIdentifier]: "authorityKeyIdentifier",
  [OID.subjectKeyIdentifier]: "subjectKeyIdentifier",
};

/** RFC 1034 §3.5 preferred name syntax (with RFC 1123's leading digits); a leading "*." label is allowed. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;

export function isPreferredDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  const labels = name.split(".");
  const first = labels[0] === "*" && labels.length > 1 ? 1 : 0;
  for (let i = first; i < labels.length; i++) if (!LABEL.test(labels[i] ?? "")) return false;
  return true;
}

/** A serial number's problem (RFC 5280 §4.1.2.2: positive, at most 20 octets), or undefined. */
function serialProblem(bytes: Uint8Array): string | undefined {
  if ((bytes[0] ?? 0) & 0x80) return "is negative";
  if (bytes.every((b) => b === 0)) return "is zero";
  // A leading zero octet only keeps a positive number positive: it is not part of the value.
  const octets = bytes[0] === 0 ? bytes.length - 1 : bytes.length;
  return octets > 20 ? `is ${octets} octets long (at most 20)` : undefined;
}

/**
 * The first profile rule `cert` breaks in `role`, or undefined. `selfSigned`: the certificate is signed by
 * its own key (the caller knows: a self-issued anchor is taken as such, others are checked), the one case
 * where the authorityKeyIdentifier may be left out.
 */
export function checkProfile(
  cert: Certificate,
  role: Role,
  profile: Profile,
  selfSigned = role === "anchor" && cert.selfIssued,
): PathFailure | undefined {
  const fail = (why: string): PathFailure => ({
    reason: "bad_certificate",
    detail: `certificate ${certificateLabel(cert)} ${why}`,
  });
  const critical = (oid: string) => cert.criticalExtensions.includes(oid);
  const has = (oid: string) => cert.extensionOids.includes(oid);
  const strict = profile === "strict";

  if (cert.version < 3 && cert.extensionOids.length > 0) {
    return fail(`is X.509 v${cert.version} but carries extensions (v3 only)`);
  }
  for (const oid of cert.criticalExtensions) {
    const name = NEVER_CRITICAL[oid];
    if (name !== undefined) return fail(`marks ${name} critical (RFC 5280: it MUST NOT be)`);
    if (oid === OID.policyConstraints || oid === OID.inhibitAnyPolicy) {
      return fail(
        `has a critical ${oid === OID.policyConstraints ? "policyConstraints" : "inhibitAnyPolicy"}: policy processing is not supported`,
      );
    }
    if (!KNOWN_CRITICAL.has(oid)) return fail(`has an unsupported critical extension ${oid}`);
  }
  if (has(OID.policyConstraints))
    return fail("has a non-critical policyConstraints (RFC 5280: it MUST be critical)");

  if (strict && !selfSigned && cert.authorityKeyId === undefined) {
    return fail(
      "has no authorityKeyIdentifier keyIdentifier (required in every certificate but a self-signed one)",
    );
  }
  if (strict && serialProblem(cert.serialNumberBytes)) {
    return fail(`has a serial number that ${serialProblem(cert.serialNumberBytes)}`);
  }
  if (strict && cert.extKeyUsage?.length === 0) return fail("has an extendedKeyUsage without any purpose");
  if (cert.keyUsage?.size === 0) return fail("has a keyUsage with no bit set");

  if (cert.subjectRdns.length === 0) {
    if (!has(OID.subjectAltName)) return fail("has an empty subject and no subjectAltName");
    if (!critical(OID.subjectAltName)) {
      return fail("has an empty subject but a non-critical subjectAltName (RFC 5280: it MUST be critical)");
    }
  }
  for (const name of cert.sanDns) {
    if (!isPreferredDnsName(name))
      return fail(`has a subjectAltName dNSName "${name}" that is not a valid host name`);
  }

  if (cert.keyUsage?.has("keyCertSign") && !cert.isCA) {
    return fail("asserts keyUsage keyCertSign without basicConstraints cA");
  }
  if (cert.nameConstraints && !cert.isCA) return fail("is not a CA but carries nameConstraints");
  if (cert.nameConstraints && !critical(OID.nameConstraints)) {
    return fail("has a non-critical nameConstraints (RFC 5280: it MUST be critical)");
  }
  if (cert.isCA) {
    if (!critical(OID.basicConstraints)) {
      return fail("is a CA whose basicConstraints is not critical (RFC 5280: it MUST be)");
    }
    if (cert.subjectRdns.length === 0) return fail("is a CA with an empty subject");
    if (strict && cert.subjectKeyId === undefined) return fail("is a CA without a subjectKeyIdentifier");
  }
  return undefined;
}
