// Compiles an auth policy (`routes[].auth`, `listeners[].mqtt.auth`): its trust stores resolved, its
// certificate matchers compiled, and the registry rules checked.
import { compileCertificateMatch, MatcherConfigError } from "../identity/matchers.ts";
import type { AuthPolicy, CertificateMatcher, TrustStore } from "../identity/types.ts";
import type { Problems } from "./compile-context.ts";
import type { FieldPath } from "./errors.ts";
import type { AuthPolicyConfig } from "./schema.ts";

export function compileAuthPolicy(
  spec: AuthPolicyConfig,
  id: string,
  at: FieldPath,
  storeRef: (name: string, path: FieldPath) => TrustStore | undefined,
  problems: Problems,
): AuthPolicy {
  const stores = spec.trustStores
    .map((name, j) => storeRef(name, [...at, "trustStores", j]))
    .filter((s): s is TrustStore => s !== undefined);
  let match: CertificateMatcher | undefined;
  if (spec.match) {
    try {
      match = compileCertificateMatch(spec.match, `${formatAt(at)}.match`);
    } catch (err) {
      if (!(err instanceof MatcherConfigError)) throw err;
      problems.add([...at, "match", ...err.field], err.problem);
    }
  }
  if (spec.groups && spec.registry !== "required") {
    // Groups come from the registry: a device it does not know would otherwise pass unchecked.
    problems.add([...at, "groups"], "groups need `registry: required`");
  }
  return Object.freeze({
    id,
    trustStores: stores,
    match,
    enforce: spec.enforce,
    registry: spec.registry,
    groups: spec.groups,
  });
}

/** `routes[3].auth` from ["routes", 3, "auth"]. */
function formatAt(at: FieldPath): string {
  return at
    .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join("");
}
