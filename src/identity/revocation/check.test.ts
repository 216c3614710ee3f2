// checkRevocation: modes off/soft/strict and scopes leaf/chain over a scripted view, with exact outcomes.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Certificate } from "../certificate.ts";
import { checkRevocation, revocationTargets } from "./check.ts";
import { device, store, testPki } from "./testing/pki.ts";
import type { RevocationStatus, RevocationView } from "./types.ts";

const pki = await testPki("Check");
const leaf = (await device("dev-1", pki.int)).cert;
const path = [pki.int.cert, pki.root.cert];
const now = new Date();

const REVOKED: RevocationStatus = {
  status: "revoked",
  source: "crl",
  revokedAt: new Date("2026-01-02T03:04:05.000Z"),
  reason: "keyCompromise",
};
const UNKNOWN: RevocationStatus = { status: "unknown", detail: "no CRL" };
const GOOD: RevocationStatus = { status: "good", source: "ocsp" };

/** A view answering per certificate; anything not listed is good. */
function view(answers: Map<Certificate, RevocationStatus>): RevocationView & { asked: string[] } {
  const asked: string[] = [];
  return {
    epoch: 1,
    asked,
    status(cert, issuer) {
      asked.push(`${cert.commonName}<${issuer.commonName}`);
      return answers.get(cert) ?? GOOD;
    },
  };
}

test("scopes: leaf asks about the leaf only; chain about every certificate below the anchor", () => {
  const names = (scope: "leaf" | "chain") =>
    revocationTargets(leaf, path, scope).map(([c, i]) => `${c.commonName}<${i.commonName}`);
  assert.deepEqual(names("leaf"), ["dev-1<Check Device CA"]);
  assert.deepEqual(names("chain"), ["dev-1<Check Device CA", "Check Device CA<Check Root CA"]);
});

test("off never asks", () => {
  const v = view(new Map([[leaf, REVOKED]]));
  assert.deepEqual(checkRevocation(leaf, path, store(pki, { mode: "off" }), v, now), {
    ok: true,
    softFailures: [],
  });
  assert.deepEqual(v.asked, []);
});

test("revoked denies in soft and strict, with who, when, why and the source", () => {
  for (const mode of ["soft", "strict"] as const) {
    const result = checkRevocation(leaf, path, store(pki, { mode }), view(new Map([[leaf, REVOKED]])), now);
    assert.deepEqual(result, {
      ok: false,
      reason: "certificate_revoked",
      detail:
        'certificate "CN=dev-1" was revoked at 2026-01-02T03:04:05.000Z (keyCompromise), per CRL of "CN=Check Device CA,O=Check" (trust store "devices")',
    });
  }
});

test("unknown: strict denies revocation_unknown, soft allows and reports it", () => {
  const answers = new Map([[leaf, UNKNOWN]]);
  const strict = checkRevocation(leaf, path, store(pki, { mode: "strict" }), view(answers), now);
  assert.deepEqual(strict, {
    ok: false,
    reason: "revocation_unknown",
    detail: 'revocation status of "CN=dev-1" is unknown: no CRL (trust store "devices", strict revocation)',
  });
  const soft = checkRevocation(leaf, path, store(pki, { mode: "soft" }), view(answers), now);
  assert.deepEqual(soft, { ok: true, softFailures: ['revocation status of "CN=dev-1" is unknown: no CRL'] });
});

test("chain scope: a revoked intermediate denies, and beats an unknown leaf; leaf scope does not see it", () => {
  const answers = new Map<Certificate, RevocationStatus>([
    [leaf, UNKNOWN],
    [pki.int.cert, REVOKED],
  ]);
  const chain = checkRevocation(leaf, path, store(pki, { mode: "soft", scope: "chain" }), view(answers), now);
  assert.equal(chain.ok, false);
  assert.equal(!chain.ok && chain.reason, "certificate_revoked");
  assert.match(
    !chain.ok ? chain.detail : "",
    /"CN=Check Device CA,O=Check" was revoked .* per CRL of "CN=Check Root CA,O=Check"/,
  );
  const leafOnly = checkRevocation(
    leaf,
    path,
    store(pki, { mode: "soft", scope: "leaf" }),
    view(answers),
    now,
  );
  assert.equal(leafOnly.ok, true);
  assert.equal(leafOnly.ok && leafOnly.softFailures.length, 1);
});

test("chain scope, all good: allowed without soft failures", () => {
  const v = view(new Map());
  assert.deepEqual(checkRevocation(leaf, path, store(pki, { mode: "strict", scope: "chain" }), v, now), {
    ok: true,
    softFailures: [],
  });
  assert.equal(v.asked.length, 2);
});
