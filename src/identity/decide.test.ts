// decide and recheckValidity: the verdict per policy, the 403 for a CA of another route, per-request re-check.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decide, recheckValidity } from "./decide.ts";
import * as c from "./testing/corpus.ts";
import * as r from "./testing/corpus-rules.ts";
import type { AuthPolicy, Decision } from "./types.ts";

const acmeOnly: AuthPolicy = { id: "acme-only", trustStores: [c.stores.acme] };
const known = [c.stores.acme, c.stores.other];

function denied(decision: Decision) {
  assert.equal(decision.allow, false, "expected a denial");
  if (decision.allow) throw new Error("unreachable");
  return decision;
}

function allowed(decision: Decision) {
  assert.ok(decision.allow, decision.allow ? "" : `${decision.reason}: ${decision.detail}`);
  return decision;
}

test("decide: allows a good chain with the device identity and the path's validity window", () => {
  const decision = allowed(decide(c.identityOf(c.good.cert, [c.int.cert]), acmeOnly, known, c.NOW));
  assert.equal(decision.identity.deviceId, "device-001");
  assert.equal(decision.identity.trustStore, "acme");
  assert.equal(decision.identity.leaf, c.good.cert);
  assert.deepEqual(
    decision.identity.path.map((cert) => cert.subject),
    [c.int.cert.subject, c.root.cert.subject],
  );
  const certs = [c.good.cert, c.int.cert, c.root.cert];
  assert.equal(decision.notBefore.getTime(), Math.max(...certs.map((x) => x.notBefore.getTime())));
  assert.equal(decision.notAfter.getTime(), Math.min(...certs.map((x) => x.notAfter.getTime())));
});

test("decide: deviceId is undefined without a urn:device SAN URI", () => {
  const decision = allowed(decide(c.identityOf(c.noSan.cert, [c.int.cert]), acmeOnly, known, c.NOW));
  assert.equal(decision.identity.deviceId, undefined);
});

test("decide: stores are tried in the policy's order, first success wins", () => {
  const policy: AuthPolicy = { id: "both", trustStores: [c.stores.other, c.stores.acmeFull, c.stores.acme] };
  const decision = allowed(decide(c.identityOf(c.good.cert), policy, known, c.NOW));
  assert.equal(decision.identity.trustStore, "acme-full");
});

test("decide: no certificate", () => {
  const decision = denied(decide(c.identityOf(undefined), acmeOnly, known, c.NOW));
  assert.equal(decision.reason, "no_certificate");
});

test("decide: a certificate that did not parse is bad_certificate", () => {
  const identity = { ...c.identityOf(undefined), parseError: "malformed certificate: bad DER" };
  const decision = denied(decide(identity, acmeOnly, known, c.NOW));
  assert.equal(decision.reason, "bad_certificate");
  assert.match(decision.detail, /bad DER/);
});

test("decide: a chain valid only under another route's store is ca_not_allowed_for_route", () => {
  const identity = c.identityOf(c.otherDevice.cert, [c.otherInt.cert]);
  const decision = denied(decide(identity, acmeOnly, known, c.NOW));
  assert.equal(decision.reason, "ca_not_allowed_for_route");
  assert.match(decision.detail, /"other"/);
  // The same chain with no such store known is simply untrusted.
  assert.equal(denied(decide(identity, acmeOnly, [c.stores.acme], c.NOW)).reason, "untrusted_issuer");
});

test("decide: a chain the route's own store judges gets that verdict, even if another store (with notBeforeGrace) would accept it", () => {
  // One CA in two stores: "acme" without grace (the route's), "grace" with 5 minutes.
  const identity = c.identityOf(r.slightlyEarly.cert, [c.int.cert]);
  const known = [c.stores.acme, r.ruleStores.grace];
  const decision = denied(decide(identity, acmeOnly, known, c.NOW));
  assert.equal(decision.reason, "certificate_not_yet_valid");
  assert.match(decision.detail, /trust store "acme"/);
  // The route with grace accepts it; a store unknown to the route still gets the 403.
  const grace: AuthPolicy = { id: "grace", trustStores: [r.ruleStores.grace] };
  allowed(decide(identity, grace, known, c.NOW));
  const other = c.identityOf(c.otherDevice.cert, [c.otherInt.cert]);
  assert.equal(
    denied(decide(other, grace, [...known, c.stores.other], c.NOW)).reason,
    "ca_not_allowed_for_route",
  );
});

test("decide: the most specific reason across stores wins, detail names store and certificate", () => {
  const policy: AuthPolicy = { id: "p", trustStores: [c.stores.other, c.stores.acme] };
  const decision = denied(decide(c.identityOf(c.expiredLeaf.cert, [c.int.cert]), policy, known, c.NOW));
  assert.equal(decision.reason, "certificate_expired");
  assert.equal(
    decision.detail,
    'certificate "CN=device-expired" expired at 2026-04-27T00:00:00.000Z (trust store "acme")',
  );
});

test("decide: a policy without trust stores denies", () => {
  const decision = denied(
    decide(c.identityOf(c.good.cert, [c.int.cert]), { id: "none", trustStores: [] }, [], c.NOW),
  );
  assert.equal(decision.reason, "untrusted_issuer");
});

test("recheckValidity: the same object inside the window, the matching deny outside", () => {
  const decision = allowed(decide(c.identityOf(c.good.cert, [c.int.cert]), acmeOnly, known, c.NOW));
  assert.equal(recheckValidity(decision, c.NOW), decision);
  assert.equal(recheckValidity(decision, decision.notAfter), decision);

  // Certificate times have one-second resolution and validity is inclusive: the whole last second is in.
  assert.equal(recheckValidity(decision, new Date(decision.notAfter.getTime() + 999)), decision);
  const after = denied(recheckValidity(decision, new Date(decision.notAfter.getTime() + 1000)));
  assert.equal(after.reason, "certificate_expired");
  assert.match(after.detail, /expired at/);

  const before = denied(recheckValidity(decision, new Date(decision.notBefore.getTime() - 1)));
  assert.equal(before.reason, "certificate_not_yet_valid");

  const deny = denied(decide(c.identityOf(undefined), acmeOnly, known, c.NOW));
  assert.equal(recheckValidity(deny, c.NOW), deny);
});
