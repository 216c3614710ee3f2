// "Did you mean" for unknown config keys: the keys the schema knows at the same place, and the closest of
// them to what was written. A typo'd key (`clientAuht`) then explains the "missing" key it was meant to be,
// whose own error is dropped.
import type { z } from "zod";
import type { ConfigProblem } from "./errors.ts";

interface Def {
  readonly type: string;
  readonly shape?: Record<string, { def: Def }>;
  readonly element?: { def: Def };
  readonly innerType?: { def: Def };
  readonly in?: { def: Def };
  readonly options?: readonly { def: Def }[];
}

/** The object schemas reachable at `path` (through arrays, defaults, optionals, pipes and unions). */
function objectsAt(def: Def, path: readonly (string | number)[]): Def[] {
  const inner = def.innerType ?? def.in;
  if (inner) return objectsAt(inner.def, path);
  if (def.type === "union") return (def.options ?? []).flatMap((o) => objectsAt(o.def, path));
  const [head, ...rest] = path;
  if (head === undefined) return def.type === "object" ? [def] : [];
  if (def.type === "array" && typeof head === "number" && def.element)
    return objectsAt(def.element.def, rest);
  if (def.type === "object" && typeof head === "string" && def.shape?.[head]) {
    return objectsAt(def.shape[head].def, rest);
  }
  return [];
}

/** The keys the schema knows at `path`. */
export function knownKeysAt(schema: z.ZodType, path: readonly (string | number)[]): string[] {
  const defs = objectsAt((schema as unknown as { def: Def }).def, path);
  return [...new Set(defs.flatMap((d) => Object.keys(d.shape ?? {})))];
}

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions), case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const width = t.length + 1;
  const d = new Uint16Array((s.length + 1) * width);
  const at = (i: number, j: number) => d[i * width + j] ?? 0;
  for (let i = 0; i <= s.length; i++) d[i * width] = i;
  for (let j = 0; j <= t.length; j++) d[j] = j;
  for (let i = 1; i <= s.length; i++) {
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i * width + j] = v;
    }
  }
  return at(s.length, t.length);
}

/** The known key closest to `key`, if close enough to be a typo of it. */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  const limit = key.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of known) {
    const distance = editDistance(key, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

function valueAt(data: unknown, path: readonly (string | number)[]): unknown {
  let value = data;
  for (const part of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string | number, unknown>)[part];
  }
  return value;
}

const samePath = (a: readonly (string | number)[], b: readonly (string | number)[]) =>
  a.length === b.length && a.every((p, i) => p === b[i]);

/**
 * The schema's issues as problems: an unknown key says which known key it may be meant as; when that key
 * is absent from the document, the problems reported at it (it is "missing") are left out, explained.
 * Unknown-key problems come first: they are usually the cause of the others.
 */
export function schemaProblems(
  schema: z.ZodType,
  data: unknown,
  issues: readonly z.core.$ZodIssue[],
): ConfigProblem[] {
  const unknown: ConfigProblem[] = [];
  const explained: (string | number)[][] = [];
  for (const issue of issues) {
    if (issue.code !== "unrecognized_keys") continue;
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    const known = knownKeysAt(schema, path);
    const here = valueAt(data, path);
    for (const key of issue.keys) {
      const meant = closestKey(key, known);
      if (meant !== undefined && (here === null || typeof here !== "object" || !(meant in here))) {
        explained.push([...path, meant]);
      }
      unknown.push({
        path,
        message:
          meant === undefined ? `unknown key "${key}"` : `unknown key "${key}" (did you mean "${meant}"?)`,
      });
    }
  }
  const rest: ConfigProblem[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") continue;
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    if (explained.some((e) => samePath(e, path))) continue;
    rest.push({ path, message: issue.message });
  }
  return [...unknown, ...rest];
}
