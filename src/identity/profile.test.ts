// The RFC 5280 certificate profile, one row per rule (strict by default, what `profile: lenient` relaxes and
// what it does not), the depth and validity-instant rules, and trust stores refused for their own certificates.
import assert from "node:assert/strict";
import { test } from "node:test";
import { verifyChain } from "./path-validation.ts";
import { isPreferredDnsName } from "./profile.ts";
import * as c from "./testing/corpus.ts";
import * as p from "./testing/corpus-profile.ts";
import { runRows } from "./testing/rows.ts";
import { compileTrustStore, TrustStoreError } from "./trust-store.ts";

const lenient = p.profileStores.lenient;

runRows([
  // key identifiers: presence is a strict rule, criticality is not negotiable
  {
    name: "profile: a leaf without authorityKeyIdentifier",
    leaf: p.leafNoAki.cert,
    untrusted: [c.int.cert],
    expect: "bad_certificate",
    detail: "no authorityKeyIdentifier",
  },
  {
    name: "lenient: a leaf without authorityKeyIdentifier",
    leaf: p.leafNoAki.cert,
    untrusted: [c.int.cert],
    store: lenient,
    expect: "ok",
  },
  {
    name: "profile: an intermediate without authorityKeyIdentifier",
    leaf: p.underIntNoAki.cert,
    untrusted: [p.intNoAki.cert],
    expect: "bad_certificate",
    detail: '"CN=No-AKI CA,O=Acme" has no authorityKeyIdentifier',
  },
  {
    name: "lenient: an intermediate without authorityKeyIdentifier",
    leaf: p.underIntNoAki.cert,
    untrusted: [p.intNoAki.cert],
    store: lenient,
    expect: "ok",
  },
  {
    name: "profile: a CA without subjectKeyIdentifier",
    leaf: p.underIntNoSki.cert,
    untrusted: [p.intNoSki.cert],
    expect: "bad_certificate",
    detail: "is a CA without a subjectKeyIdentifier",
  },
  {
    name: "lenient: a CA without subjectKeyIdentifier",
    leaf: p.underIntNoSki.cert,
    untrusted: [p.intNoSki.cert],
    store: lenient,
    expect: "ok",
  },
  {
    name: "profile: a critical authorityKeyIdentifier (lenient too)",
    leaf: p.leafCriticalAki.cert,
    untrusted: [c.int.cert],
    store: lenient,
    expect: "bad_certificate",
    detail: "marks authorityKeyIdentifier critical",
  },
  {
    name: "profile: a critical subjectKeyIdentifier (lenient too)",
    leaf: p.underIntCriticalSki.cert,
    untrusted: [p.intCriticalSki.cert],
    store: lenient,
    expect: "bad_certificate",
    detail: "marks subjectKeyIdentifier critical",
  },
  // name constraints
  {
    name: "profile: nameConstraints in an end-entity certificate",
    leaf: p.leafWithNc.cert,
    untrusted: [c.int.cert],
    store: lenient,
    expect: "bad_certificate",
    detail: "is not a CA but carries nameConstraints",
  },
  {
    name: "profile: a non-critical nameConstraints",
    leaf: p.underNonCriticalNc.cert,
    untrusted: [p.intNonCriticalNc.cert],
    store: lenient,
    expect: "bad_certificate",
    detail: "non-critical nameConstraints",
  },
  {
    name: "NC: a leading-period DNS constraint permits subdomains only, not the domain itself",
    leaf: p.dotApex.cert,
    untrusted: [p.ncDotDomain.cert],
    expect: "name_constraints_violation",
    detail: 'DNS:"example.com"',
  },
  {
    name: "NC: a leading-period DNS constraint permits a subdomain",
    leaf: p.dotSub.cert,
    untrusted: [p.ncDotDomain.cert],
    expect: "ok",
  },
  {
    name: "NC: a dNSName that is not a host name, under a DNS constraint, is a violation",
    leaf: p.dotUnderscore.cert,
    untrusted: [p.ncDotDomain.cert],
    expect: "name_constraints_violation",
    detail: "cannot be checked against the nameConstraints",
  },
  {
    name: "NC: an e-mail SAN without '@', under an email constraint, is a violation",
    leaf: p.emailNoAt.cert,
    untrusted: [p.ncEmail.cert],
    expect: "name_constraints_violation",
    detail: 'email:"no-at-sign"',
  },
  // CA flags, subjects, SAN, EKU, serial
  {
    name: "profile: a CA whose basicConstraints is not critical (lenient too)",
    leaf: p.underNonCriticalBc.cert,
    untrusted: [p.intNonCriticalBc.cert],
    store: lenient,
    expect: "bad_certificate",
    detail: "basicConstraints is not critical",
  },
  {
    name: "profile: a leaf asserting keyCertSign without cA (lenient too)",
    leaf: p.leafKeyCertSign.cert,
    untrusted: [c.int.cert],
    store: lenient,
    expect: "bad_certificate",
    detail: "keyCertSign without basicConstraints cA",
  },
  {
    name: "profile: a CA with an empty subject",
    leaf: p.underEmptySubject.cert,
    untrusted: [p.intEmptySubject.cert],
    store: lenient,
    expect: "bad_certificate",
    detail: "is a CA with an empty subject",
  },
  {
    name: "profile: a non-critical policyConstraints",
    leaf: p.underPolicyConstraints.cert,
    untrusted: [p.intPolicyConstraints.cert],
    store: lenient,
    expect: "bad_certificate",
    detail: "non-critical policyConstraints",
  },
  {
    name: "profile: an empty subject with a non-critical subjectAltName",
    leaf: p.emptySubjectNonCriticalSan.cert,
    untrusted: [c.int.cert],
    store: lenient,
    expect: "bad_certificate",
    detail: "subjectAltName (RFC 5280: it MUST be critical)",
  },
  {
    name: "profile: an empty subject with a critical subjectAltName",
    leaf: p.emptySubjectCriticalSan.cert,
    untrusted: [c.int.cert],
    expect: "ok",
  },
  {
    name: "profile: a dNSName with '_' is not preferred name syntax (lenient too)",
    leaf: p.dnsUnderscore.cert,
    untrusted: [c.int.cert],
    store: lenient,
    expect: "bad_certificate",
    detail: 'dNSName "bad_name.example.com"',
  },
  {
    name: "profile: an extendedKeyUsage without any purpose",
    leaf: p.emptyEku.cert,
    untrusted: [c.int.cert],
    expect: "bad_certificate",
    detail: "extendedKeyUsage without any purpose",
  },
  {
    name: "lenient: an empty extendedKeyUsage still allows no purpose",
    leaf: p.emptyEku.cert,
    untrusted: [c.int.cert],
    store: lenient,
    expect: "wrong_purpose",
  },
  {
    name: "profile: a negative serial number",
    leaf: p.serialNegative.cert,
    untrusted: [c.int.cert],
    expect: "bad_certificate",
    detail: "serial number that is negative",
  },
  {
    name: "profile: a zero serial number",
    leaf: p.serialZero.cert,
    untrusted: [c.int.cert],
    expect: "bad_certificate",
    detail: "is zero",
  },
  {
    name: "profile: a serial number of 21 octets",
    leaf: p.serialLong.cert,
    untrusted: [c.int.cert],
    expect: "bad_certificate",
    detail: "21 octets",
  },
  {
    name: "profile: a serial number of 20 octets (sign octet aside)",
    leaf: p.serialTwenty.cert,
    untrusted: [c.int.cert],
    expect: "ok",
  },
  {
    name: "lenient: a negative serial number",
    leaf: p.serialNegative.cert,
    untrusted: [c.int.cert],
    store: lenient,
    expect: "ok",
  },
  {
    name: "lenient: a serial number of 21 octets",
    leaf: p.serialLong.cert,
    untrusted: [c.int.cert],
    store: lenient,
    expect: "ok",
  },
  // depth
  {
    name: "depth: a self-issued (re-keyed) CA does not count toward maxDepth",
    leaf: p.underRollover.cert,
    untrusted: [p.rolloverInt.cert, c.int.cert],
    store: p.profileStores.acmeDepth3,
    expect: "ok",
  },
  {
    name: "depth: too deep is chain_too_long, even when a same-named impostor fails its signature",
    leaf: p.underDeepB.cert,
    untrusted: [p.deepB.cert, p.deepAImpostor.cert, p.deepA.cert],
    store: p.profileStores.acmeDepth3,
    expect: "chain_too_long",
    detail: "more than 3 certificates",
  },
  // a CA is never a device identity, whatever the profile
  {
    name: "lenient: a CA certificate is never a device identity",
    leaf: c.caLeaf.cert,
    untrusted: [c.int.cert],
    store: lenient,
    expect: "wrong_purpose",
  },
]);

test("validity is inclusive and has one-second resolution", () => {
  const notAfter = c.good.cert.notAfter.getTime();
  const at = (ms: number) => verifyChain(c.good.cert, [c.int.cert], c.stores.acme, new Date(ms));
  assert.ok(at(notAfter).ok);
  assert.ok(at(notAfter + 5).ok, "12:00:00.005 is within a notAfter of 12:00:00");
  assert.ok(at(notAfter + 999).ok);
  const expired = at(notAfter + 1000);
  assert.equal(expired.ok ? "ok" : expired.reason, "certificate_expired");
  const notBefore = c.good.cert.notBefore.getTime();
  assert.ok(at(notBefore).ok);
  const early = at(notBefore - 1);
  assert.equal(early.ok ? "ok" : early.reason, "certificate_not_yet_valid");
});

test("a trust store whose own certificates break the profile is refused, naming the certificate", () => {
  const refused = (pem: string, options = {}) => {
    try {
      compileTrustStore("t", pem, options);
      return undefined;
    } catch (err) {
      assert.ok(err instanceof TrustStoreError);
      return err;
    }
  };
  const noSki = refused(p.rootNoSki.pem);
  assert.equal(noSki?.reason, "bad_certificate");
  assert.match(noSki?.message ?? "", /"CN=No-SKI Root,O=Acme" is a CA without a subjectKeyIdentifier/);
  assert.equal(refused(p.rootNoSki.pem, { profile: "lenient" }), undefined, "lenient: SKI may be absent");
  const bc = refused(p.rootNonCriticalBc.pem, { profile: "lenient" });
  assert.equal(bc?.reason, "bad_certificate");
  assert.match(bc?.message ?? "", /basicConstraints is not critical/);
  const notCa = refused(c.good.pem);
  assert.equal(notCa?.reason, "untrusted_issuer");
  const malformed = refused(p.ncIpBadLength.pem);
  assert.equal(malformed?.reason, "bad_certificate");
  assert.match(
    malformed?.message ?? "",
    /malformed certificate "CN=NC bad IP CA,O=Acme": iPAddress of 5 bytes/,
  );
  const option = refused(c.root.pem, { rsaPublicExponents: [4] });
  assert.equal(option?.reason, undefined, "a wrong option is not a certificate's fault");
});

test("isPreferredDnsName: letters, digits, hyphens; a leading wildcard label; nothing else", () => {
  for (const ok of ["example.com", "a-b.example.com", "localhost", "*.example.com", "1.example.com"]) {
    assert.ok(isPreferredDnsName(ok), ok);
  }
  for (const bad of [
    "",
    "bad_name.example.com",
    "example.com.",
    "-a.example.com",
    "a..b",
    "a.*.b",
    "*",
    " ",
  ]) {
    assert.equal(isPreferredDnsName(bad), false, JSON.stringify(bad));
  }
});
