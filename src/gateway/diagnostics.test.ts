// diagnosticsReport: what an installer sees for an allowed, a denied, a wrong-clock and a certificate-less
// connection; JSON-ready, and nothing but public data.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decide } from "../identity/decide.ts";
import * as c from "../identity/testing/corpus.ts";
import type { AuthPolicy, ConnectionIdentity } from "../identity/types.ts";
import { type DiagnosticsInput, diagnosticsReport, summarizeCertificate } from "./diagnostics.ts";

const policy: AuthPolicy = { id: "echo", trustStores: [c.stores.acme] };
const known = [c.stores.acme, c.stores.other];
const socket = { protocol: "TLSv1.3", cipher: "TLS_AES_128_GCM_SHA256", alpn: "h2", authorized: true };
const listener = { name: "main", clientAuth: "application" };

function input(identity: ConnectionIdentity, extra: Partial<DiagnosticsInput> = {}): DiagnosticsInput {
  return {
    identity,
    listener,
    decisions: [{ policy: policy.id, decision: decide(identity, policy, known, c.NOW) }],
    socket,
    now: c.NOW,
    ...extra,
  };
}

test("diagnostics: an allowed device shows its chain, path, trust store and validity", () => {
  const identity = c.identityOf(c.good.cert, [c.int.cert]);
  const report = diagnosticsReport(input(identity));
  assert.equal(report.serverTime, "2026-06-01T00:00:00.000Z");
  assert.deepEqual(report.listener, listener);
  assert.deepEqual(report.connection, {
    sni: "localhost",
    resumed: false,
    tlsProtocol: "TLSv1.3",
    cipher: "TLS_AES_128_GCM_SHA256",
    alpn: "h2",
    openssl: { authorized: true, error: null },
  });
  assert.equal(report.certificate.sent, true);
  assert.equal(report.certificate.chainFingerprint, identity.chainFingerprint);
  assert.deepEqual(
    report.certificate.chain.map((s) => s.subject),
    ["CN=device-001", c.int.cert.subject],
  );
  assert.deepEqual(report.certificate.chain[0], {
    subject: "CN=device-001",
    issuer: c.int.cert.subject,
    serialNumber: c.good.cert.serialNumber,
    fingerprint: c.good.cert.fingerprint,
    spkiSha256: c.good.cert.spkiSha256,
    notBefore: "2026-05-02T00:00:00.000Z",
    notAfter: "2027-06-01T00:00:00.000Z",
    isCA: false,
    san: { dns: [], uri: ["urn:device:device-001"], email: [], ip: [] },
  });
  assert.deepEqual(report.validity, {
    notBefore: "2026-05-02T00:00:00.000Z",
    notAfter: "2027-06-01T00:00:00.000Z",
    secondsUntilNotAfter: 365 * 86_400,
    expired: false,
    notBeforeInFuture: false,
    secondsUntilNotBefore: 0,
  });
  assert.equal(report.decisions.length, 1);
  const [d] = report.decisions;
  assert.equal(d?.allow, true);
  assert.equal(d?.policy, "echo");
  assert.equal(d?.trustStore, "acme");
  assert.equal(d?.deviceId, "device-001");
  assert.deepEqual(d?.path, [summarizeCertificate(c.int.cert), summarizeCertificate(c.root.cert)]);
  assert.equal(d?.validUntil, "2027-06-01T00:00:00.000Z");
  assert.equal(d?.reason, undefined);
});

const denials: {
  desc: string;
  identity: ConnectionIdentity;
  reason: string;
  validity: Partial<NonNullable<ReturnType<typeof diagnosticsReport>["validity"]>> | null;
}[] = [
  {
    desc: "an expired device",
    identity: c.identityOf(c.expiredLeaf.cert, [c.int.cert]),
    reason: "certificate_expired",
    validity: { expired: true, notBeforeInFuture: false, secondsUntilNotAfter: -35 * 86_400 },
  },
  {
    desc: "a device whose clock is behind (notBefore in the future)",
    identity: c.identityOf(c.futureLeaf.cert, [c.int.cert]),
    reason: "certificate_not_yet_valid",
    validity: { expired: false, notBeforeInFuture: true, secondsUntilNotBefore: 10 * 86_400 },
  },
  {
    desc: "a device of another route's CA",
    identity: c.identityOf(c.otherDevice.cert, [c.otherInt.cert]),
    reason: "ca_not_allowed_for_route",
    validity: { expired: false, notBeforeInFuture: false },
  },
  {
    desc: "no certificate",
    identity: c.identityOf(undefined),
    reason: "no_certificate",
    validity: null,
  },
];

for (const row of denials) {
  test(`diagnostics: ${row.desc}`, () => {
    const report = diagnosticsReport(
      input(row.identity, {
        socket: {
          protocol: "TLSv1.2",
          authorized: false,
          authorizationError: "CERT_HAS_EXPIRED",
          alpn: false,
        },
      }),
    );
    const [d] = report.decisions;
    assert.equal(d?.allow, false);
    assert.equal(d?.reason, row.reason);
    assert.ok(typeof d?.detail === "string" && d.detail.length > 0);
    assert.equal(d?.path, undefined);
    assert.equal(d?.trustStore, undefined);
    // Without a certificate there is no OpenSSL verdict on one to show.
    const error = row.identity.leaf === undefined ? null : "CERT_HAS_EXPIRED";
    assert.deepEqual(report.connection.openssl, { authorized: false, error });
    assert.equal(report.connection.alpn, null);
    assert.equal(report.connection.cipher, null);
    if (row.validity === null) assert.equal(report.validity, null);
    else
      for (const [k, v] of Object.entries(row.validity))
        assert.deepEqual(report.validity?.[k as "expired"], v, k);
  });
}

test("diagnostics: no certificate, an unparsable one, and one over the chain limits", () => {
  const none = diagnosticsReport(input(c.identityOf(undefined)));
  assert.deepEqual(none.certificate, {
    sent: false,
    parseError: null,
    overLimits: null,
    chainFingerprint: null,
    chain: [],
  });
  const over = { limit: "maxCertificates" as const, detail: "the client presented 61 certificates" };
  const tooMany = diagnosticsReport(input({ ...c.identityOf(undefined), overLimits: over }));
  assert.equal(tooMany.certificate.sent, true);
  assert.equal(tooMany.certificate.overLimits, over.detail);
  assert.equal(tooMany.decisions[0]?.reason, "chain_too_complex");
  const bad = diagnosticsReport(input({ ...c.identityOf(undefined), parseError: "malformed certificate" }));
  assert.deepEqual(bad.certificate, {
    sent: true,
    parseError: "malformed certificate",
    overLimits: null,
    chainFingerprint: null,
    chain: [],
  });
  assert.equal(bad.decisions[0]?.reason, "bad_certificate");
});

test("diagnostics: several policies, resumed session, JSON round trip, nothing but public data", () => {
  const identity = { ...c.identityOf(c.good.cert, [c.int.cert]), resumed: true, sni: undefined };
  const other: AuthPolicy = { id: "other-only", trustStores: [c.stores.other] };
  const report = diagnosticsReport(
    input(identity, {
      decisions: [
        { policy: "echo", decision: decide(identity, policy, known, c.NOW) },
        { policy: "other-only", decision: decide(identity, other, known, c.NOW) },
      ],
    }),
  );
  assert.equal(report.connection.resumed, true);
  assert.equal(report.connection.sni, null);
  assert.deepEqual(
    report.decisions.map((d) => [d.policy, d.allow, d.reason]),
    [
      ["echo", true, undefined],
      ["other-only", false, "ca_not_allowed_for_route"],
    ],
  );
  const json = JSON.stringify(report);
  assert.deepEqual(JSON.parse(json), report, "the report is not plain JSON data");
  assert.ok(!json.includes("PRIVATE"), "private key material in the report");
  assert.ok(!json.includes(c.good.cert.der.toString("base64").slice(0, 40)), "raw certificate in the report");
});

test("diagnostics, hideReasons: whether each policy allows, never why (no reason, OpenSSL error, validity, store)", () => {
  // An expired device, and a device the listener accepts but the route refuses (another route's CA).
  const expired = c.identityOf(c.expiredLeaf.cert, [c.int.cert]);
  const other = c.identityOf(c.otherDevice.cert, [c.otherInt.cert]);
  const listenerPolicy: AuthPolicy = { id: "listener:main", trustStores: known };
  const failed = { ...socket, authorized: false, authorizationError: "CERT_HAS_EXPIRED" };
  for (const identity of [expired, other]) {
    const report = diagnosticsReport(
      input(identity, {
        socket: failed,
        hideReasons: true,
        decisions: [
          { policy: listenerPolicy.id, decision: decide(identity, listenerPolicy, known, c.NOW) },
          { policy: policy.id, decision: decide(identity, policy, known, c.NOW) },
        ],
      }),
    );
    assert.equal(report.connection.openssl.error, null);
    assert.equal(report.validity, null);
    assert.equal(report.certificate.sent, true);
    for (const d of report.decisions) assert.deepEqual(Object.keys(d).sort(), ["allow", "policy"]);
    assert.equal(report.decisions.at(-1)?.allow, false);
    const json = JSON.stringify(report);
    assert.doesNotMatch(json, /CERT_HAS_EXPIRED|"expired"|"reason"|"detail"|"trustStore"|"path"|"other"/);
  }
  const bad = diagnosticsReport(
    input({ ...c.identityOf(undefined), parseError: "malformed certificate" }, { hideReasons: true }),
  );
  assert.equal(bad.certificate.parseError, null);
});

test("diagnostics: without a certificate, OpenSSL's error (nothing was judged) is not shown", () => {
  const failed = { ...socket, authorized: false, authorizationError: "UNABLE_TO_GET_ISSUER_CERT" };
  const none = diagnosticsReport(input(c.identityOf(undefined), { socket: failed }));
  assert.deepEqual(none.connection.openssl, { authorized: false, error: null });
  const expired = diagnosticsReport(
    input(c.identityOf(c.expiredLeaf.cert, [c.int.cert]), {
      socket: { ...failed, authorizationError: "CERT_HAS_EXPIRED" },
    }),
  );
  assert.equal(expired.connection.openssl.error, "CERT_HAS_EXPIRED", "shown when a certificate was judged");
});
