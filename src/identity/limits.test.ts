// Bounded work: the chain limits (count, size, names), the per-decision budget of signature checks and
// name-constraint comparisons (chain_too_complex), the key policy checked before a key is used, and
// candidate issuers ruled out by key identifier before any signature is tried.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Certificate } from "./certificate.ts";
import { decide } from "./decide.ts";
import { type ChainLimits, DEFAULT_CHAIN_LIMITS, WorkBudget } from "./limits.ts";
import { verifyChain } from "./path-validation.ts";
import * as c from "./testing/corpus.ts";
import * as p from "./testing/corpus-profile.ts";
import { type Minted, mint, mintCa, mintDevice, nameConstraints, newKeys } from "./testing/mint.ts";
import { compileTrustStore } from "./trust-store.ts";
import type { AuthPolicy, Decision } from "./types.ts";

const policy: AuthPolicy = { id: "acme", trustStores: [c.stores.acme] };
const limits = (overrides: Partial<ChainLimits>): ChainLimits => ({ ...DEFAULT_CHAIN_LIMITS, ...overrides });
const denial = (d: Decision) => {
  assert.equal(d.allow, false, "expected a denial");
  return d.allow ? { reason: "", detail: "", limit: undefined } : d;
};

/** Counts signature verifications made with `cert` as the signed certificate. */
function countVerifies(cert: Certificate): { readonly count: number } {
  const counter = { count: 0 };
  const original = cert.node.verify.bind(cert.node);
  cert.node.verify = (key) => {
    counter.count++;
    return original(key);
  };
  return counter;
}

/** `n` CA certificates all named like the device CA, with other keys and no key identifiers. */
async function sameNamedCas(n: number): Promise<Minted[]> {
  return Promise.all(
    Array.from({ length: n }, () => mintCa("O=Acme, CN=Acme Device CA", c.root, { ...c.VALID, ski: false })),
  );
}

test("maxCertificates and maxBytes: over the limit before any work is chain_too_complex", async () => {
  const cas = await sameNamedCas(9);
  const identity = c.identityOf(c.good.cert, [c.int.cert, ...cas.map((m) => m.cert)]);
  const tooMany = denial(decide(identity, policy, [], c.NOW));
  assert.equal(tooMany.reason, "chain_too_complex");
  assert.match(tooMany.detail, /presented 11 certificates, more than chainLimits.maxCertificates \(10\)/);
  assert.equal(tooMany.limit, "maxCertificates");
  const nine = c.identityOf(c.good.cert, [c.int.cert, ...cas.slice(0, 8).map((m) => m.cert)]);
  assert.equal(decide(nine, policy, [], c.NOW).allow, true, "10 certificates are within the default");

  const small = limits({ maxBytes: 600 });
  const tooBig = denial(decide(c.identityOf(c.good.cert, [c.int.cert]), policy, [], c.NOW, small));
  assert.equal(tooBig.reason, "chain_too_complex");
  assert.match(tooBig.detail, /bytes of certificates, more than chainLimits.maxBytes \(600\)/);
  assert.equal(tooBig.limit, "maxBytes");
});

test("an identity the TLS layer found over the limits before parsing is chain_too_complex", () => {
  const overLimits = { limit: "maxCertificates" as const, detail: "the client presented 60 certificates" };
  const identity = { ...c.identityOf(undefined), overLimits };
  const d = denial(decide(identity, policy, [], c.NOW));
  assert.equal(d.reason, "chain_too_complex");
  assert.equal(d.detail, "the client presented 60 certificates");
  assert.equal(d.limit, "maxCertificates");
});

test("maxNamesPerCertificate: a presented certificate with too many names", async () => {
  const names = Array.from({ length: 65 }, (_, i) => `d${i}.example.com`);
  const leaf = await mintDevice("many-names", c.int, { ...c.VALID, sanDns: names });
  const d = denial(decide(c.identityOf(leaf.cert, [c.int.cert]), policy, [], c.NOW));
  assert.equal(d.reason, "chain_too_complex");
  assert.match(
    d.detail,
    /carries 66 names and name constraints, more than chainLimits.maxNamesPerCertificate \(64\)/,
  );
  const allowed = decide(
    c.identityOf(leaf.cert, [c.int.cert]),
    policy,
    [],
    c.NOW,
    limits({ maxNamesPerCertificate: 66 }),
  );
  assert.equal(allowed.allow, true);
});

test("maxSignatureChecks: many same-named issuers spend the budget; the default finishes the search", async () => {
  const cas = await sameNamedCas(8);
  const stranger = await newKeys();
  const leaf = await mint({
    ...c.VALID,
    subject: "CN=attacker",
    issuer: c.int,
    signingKey: stranger.privateKey,
    aki: false,
  });
  const identity = c.identityOf(
    leaf.cert,
    cas.map((m) => m.cert),
  );
  const spent = denial(decide(identity, policy, [], c.NOW, limits({ maxSignatureChecks: 4 })));
  assert.equal(spent.reason, "chain_too_complex");
  assert.match(spent.detail, /gave up after 4 signature checks \(chainLimits.maxSignatureChecks\)/);
  assert.equal(spent.limit, "maxSignatureChecks");
  const fresh = await mint({
    ...c.VALID,
    subject: "CN=attacker",
    issuer: c.int,
    signingKey: stranger.privateKey,
    aki: false,
  });
  const finished = denial(
    decide(
      c.identityOf(
        fresh.cert,
        cas.map((m) => m.cert),
      ),
      policy,
      [],
      c.NOW,
    ),
  );
  assert.equal(finished.reason, "bad_signature");
});

test("the budget is shared by every trust store one decision tries", async () => {
  const cas = await sameNamedCas(3);
  const stranger = await newKeys();
  const leaf = await mint({
    ...c.VALID,
    subject: "CN=x",
    issuer: c.int,
    signingKey: stranger.privateKey,
    aki: false,
  });
  const stores = [c.stores.acme, c.stores.acmeFull, c.stores.acmeShallow];
  const checks = countVerifies(leaf.cert);
  const d = denial(
    decide(
      c.identityOf(
        leaf.cert,
        cas.map((m) => m.cert),
      ),
      { id: "three", trustStores: stores },
      [],
      c.NOW,
      limits({ maxSignatureChecks: 3 }),
    ),
  );
  assert.equal(d.reason, "chain_too_complex");
  assert.ok(checks.count <= 3, `${checks.count} signature checks`);
});

test("maxNameChecks: names × subtrees are counted; over the budget is chain_too_complex", async () => {
  const subtrees = Array.from({ length: 40 }, (_, i) => ({ dns: `zone${i}.example.com` }));
  const nc = await mintCa("O=Acme, CN=Many NC CA", c.root, {
    ...c.VALID,
    extensions: [nameConstraints({ permitted: subtrees })],
  });
  const names = Array.from({ length: 40 }, (_, i) => `host.zone${i}.example.com`);
  const leaf = await mintDevice("many-nc", nc, { ...c.VALID, sanDns: names });
  const identity = c.identityOf(leaf.cert, [nc.cert]);
  assert.equal(decide(identity, policy, [], c.NOW).allow, true, "1,600 comparisons are within the default");
  const d = denial(decide(identity, policy, [], c.NOW, limits({ maxNameChecks: 1000 })));
  assert.equal(d.reason, "chain_too_complex");
  assert.match(d.detail, /gave up after 1000 name-constraint comparisons \(chainLimits.maxNameChecks\)/);
  assert.equal(d.limit, "maxNameChecks");
});

test("key policy before the key is used: a huge RSA exponent is refused without a signature check", () => {
  const checks = countVerifies(p.underHugeExponent.cert);
  const result = verifyChain(p.underHugeExponent.cert, [p.hugeExponentCa.cert], c.stores.acme, c.NOW);
  assert.equal(result.ok ? "ok" : result.reason, "weak_algorithm");
  assert.match(result.ok ? "" : result.detail, /public exponent a 3000-bit number is not one of 65537/);
  assert.equal(checks.count, 0, "the costly key was never used");
});

test("key policy: RSA exponent, RSA size and curves are the trust store's", () => {
  const check = (leaf: Certificate, store = c.stores.acme) => {
    const r = verifyChain(leaf, [c.int.cert], store, c.NOW);
    return r.ok ? "ok" : r.reason;
  };
  assert.equal(check(p.rsaE3Leaf.cert), "weak_algorithm");
  assert.equal(check(p.rsaE3Leaf.cert, p.profileStores.rsaE3), "ok");
  assert.equal(check(p.rsa4096Leaf.cert), "ok");
  assert.equal(check(p.rsa4096Leaf.cert, p.profileStores.rsaMax3072), "weak_algorithm");
  assert.equal(check(p.p384Leaf.cert), "ok");
  assert.equal(check(p.p384Leaf.cert, p.profileStores.p256Only), "weak_algorithm");
});

test("candidate issuers: a same-named CA whose key identifier differs is never tried", async () => {
  const impostor = await mintCa("O=Acme, CN=Acme Device CA", c.root, c.VALID);
  const leaf = await mintDevice("by-key-id", c.int, c.VALID);
  const checks = countVerifies(leaf.cert);
  const result = verifyChain(leaf.cert, [impostor.cert, c.int.cert], c.stores.acme, c.NOW);
  assert.ok(result.ok);
  assert.equal(checks.count, 1, "only the issuer whose subjectKeyIdentifier matches was verified");
  const orphan = await mintDevice("orphan", impostor, c.VALID);
  const none = verifyChain(orphan.cert, [c.int.cert], c.stores.acme, c.NOW);
  assert.equal(none.ok ? "ok" : none.reason, "untrusted_issuer");
  assert.match(none.ok ? "" : none.detail, /whose subjectKeyIdentifier matches its authorityKeyIdentifier/);
});

test("WorkBudget: once spent, every later step of the decision stops at once", () => {
  const budget = new WorkBudget(limits({ maxSignatureChecks: 1 }));
  budget.signature();
  assert.throws(() => budget.signature(), /gave up after 1 signature checks/);
  assert.throws(() => budget.names(1), /gave up after 1 signature checks/);
  const result = verifyChain(c.good.cert, [c.int.cert], c.stores.acme, c.NOW, budget);
  assert.equal(result.ok ? "ok" : result.reason, "chain_too_complex");
});

test("maxNamesPerCertificate counts what the client chose, not the trust store's CAs in the peer chain", async () => {
  const subtrees = Array.from({ length: 100 }, (_, i) => ({ dns: `zone${i}.example.com` }));
  const root = await mintCa("O=Big NC, CN=Big NC Root", undefined, {
    ...c.VALID,
    extensions: [nameConstraints({ permitted: subtrees })],
  });
  const store = compileTrustStore("big-nc", root.pem);
  const leaf = await mintDevice("in-zone", root, { ...c.VALID, sanDns: ["a.zone7.example.com"] });
  // Node's peer chain carries the store root it chained to, as if the client had sent it.
  const identity = c.identityOf(leaf.cert, [root.cert]);
  const d = decide(identity, { id: "big-nc", trustStores: [store] }, [store], c.NOW);
  assert.equal(d.allow, true, d.allow ? "" : d.detail);
  const stranger = await mintCa("O=Big NC, CN=Big NC Root", undefined, {
    ...c.VALID,
    extensions: [nameConstraints({ permitted: subtrees })],
  });
  const presentedByClient = decide(
    c.identityOf(leaf.cert, [stranger.cert]),
    { id: "big-nc", trustStores: [store] },
    [store],
    c.NOW,
  );
  assert.equal(presentedByClient.allow ? "allow" : presentedByClient.reason, "chain_too_complex");
});
