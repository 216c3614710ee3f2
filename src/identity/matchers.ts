// Route policy certificate matchers: compiles a route's `auth.match` once (regexes compiled, pins and
// fingerprints normalised, every mistake reported with its field) into a CertificateMatcher that says which
// criterion a certificate fails. All present criteria must hold; within one list, any entry may match.
import type { CertificateMatchConfig, MatcherConfig } from "../config/schema.ts";
import { type Certificate, normalizeFingerprint } from "./certificate.ts";
import type { ReasonCode } from "./reasons.ts";
import type { CertificateMatcher } from "./types.ts";
import { compileValueMatcher, type ValueMatcher } from "./value-matchers.ts";
import { x509 } from "./x509.ts";

export type MatcherField = readonly (string | number)[];

/** A mistake in a route's `match`: `field` is relative to it, `problem` says what is wrong. */
export class MatcherConfigError extends Error {
  override name = "MatcherConfigError";
  readonly field: MatcherField;
  readonly problem: string;

  constructor(where: string, field: MatcherField, problem: string) {
    let path = where;
    for (const part of field) path += typeof part === "number" ? `[${part}]` : `.${part}`;
    super(`${path}: ${problem}`);
    this.field = field;
    this.problem = problem;
  }
}

/** Subject attributes by the short names operators know (OpenSSL's), to their OIDs. */
const SUBJECT_ATTRIBUTES: Record<string, string> = {
  CN: "2.5.4.3",
  O: "2.5.4.10",
  OU: "2.5.4.11",
  C: "2.5.4.6",
  L: "2.5.4.7",
  ST: "2.5.4.8",
  street: "2.5.4.9",
  title: "2.5.4.12",
  serialNumber: "2.5.4.5",
  emailAddress: "1.2.840.113549.1.9.1",
  DC: "0.9.2342.19200300.100.1.25",
  UID: "0.9.2342.19200300.100.1.1",
};
const ATTRIBUTES_BY_LOWER = new Map(Object.keys(SUBJECT_ATTRIBUTES).map((k) => [k.toLowerCase(), k]));
const OID = /^[0-2](\.(0|[1-9]\d*))+$/;

type Fail = (field: MatcherField, problem: string) => never;
type Failure = { readonly reason: ReasonCode; readonly detail: string };
type Criterion = (leaf: Certificate, path: readonly Certificate[]) => Failure | undefined;

function compileList(
  specs: readonly MatcherConfig[],
  fold: boolean,
  field: MatcherField,
  fail: Fail,
): readonly ValueMatcher[] {
  if (specs.length === 0) fail(field, "expected at least one matcher");
  return specs.map((spec, i) =>
    compileValueMatcher(spec, fold, (rest, problem) => fail([...field, i, ...rest], problem)),
  );
}

const quoted = (values: readonly string[]) => values.map((v) => JSON.stringify(v)).join(", ");
const labels = (list: readonly ValueMatcher[]) => `[${list.map((m) => m.label).join(", ")}]`;

/** A criterion over a multi-valued field: some value must match some matcher. */
function valuesCriterion(
  what: string,
  values: (leaf: Certificate) => readonly string[],
  list: readonly ValueMatcher[],
): Criterion {
  return (leaf) => {
    const have = values(leaf);
    if (have.some((v) => list.some((m) => m.test(v)))) return undefined;
    const detail =
      have.length === 0
        ? `certificate has no ${what}; required one matching ${labels(list)}`
        : `${what} ${quoted(have)} ${have.length === 1 ? "matches" : "match"} none of ${labels(list)}`;
    return { reason: "subject_not_allowed", detail };
  };
}

/** The leaf's subject attributes by OID, read from its subject DER once per certificate. */
const subjects = new WeakMap<Certificate, { name: x509.Name | undefined; byOid: Map<string, string[]> }>();

function subjectValues(leaf: Certificate, oid: string): readonly string[] {
  let entry = subjects.get(leaf);
  if (entry === undefined) {
    let name: x509.Name | undefined;
    try {
      name = new x509.Name(leaf.subjectDer);
    } catch {
      // Unreadable: no attribute is found, so every subject criterion fails (closed).
    }
    entry = { name, byOid: new Map() };
    subjects.set(leaf, entry);
  }
  let values = entry.byOid.get(oid);
  if (values === undefined) {
    values = entry.name?.getField(oid) ?? [];
    entry.byOid.set(oid, values);
  }
  return values;
}

/** `CN`, `cn`, `2.5.4.3` or `OID.2.5.4.3` (the config's keys must start with a letter) → display name, OID. */
function subjectAttribute(key: string, fail: Fail): { display: string; oid: string } {
  const known = ATTRIBUTES_BY_LOWER.get(key.toLowerCase());
  if (known !== undefined) return { display: known, oid: SUBJECT_ATTRIBUTES[known] ?? "" };
  const oid = /^oid\./i.test(key) ? key.slice(4) : key;
  if (OID.test(oid)) return { display: oid, oid };
  return fail(
    ["subject", key],
    `unknown subject attribute "${key}"; expected one of ${Object.keys(SUBJECT_ATTRIBUTES).join(", ")} or OID.<dotted OID>`,
  );
}

const SPKI_PIN = /^[A-Za-z0-9+/]{43}=$/;

function fingerprintSet(values: readonly string[], field: string, fail: Fail): ReadonlySet<string> {
  if (values.length === 0) fail([field], "expected at least one fingerprint");
  return new Set(
    values.map((v, i) => {
      const hex = normalizeFingerprint(v);
      return hex ?? fail([field, i], `expected a SHA-256 fingerprint in hex, got "${v}"`);
    }),
  );
}

const SAN_KINDS = [
  { key: "uri", what: "SAN URI", fold: false, values: (c: Certificate) => c.sanUris },
  { key: "dns", what: "SAN DNS", fold: true, values: (c: Certificate) => c.sanDns },
  { key: "email", what: "SAN email", fold: false, values: (c: Certificate) => c.sanEmails },
] as const;

/**
 * Compiles a route's `match`; `where` (e.g. `routes[2].auth.match`) prefixes error messages. Criteria are
 * checked CA first, then the leaf's pins and names, so a detail names the most basic mismatch.
 */
export function compileCertificateMatch(spec: CertificateMatchConfig, where: string): CertificateMatcher {
  const fail: Fail = (field, problem) => {
    throw new MatcherConfigError(where, field, problem);
  };
  const criteria: Criterion[] = [];

  if (spec.intermediates !== undefined) {
    const allowed = fingerprintSet(spec.intermediates, "intermediates", fail);
    criteria.push((_leaf, path) => {
      if (path.some((ca) => allowed.has(ca.fingerprint))) return undefined;
      const names = quoted(path.map((ca) => ca.subject));
      const detail = `path [${names}] goes through none of the ${allowed.size} allowed intermediates`;
      return { reason: "ca_not_allowed_for_route", detail };
    });
  }
  if (spec.fingerprints !== undefined) {
    const allowed = fingerprintSet(spec.fingerprints, "fingerprints", fail);
    criteria.push((leaf) =>
      allowed.has(leaf.fingerprint)
        ? undefined
        : {
            reason: "subject_not_allowed",
            detail: `fingerprint ${leaf.fingerprint} is not among the ${allowed.size} allowed fingerprints`,
          },
    );
  }
  if (spec.spki !== undefined) {
    if (spec.spki.length === 0) fail(["spki"], "expected at least one SPKI pin");
    spec.spki.forEach((pin, i) => {
      if (!SPKI_PIN.test(pin)) fail(["spki", i], `expected a base64 SHA-256 SPKI pin, got "${pin}"`);
    });
    const pins = new Set(spec.spki);
    criteria.push((leaf) =>
      pins.has(leaf.spkiSha256)
        ? undefined
        : {
            reason: "subject_not_allowed",
            detail: `SPKI pin ${leaf.spkiSha256} is not among the ${pins.size} pinned keys`,
          },
    );
  }
  for (const [key, specs] of Object.entries(spec.subject ?? {})) {
    const { display, oid } = subjectAttribute(key, fail);
    const list = compileList(specs, false, ["subject", key], fail);
    criteria.push(valuesCriterion(`subject ${display}`, (leaf) => subjectValues(leaf, oid), list));
  }
  for (const kind of SAN_KINDS) {
    const specs = spec.san?.[kind.key];
    if (specs === undefined) continue;
    const list = compileList(specs, kind.fold, ["san", kind.key], fail);
    criteria.push(valuesCriterion(kind.what, kind.values, list));
  }

  return (leaf, path) => {
    for (const criterion of criteria) {
      const failure = criterion(leaf, path);
      if (failure !== undefined) return failure;
    }
    return undefined;
  };
}
