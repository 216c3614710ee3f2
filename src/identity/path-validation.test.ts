// verifyChain over the in-process corpus: one row per outcome, each asserting the exact reason code.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Certificate } from "./certificate.ts";
import { BudgetSpent, DEFAULT_CHAIN_LIMITS, LINKS_PER_SIGNATURE_CHECK, WorkBudget } from "./limits.ts";
import { searchPath } from "./path-building.ts";
import { verifyChain } from "./path-validation.ts";
import type { ReasonCode } from "./reasons.ts";
import * as c from "./testing/corpus.ts";
import { mint, mintDevice, newKeys } from "./testing/mint.ts";
import type { TrustStore } from "./types.ts";

interface Row {
  readonly name: string;
  readonly leaf: Certificate;
  readonly untrusted?: readonly Certificate[];
  readonly store: TrustStore;
  /** Expected reason, or the expected path (subjects, leaf's issuer first) when it must validate. */
  readonly expect: ReasonCode | readonly Certificate[];
  /** Substring the deny detail must contain. */
  readonly detail?: string;
}

const rows: Row[] = [
  {
    name: "good chain, client sent the intermediate",
    leaf: c.good.cert,
    untrusted: [c.int.cert],
    store: c.stores.acme,
    expect: [c.int.cert, c.root.cert],
  },
  {
    name: "good chain, intermediate only in the store",
    leaf: c.good.cert,
    store: c.stores.acmeFull,
    expect: [c.int.cert, c.root.cert],
  },
  {
    name: "client also sent the root: the presented copy is the anchor",
    leaf: c.good.cert,
    untrusted: [c.int.cert, c.root.cert],
    store: c.stores.acme,
    expect: [c.int.cert, c.root.cert],
  },
  {
    name: "partial-chain store holding only the intermediate",
    leaf: c.good.cert,
    untrusted: [c.int.cert, c.root.cert],
    store: c.stores.acmeIntOnly,
    expect: [c.int.cert],
  },
  {
    name: "missing intermediate",
    leaf: c.good.cert,
    store: c.stores.acme,
    expect: "untrusted_issuer",
    detail: 'no issuer "CN=Acme Device CA,O=Acme" of "CN=device-001"',
  },
  {
    name: "wrong CA",
    leaf: c.otherDevice.cert,
    untrusted: [c.otherInt.cert],
    store: c.stores.acme,
    expect: "untrusted_issuer",
  },
  {
    name: "wrong CA even when the client sends its root",
    leaf: c.otherDevice.cert,
    untrusted: [c.otherInt.cert, c.otherRoot.cert],
    store: c.stores.acme,
    expect: "untrusted_issuer",
  },
  {
    name: "expired leaf",
    leaf: c.expiredLeaf.cert,
    untrusted: [c.int.cert],
    store: c.stores.acme,
    expect: "certificate_expired",
    detail: 'certificate "CN=device-expired" expired at 2026-04-27T00:00:00.000Z',
  },
  {
    name: "expired intermediate",
    leaf: c.underExpiredInt.cert,
    untrusted: [c.expiredInt.cert],
    store: c.stores.acme,
    expect: "certificate_expired",
    detail: "Acme Old Device CA",
  },
  {
    name: "not-yet-valid leaf",
    leaf: c.futureLeaf.cert,
    untrusted: [c.int.cert],
    store: c.stores.acme,
    expect: "certificate_not_yet_valid",
  },
  {
    name: "bad signature: right issuer name, other key",
    leaf: c.forged.cert,
    untrusted: [c.int.cert],
    store: c.stores.acme,
    expect: "bad_signature",
  },
  {
    name: "issuer is not a CA",
    leaf: c.underNonCa.cert,
    untrusted: [c.good.cert, c.int.cert],
    store: c.stores.acme,
    expect: "untrusted_issuer",
    detail: "is not a CA",
  },
  {
    name: "issuer keyUsage lacks keyCertSign",
    leaf: c.underCrlOnly.cert,
    untrusted: [c.crlOnlyInt.cert],
    store: c.stores.acme,
    expect: "untrusted_issuer",
    detail: "keyCertSign",
  },
  {
    name: "pathLen violation",
    leaf: c.underSubInt.cert,
    untrusted: [c.subInt.cert, c.int.cert],
    store: c.stores.acme,
    expect: "chain_too_long",
    detail: "allows 0 intermediate",
  },
  {
    name: "4-certificate chain within the default maxDepth",
    leaf: c.deepLeaf.cert,
    untrusted: [c.deep2.cert, c.deep1.cert],
    store: c.stores.acme,
    expect: [c.deep2.cert, c.deep1.cert, c.root.cert],
  },
  {
    name: "chain longer than maxDepth",
    leaf: c.deepLeaf.cert,
    untrusted: [c.deep2.cert, c.deep1.cert],
    store: c.stores.acmeShallow,
    expect: "chain_too_long",
  },
  {
    name: "leaf is a CA",
    leaf: c.caLeaf.cert,
    untrusted: [c.int.cert],
    store: c.stores.acme,
    expect: "wrong_purpose",
  },
  {
    name: "EKU serverAuth only, client store",
    leaf: c.serverOnly.cert,
    untrusted: [c.int.cert],
    store: c.stores.acme,
    expect: "wrong_purpose",
  },
  {
    name: "EKU serverAuth, server store",
    leaf: c.serverOnly.cert,
    untrusted: [c.int.cert],
    store: c.stores.acmeServer,
    expect: [c.int.cert, c.root.cert],
  },
  {
    name: "EKU clientAuth, server store",
    leaf: c.good.cert,
    untrusted: [c.int.cert],
    store: c.stores.acmeServer,
    expect: "wrong_purpose",
  },
  {
    // As OpenSSL judges a TLS client: anyExtendedKeyUsage does not stand in for clientAuth.
    name: "EKU anyExtendedKeyUsage alone",
    leaf: c.anyEku.cert,
    untrusted: [c.int.cert],
    store: c.stores.acme,
    expect: "wrong_purpose",
  },
  {
    name: "no EKU is allowed",
    leaf: c.noEku.cert,
    untrusted: [c.int.cert],
    store: c.stores.acme,
    expect: [c.int.cert, c.root.cert],
  },
  {
    name: "leaf keyUsage without digitalSignature",
    leaf: c.noDigitalSignature.cert,
    untrusted: [c.int.cert],
    store: c.stores.acme,
    expect: "wrong_purpose",
  },
  {
    name: "unknown critical extension",
    leaf: c.unknownCritical.cert,
    untrusted: [c.int.cert],
    store: c.stores.acme,
    expect: "bad_certificate",
    detail: "1.2.3.4.5.6.7",
  },
  {
    name: "a critical policyConstraints on a CA is refused: policies are not processed (fail closed)",
    leaf: c.underPolicyConstrained.cert,
    untrusted: [c.policyConstrainedInt.cert],
    store: c.stores.acme,
    expect: "bad_certificate",
    detail: "critical policyConstraints: policy processing is not supported",
  },
  {
    name: "nameConstraints enforced, not refused (more cases in path-rules.test.ts)",
    leaf: c.underConstrained.cert,
    untrusted: [c.constrainedInt.cert],
    store: c.stores.acme,
    expect: [c.constrainedInt.cert, c.root.cert],
  },
  {
    name: "cross-signed CA: first candidate expired, second works (backtracking)",
    leaf: c.underCross.cert,
    untrusted: [c.crossViaOld.cert, c.crossViaNew.cert],
    store: c.stores.cross,
    expect: [c.crossViaNew.cert, c.newRoot.cert],
  },
  {
    name: "cross-signed CA: only the expired candidate",
    leaf: c.underCross.cert,
    untrusted: [c.crossViaOld.cert],
    store: c.stores.cross,
    expect: "certificate_expired",
  },
  {
    name: "issuer loop",
    leaf: c.underLoop.cert,
    untrusted: [c.loopA.cert, c.loopB.cert],
    store: c.stores.acme,
    expect: "untrusted_issuer",
    detail: "loop",
  },
];

for (const row of rows) {
  test(`verifyChain: ${row.name}`, () => {
    const result = verifyChain(row.leaf, row.untrusted ?? [], row.store, c.NOW);
    if (typeof row.expect === "string") {
      assert.equal(result.ok, false, "expected a denial");
      if (result.ok) return;
      assert.equal(result.reason, row.expect, result.detail);
      if (row.detail) assert.ok(result.detail.includes(row.detail), result.detail);
    } else {
      assert.ok(result.ok, result.ok ? "" : `${result.reason}: ${result.detail}`);
      assert.deepEqual(
        result.path.map((cert) => cert.subject),
        row.expect.map((cert) => cert.subject),
      );
      assert.deepEqual(
        result.path.map((cert) => cert.fingerprint),
        row.expect.map((cert) => cert.fingerprint),
      );
      assert.equal(result.anchor, result.path.at(-1));
    }
  });
}

test("verifyChain: the presented root is replaced by the store's anchor object", () => {
  const result = verifyChain(c.good.cert, [c.int.cert, c.root.cert], c.stores.acme, c.NOW);
  assert.ok(result.ok);
  assert.equal(result.anchor, c.stores.acme.anchors[0]);
});

test("verifyChain: a mesh of same-named CAs stops at the link budget", async () => {
  // Five keys, each certified under the one name by every other key: every level offers 20 candidates.
  const keys = await Promise.all([1, 2, 3, 4, 5].map(() => newKeys()));
  const mesh: Certificate[] = [];
  for (const subjectKeys of keys) {
    for (const signer of keys) {
      if (signer === subjectKeys) continue;
      const m = await mint({
        subject: "CN=Mesh",
        keys: subjectKeys,
        signingKey: signer.privateKey,
        ca: true,
      });
      mesh.push(m.cert);
    }
  }
  const [first] = keys;
  assert.ok(first);
  const leaf = await mint({ subject: "CN=device-mesh", issuerName: "CN=Mesh", signingKey: first.privateKey });
  const result = verifyChain(leaf.cert, mesh, c.stores.acme, new Date());
  assert.equal(result.ok, false);
  // Even with every link accepted, the search gives up once the decision's link budget is spent.
  let links = 0;
  const budget = new WorkBudget();
  assert.throws(
    () =>
      searchPath(
        leaf.cert,
        mesh,
        c.stores.acme,
        {
          link: () => {
            links++;
            return undefined;
          },
          complete: () => undefined,
        },
        budget,
      ),
    BudgetSpent,
  );
  assert.equal(links, DEFAULT_CHAIN_LIMITS.maxSignatureChecks * LINKS_PER_SIGNATURE_CHECK);
  assert.equal(budget.spent?.limit, "maxSignatureChecks");
});

test("verifyChain: a re-keyed CA with the same name, old key in the store, new key sent", async () => {
  const rekeyed = await mint({
    subject: "O=Acme, CN=Acme Device CA",
    issuer: c.root,
    ca: true,
    notBefore: new Date(c.NOW.getTime() - 1000),
    notAfter: new Date(c.NOW.getTime() + 86_400_000),
  });
  const leaf = await mintDevice("device-rekeyed", rekeyed, {
    notBefore: new Date(c.NOW.getTime() - 1000),
    notAfter: new Date(c.NOW.getTime() + 86_400_000),
  });
  // The store's copy of the CA name has the old key: its signature check fails, the presented one works.
  const result = verifyChain(leaf.cert, [rekeyed.cert], c.stores.acmeFull, c.NOW);
  assert.ok(result.ok, result.ok ? "" : result.detail);
  assert.equal(result.path[0], rekeyed.cert);
});
