// compileTrustStore: anchors vs intermediates, partial-chain stores, and every way a CA file fails closed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parsePemBundle } from "./certificate.ts";
import * as c from "./testing/corpus.ts";
import { compileTrustStore, DEFAULT_MAX_DEPTH, TrustStoreError } from "./trust-store.ts";

test("self-issued CAs are anchors, others intermediates; defaults applied; duplicates dropped", () => {
  const store = compileTrustStore("acme", `# comment\n${c.root.pem}\n${c.int.pem}${c.root.pem}`);
  assert.equal(store.name, "acme");
  assert.deepEqual(
    store.anchors.map((x) => x.fingerprint),
    [c.root.cert.fingerprint],
  );
  assert.deepEqual(
    store.intermediates.map((x) => x.fingerprint),
    [c.int.cert.fingerprint],
  );
  assert.equal(store.maxDepth, DEFAULT_MAX_DEPTH);
  assert.equal(store.purpose, "client");
  assert.deepEqual(
    parsePemBundle(store.pem).map((x) => x.fingerprint),
    [c.root.cert.fingerprint, c.int.cert.fingerprint],
  );
  assert.ok(Object.isFrozen(store) && Object.isFrozen(store.anchors));
});

test("without any self-issued CA, the CAs held become anchors (partial-chain trust)", () => {
  const store = compileTrustStore("int-only", c.int.pem, { maxDepth: 4, purpose: "server" });
  assert.deepEqual(
    store.anchors.map((x) => x.fingerprint),
    [c.int.cert.fingerprint],
  );
  assert.equal(store.intermediates.length, 0);
  assert.equal(store.maxDepth, 4);
  assert.equal(store.purpose, "server");
});

const failures: [string, string, RegExp][] = [
  ["empty text", "", /no certificate found/],
  ["text without PEM", "just some words\n", /no certificate found/],
  [
    "garbage in a CERTIFICATE block",
    "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    /PEM block #1 does not parse/,
  ],
  [
    "non-base64 characters",
    "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n",
    /PEM block #1 is not valid base64/,
  ],
  ["a certificate that is not a CA", c.good.pem, /"CN=device-001" is not a CA/],
  ["a non-CA after a good CA", c.root.pem + c.good.pem, /not a CA/],
  ["a CA without keyCertSign", c.crlOnlyInt.pem, /without keyCertSign/],
  ["a truncated file", c.root.pem + c.int.pem.slice(0, 200), /not terminated/],
  [
    "another PEM type",
    `${c.root.pem}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`,
    /PEM block #2 is a "PRIVATE KEY"/,
  ],
];

for (const [name, text, message] of failures) {
  test(`compileTrustStore fails closed: ${name}`, () => {
    assert.throws(
      () => compileTrustStore("devices", text),
      (err: unknown) =>
        err instanceof TrustStoreError && message.test(err.message) && /"devices"/.test(err.message),
    );
  });
}

test("compileTrustStore refuses bad options", () => {
  assert.throws(() => compileTrustStore("s", c.root.pem, { maxDepth: 1 }), TrustStoreError);
  assert.throws(() => compileTrustStore("s", c.root.pem, { maxDepth: 2.5 }), TrustStoreError);
  assert.throws(() => compileTrustStore("s", c.root.pem, { notBeforeGraceMs: -1 }), TrustStoreError);
  assert.throws(() => compileTrustStore("s", c.root.pem, { notBeforeGraceMs: 3_600_001 }), TrustStoreError);
  assert.throws(() => compileTrustStore("s", c.root.pem, { notBeforeGraceMs: Number.NaN }), TrustStoreError);
  assert.throws(() => compileTrustStore("s", c.root.pem, { minRsaBits: 512 }), TrustStoreError);
});
