// verifyChain over the rules corpus: version rules, intermediate EKU, algorithm policy and notBeforeGrace,
// one row per case, each asserting the exact reason code (name constraints: name-constraints.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { decide, recheckValidity } from "./decide.ts";
import * as c from "./testing/corpus.ts";
import * as r from "./testing/corpus-rules.ts";
import { runRows } from "./testing/rows.ts";

runRows([
  // version rules
  {
    name: "v1 certificate as an intermediate",
    leaf: r.underV1Int.cert,
    untrusted: [r.v1Int.cert],
    expect: "untrusted_issuer",
    detail: "X.509 v1",
  },
  {
    name: "v1 leaf with extensions",
    leaf: r.v1WithExtensions.cert,
    untrusted: [c.int.cert],
    expect: "bad_certificate",
    detail: "v1 but carries extensions",
  },
  // intermediate EKU
  {
    name: "intermediate EKU serverAuth only, client store",
    leaf: r.underServerOnlyInt.cert,
    untrusted: [r.serverOnlyInt.cert],
    expect: "wrong_purpose",
    detail: "intermediate CA",
  },
  {
    name: "intermediate EKU clientAuth, client store",
    leaf: r.underClientInt.cert,
    untrusted: [r.clientInt.cert],
    expect: "ok",
  },
  // algorithm policy
  {
    name: "ECDSA with SHA-1 signature",
    leaf: r.ecdsaSha1Leaf.cert,
    untrusted: [c.int.cert],
    expect: "weak_algorithm",
    detail: "SHA-1",
  },
  {
    name: "RSA PKCS#1 v1.5 with SHA-1 signature",
    leaf: r.rsaSha1Leaf.cert,
    untrusted: [r.rsaInt.cert],
    expect: "weak_algorithm",
    detail: "sha1WithRSAEncryption",
  },
  {
    name: "RSA with MD5 signature",
    leaf: r.rsaMd5Leaf.cert,
    untrusted: [r.rsaInt.cert],
    expect: "weak_algorithm",
    detail: "MD5",
  },
  {
    name: "RSA with SHA-256 signature",
    leaf: r.rsaSha256Leaf.cert,
    untrusted: [r.rsaInt.cert],
    expect: "ok",
  },
  {
    name: "RSA 1024 leaf key",
    leaf: r.rsa1024Leaf.cert,
    untrusted: [c.int.cert],
    expect: "weak_algorithm",
    detail: "RSA 1024",
  },
  { name: "RSA 2048 leaf key", leaf: r.rsa2048Leaf.cert, untrusted: [c.int.cert], expect: "ok" },
  {
    name: "RSA 2048 leaf key, store minRsaBits 3072",
    leaf: r.rsa2048Leaf.cert,
    untrusted: [c.int.cert],
    store: r.ruleStores.strictRsa,
    expect: "weak_algorithm",
    detail: "3072",
  },
  {
    name: "RSA 1024 intermediate key",
    leaf: r.underRsa1024Int.cert,
    untrusted: [r.rsa1024Int.cert],
    expect: "weak_algorithm",
    detail: 'certificate "CN=RSA 1024 CA,O=Acme" has a RSA 1024 key',
  },
  {
    name: "secp256k1 leaf key",
    leaf: r.secp256k1Leaf.cert,
    untrusted: [c.int.cert],
    expect: "weak_algorithm",
    detail: "secp256k1",
  },
  {
    name: "Ed448 leaf key",
    leaf: r.ed448Leaf.cert,
    untrusted: [c.int.cert],
    expect: "weak_algorithm",
    detail: "Ed448",
  },
  { name: "P-384 leaf key", leaf: r.p384Leaf.cert, untrusted: [c.int.cert], expect: "ok" },
  { name: "Ed25519 leaf key", leaf: r.ed25519Leaf.cert, untrusted: [c.int.cert], expect: "ok" },
  {
    name: "SHA-1 self-signed root still anchors",
    leaf: r.underSha1Root.cert,
    untrusted: [],
    store: r.ruleStores.legacy,
    expect: "ok",
  },
  // notBeforeGrace
  {
    name: "notBefore 2 min ahead, grace 5 min",
    leaf: r.slightlyEarly.cert,
    untrusted: [c.int.cert],
    store: r.ruleStores.grace,
    expect: "ok",
  },
  {
    name: "notBefore 10 min ahead, grace 5 min",
    leaf: r.tooEarly.cert,
    untrusted: [c.int.cert],
    store: r.ruleStores.grace,
    expect: "certificate_not_yet_valid",
    detail: "notBeforeGrace of 300s",
  },
  {
    name: "notBefore 2 min ahead, no grace",
    leaf: r.slightlyEarly.cert,
    untrusted: [c.int.cert],
    expect: "certificate_not_yet_valid",
  },
]);

test("notBeforeGrace: the allow says how much grace it used, and recheckValidity honours the grace", () => {
  const policy = { id: "grace", trustStores: [r.ruleStores.grace] };
  const decision = decide(c.identityOf(r.slightlyEarly.cert, [c.int.cert]), policy, [], c.NOW);
  assert.ok(decision.allow, decision.allow ? "" : decision.detail);
  assert.equal(decision.graceUsedMs, 2 * 60_000);
  assert.equal(decision.notBefore.getTime(), r.slightlyEarly.cert.notBefore.getTime() - r.GRACE_MS);
  assert.equal(recheckValidity(decision, c.NOW), decision);
  assert.equal(recheckValidity(decision, new Date(c.NOW.getTime() - 2 * 60_000)), decision);
  const early = recheckValidity(decision, new Date(c.NOW.getTime() - 4 * 60_000));
  assert.equal(early.allow, false);
  if (!early.allow) {
    assert.equal(early.reason, "certificate_not_yet_valid");
    assert.match(early.detail, /less notBeforeGrace/);
  }
  // An ordinary allow carries no graceUsedMs at all.
  const plain = decide(c.identityOf(c.good.cert, [c.int.cert]), policy, [], c.NOW);
  assert.ok(plain.allow && !("graceUsedMs" in plain));
});
