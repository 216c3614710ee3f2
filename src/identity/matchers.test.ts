// compileCertificateMatch: every criterion accepted and refused with its exact detail, AND across criteria,
// OR within a list, anchored regexes, literal globs, and the config mistakes refused at compile time.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { CertificateMatchConfig } from "../config/schema.ts";
import type { Certificate } from "./certificate.ts";
import { compileCertificateMatch, MatcherConfigError } from "./matchers.ts";
import * as c from "./testing/corpus.ts";
import { mint } from "./testing/mint.ts";
import { MAX_PATTERN_LENGTH } from "./value-matchers.ts";
import { x509 } from "./x509.ts";

const fleet = await mint({
  subject:
    "CN=sensor-17, O=Acme, OU=Fleet A, OU=Sensors, C=DE, 2.5.4.5=SN-42, E=sensor-17@acme.example, 1.3.6.1.4.1.99999.1=custom",
  issuer: c.int,
  notBefore: c.int.cert.notBefore,
  notAfter: c.int.cert.notAfter,
  extensions: [
    new x509.SubjectAlternativeNameExtension([
      { type: "url", value: "urn:device:fleet-17" },
      { type: "url", value: "urn:acme:sensor:17" },
      { type: "dns", value: "Sensor-17.Fleet.Acme.Example" },
      { type: "email", value: "ops@acme.example" },
    ]),
  ],
});
const leaf = fleet.cert;
const acmePath = [c.int.cert, c.root.cert];
const colons = (hex: string) => hex.toUpperCase().replace(/(..)(?!$)/g, "$1:");
const subjectDenied = (detail: string) => ({ reason: "subject_not_allowed", detail });

const rows: {
  desc: string;
  spec: CertificateMatchConfig;
  leaf?: Certificate;
  path?: readonly Certificate[];
  expected: { reason: string; detail: string } | undefined;
}[] = [
  { desc: "no criteria match anything", spec: {}, expected: undefined },
  // subject
  { desc: "subject CN exact", spec: { subject: { CN: ["sensor-17"] } }, expected: undefined },
  {
    desc: "subject attribute names are case-insensitive",
    spec: { subject: { cn: ["sensor-17"] } },
    expected: undefined,
  },
  {
    desc: "subject CN exact mismatch",
    spec: { subject: { CN: ["sensor-18"] } },
    expected: subjectDenied('subject CN "sensor-17" matches none of [exact sensor-18]'),
  },
  {
    desc: "subject values are case-sensitive",
    spec: { subject: { O: ["acme"] } },
    expected: subjectDenied('subject O "Acme" matches none of [exact acme]'),
  },
  { desc: "subject OU: any of several values", spec: { subject: { OU: ["Sensors"] } }, expected: undefined },
  { desc: "subject OU glob ?", spec: { subject: { OU: [{ glob: "Fleet ?" }] } }, expected: undefined },
  {
    desc: "subject OU glob mismatch lists every value",
    spec: { subject: { OU: [{ glob: "Fleet B*" }] } },
    expected: subjectDenied('subject OU "Fleet A", "Sensors" match none of [glob Fleet B*]'),
  },
  {
    desc: "subject serialNumber regex",
    spec: { subject: { serialNumber: [{ regex: "SN-\\d+" }] } },
    expected: undefined,
  },
  {
    desc: "regexes are anchored at both ends",
    spec: { subject: { serialNumber: [{ regex: "SN-\\d" }] } },
    expected: subjectDenied('subject serialNumber "SN-42" matches none of [regex SN-\\d]'),
  },
  {
    desc: "an unanchored-looking regex still matches the whole value",
    spec: { subject: { CN: [{ regex: "sensor" }] } },
    expected: subjectDenied('subject CN "sensor-17" matches none of [regex sensor]'),
  },
  {
    desc: "subject emailAddress",
    spec: { subject: { emailAddress: ["sensor-17@acme.example"] } },
    expected: undefined,
  },
  { desc: "subject by bare dotted OID", spec: { subject: { "2.5.4.10": ["Acme"] } }, expected: undefined },
  {
    desc: "subject by OID.<dotted OID>",
    spec: { subject: { "OID.1.3.6.1.4.1.99999.1": ["custom"] } },
    expected: undefined,
  },
  { desc: "subject C", spec: { subject: { C: ["DE"], CN: [{ glob: "sensor-*" }] } }, expected: undefined },
  {
    desc: "subject attribute absent",
    spec: { subject: { ST: ["Bavaria"] } },
    expected: subjectDenied("certificate has no subject ST; required one matching [exact Bavaria]"),
  },
  {
    desc: "OR within a list",
    spec: { subject: { CN: ["device-001", { regex: "nope" }, { glob: "sensor-1?" }] } },
    expected: undefined,
  },
  {
    desc: "glob: everything but * and ? is literal",
    spec: { subject: { CN: [{ glob: "sensor.17" }, { glob: "sensor-1[7]" }] } },
    expected: subjectDenied('subject CN "sensor-17" matches none of [glob sensor.17, glob sensor-1[7]]'),
  },
  // SAN
  {
    desc: "SAN URI glob: one of several SANs",
    spec: { san: { uri: [{ glob: "urn:device:fleet-*" }] } },
    expected: undefined,
  },
  {
    desc: "SAN URI glob mismatch",
    spec: { san: { uri: [{ glob: "urn:device:fleet-*" }] } },
    leaf: c.good.cert,
    expected: subjectDenied('SAN URI "urn:device:device-001" matches none of [glob urn:device:fleet-*]'),
  },
  {
    desc: "SAN URI absent",
    spec: { san: { uri: ["urn:device:device-no-san"] } },
    leaf: c.noSan.cert,
    expected: subjectDenied(
      "certificate has no SAN URI; required one matching [exact urn:device:device-no-san]",
    ),
  },
  {
    desc: "SAN DNS exact ignores case",
    spec: { san: { dns: ["sensor-17.fleet.acme.example"] } },
    expected: undefined,
  },
  {
    desc: "SAN DNS glob ignores case",
    spec: { san: { dns: [{ glob: "*.fleet.acme.example" }] } },
    expected: undefined,
  },
  {
    desc: "SAN DNS regex ignores case",
    spec: { san: { dns: [{ regex: "[a-z0-9-]+\\.fleet\\.acme\\.example" }] } },
    expected: undefined,
  },
  {
    desc: "SAN DNS mismatch",
    spec: { san: { dns: [{ glob: "*.other.example" }] } },
    expected: subjectDenied('SAN DNS "Sensor-17.Fleet.Acme.Example" matches none of [glob *.other.example]'),
  },
  { desc: "SAN email exact", spec: { san: { email: ["ops@acme.example"] } }, expected: undefined },
  {
    desc: "SAN email is case-sensitive",
    spec: { san: { email: ["OPS@acme.example"] } },
    expected: subjectDenied('SAN email "ops@acme.example" matches none of [exact OPS@acme.example]'),
  },
  // pins
  { desc: "SPKI pin", spec: { spki: [c.good.cert.spkiSha256, leaf.spkiSha256] }, expected: undefined },
  {
    desc: "SPKI pin mismatch",
    spec: { spki: [c.good.cert.spkiSha256] },
    expected: subjectDenied(`SPKI pin ${leaf.spkiSha256} is not among the 1 pinned keys`),
  },
  {
    desc: "fingerprint with colons, upper case",
    spec: { fingerprints: [colons(leaf.fingerprint)] },
    expected: undefined,
  },
  {
    desc: "fingerprint mismatch (same DN, other certificate)",
    spec: { fingerprints: [c.good.cert.fingerprint] },
    leaf: c.twin.cert,
    expected: subjectDenied(`fingerprint ${c.twin.cert.fingerprint} is not among the 1 allowed fingerprints`),
  },
  // intermediates
  {
    desc: "intermediate in the path",
    spec: { intermediates: [c.int.cert.fingerprint] },
    expected: undefined,
  },
  {
    desc: "the anchor counts too",
    spec: { intermediates: [colons(c.root.cert.fingerprint)] },
    expected: undefined,
  },
  {
    desc: "intermediate not in the path",
    spec: { intermediates: [c.otherInt.cert.fingerprint, c.deep1.cert.fingerprint] },
    expected: {
      reason: "ca_not_allowed_for_route",
      detail: `path ["${c.int.cert.subject}", "${c.root.cert.subject}"] goes through none of the 2 allowed intermediates`,
    },
  },
  // AND across criteria
  {
    desc: "all criteria hold",
    spec: {
      intermediates: [c.int.cert.fingerprint],
      spki: [leaf.spkiSha256],
      subject: { CN: [{ glob: "sensor-*" }], O: ["Acme"] },
      san: { uri: [{ regex: "urn:device:fleet-\\d+" }], dns: [{ glob: "*.acme.example" }] },
    },
    expected: undefined,
  },
  {
    desc: "one failing criterion denies",
    spec: { subject: { CN: [{ glob: "sensor-*" }] }, san: { uri: ["urn:device:fleet-99"] } },
    expected: subjectDenied(
      'SAN URI "urn:device:fleet-17", "urn:acme:sensor:17" match none of [exact urn:device:fleet-99]',
    ),
  },
  {
    desc: "the CA criterion speaks first",
    spec: { subject: { CN: ["nobody"] }, intermediates: [c.otherInt.cert.fingerprint] },
    path: [c.int.cert, c.root.cert],
    expected: {
      reason: "ca_not_allowed_for_route",
      detail: `path ["${c.int.cert.subject}", "${c.root.cert.subject}"] goes through none of the 1 allowed intermediates`,
    },
  },
];

for (const row of rows) {
  test(`match: ${row.desc}`, () => {
    const matcher = compileCertificateMatch(row.spec, "routes[0].auth.match");
    assert.deepEqual(matcher(row.leaf ?? leaf, row.path ?? acmePath), row.expected);
  });
}

const W = "routes[0].auth.match";
const badSpecs: { desc: string; spec: CertificateMatchConfig; message: string | RegExp }[] = [
  {
    desc: "invalid regex",
    spec: { san: { uri: [{ regex: "urn:(device" }] } },
    message:
      /^routes\[0\]\.auth\.match\.san\.uri\[0\]\.regex: invalid regex "urn:\(device": .*Unterminated group/,
  },
  {
    desc: "a regex escaping its anchors",
    spec: { subject: { CN: ["x", { regex: "a)|(b" }] } },
    message: /^routes\[0\]\.auth\.match\.subject\.CN\[1\]\.regex: invalid regex "a\)\|\(b": /,
  },
  {
    desc: "nested quantifier",
    spec: { san: { dns: [{ regex: "([a-z]+)+\\.example" }] } },
    message: `${W}.san.dns[0].regex: regex "([a-z]+)+\\\\.example" repeats a group that contains a quantifier (([a-z]+)+), which can take exponential time; rewrite it without nested repetition`,
  },
  {
    desc: "too long a regex",
    spec: { subject: { CN: [{ regex: "a".repeat(MAX_PATTERN_LENGTH + 1) }] } },
    message: `${W}.subject.CN[0].regex: regex is ${MAX_PATTERN_LENGTH + 1} characters long; at most ${MAX_PATTERN_LENGTH} are allowed`,
  },
  {
    desc: "too long a glob",
    spec: { subject: { CN: [{ glob: "a".repeat(MAX_PATTERN_LENGTH + 1) }] } },
    message: `${W}.subject.CN[0].glob: glob is longer than ${MAX_PATTERN_LENGTH} characters`,
  },
  {
    desc: "unknown subject attribute",
    spec: { subject: { Foo: ["x"] } },
    message: `${W}.subject.Foo: unknown subject attribute "Foo"; expected one of CN, O, OU, C, L, ST, street, title, serialNumber, emailAddress, DC, UID or OID.<dotted OID>`,
  },
  {
    desc: "malformed OID",
    spec: { subject: { "OID.2.5.04": ["x"] } },
    message: /subject\.OID\.2\.5\.04: unknown subject attribute/,
  },
  {
    desc: "empty matcher list",
    spec: { san: { email: [] } },
    message: `${W}.san.email: expected at least one matcher`,
  },
  {
    desc: "empty exact value",
    spec: { subject: { CN: [""] } },
    message: `${W}.subject.CN[0]: expected a non-empty value`,
  },
  {
    desc: "bad fingerprint",
    spec: { fingerprints: ["abcd"] },
    message: `${W}.fingerprints[0]: expected a SHA-256 fingerprint in hex, got "abcd"`,
  },
  {
    desc: "bad intermediate fingerprint",
    spec: { intermediates: [c.int.cert.fingerprint, "zz"] },
    message: `${W}.intermediates[1]: expected a SHA-256 fingerprint in hex, got "zz"`,
  },
  {
    desc: "bad SPKI pin",
    spec: { spki: ["abc="] },
    message: `${W}.spki[0]: expected a base64 SHA-256 SPKI pin, got "abc="`,
  },
];

for (const row of badSpecs) {
  test(`match config error: ${row.desc}`, () => {
    assert.throws(
      () => compileCertificateMatch(row.spec, W),
      (err: unknown) => {
        assert.ok(err instanceof MatcherConfigError);
        if (typeof row.message === "string") assert.equal(err.message, row.message);
        else assert.match(err.message, row.message);
        return true;
      },
    );
  });
}

test("match config error: field and problem are separate for the config compiler", () => {
  try {
    compileCertificateMatch({ san: { uri: [{ regex: "(a*)*" }] } }, W);
    assert.fail("expected a MatcherConfigError");
  } catch (err) {
    assert.ok(err instanceof MatcherConfigError);
    assert.deepEqual(err.field, ["san", "uri", 0, "regex"]);
    assert.match(err.problem, /^regex "\(a\*\)\*" repeats a group/);
  }
});

test("glob: many stars against a long value stays fast (no exponential backtracking)", async () => {
  const long = await mint({ subject: "CN=long", issuer: c.int, sanUris: [`urn:${"a".repeat(5000)}`] });
  const matcher = compileCertificateMatch({ san: { uri: [{ glob: "*a*a*a*a*a*a*a*a*a*a*b" }] } }, W);
  const started = performance.now();
  assert.equal(matcher(long.cert, acmePath)?.reason, "subject_not_allowed");
  // Backtracking would take ages on 5,000 characters and ten stars; a linear match takes well under 1 ms.
  // The bound only separates the two, generously (a loaded machine must not fail it).
  assert.ok(performance.now() - started < 5_000, "glob took too long");
});
