// Value matchers of route policies: an exact string, a glob or an anchored regex, compiled once. Regexes are
// screened so that a config cannot make a decision take exponential time: bounded length, no nested repetition.
import type { MatcherConfig } from "../config/schema.ts";

/** Longer patterns are refused: a regex runs on every uncached decision, so it must stay cheap to run. */
export const MAX_PATTERN_LENGTH = 512;

export interface ValueMatcher {
  /** How the matcher reads in a deny detail, e.g. `glob urn:device:fleet-*`. */
  readonly label: string;
  readonly test: (value: string) => boolean;
}

/** Reports a mistake at `field` (relative to the matcher) and does not return. */
export type PatternFail = (field: readonly (string | number)[], problem: string) => never;

/** `*` any run (also empty), `?` one character, the rest literal; linear in practice, never backtracks wildly. */
function globTest(pattern: string, fold: boolean): (value: string) => boolean {
  const p = Array.from(fold ? pattern.toLowerCase() : pattern);
  return (value) => {
    const s = Array.from(fold ? value.toLowerCase() : value);
    let pi = 0;
    let si = 0;
    let star = -1;
    let mark = 0;
    while (si < s.length) {
      const pc = p[pi];
      if (pc === "*") {
        star = pi++;
        mark = si;
      } else if (pc !== undefined && (pc === "?" || pc === s[si])) {
        pi++;
        si++;
      } else if (star >= 0) {
        pi = star + 1;
        si = ++mark;
      } else {
        return false;
      }
    }
    while (p[pi] === "*") pi++;
    return pi === p.length;
  };
}

interface Quantifier {
  readonly length: number;
  /** Matches a varying number of times (`*`, `+`, `?`, `{1,3}`): a source of backtracking. */
  readonly variable: boolean;
  /** May match more than once. */
  readonly repeats: boolean;
}

function quantifierAt(p: string, i: number): Quantifier | undefined {
  const c = p[i];
  let q: Quantifier | undefined;
  if (c === "*" || c === "+") q = { length: 1, variable: true, repeats: true };
  else if (c === "?") q = { length: 1, variable: true, repeats: false };
  else if (c === "{") {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
    if (m) {
      const min = Number(m[1]);
      const max = m[2] === undefined ? min : m[3] === "" ? Number.POSITIVE_INFINITY : Number(m[3]);
      q = { length: m[0].length, variable: max > min, repeats: max > 1 };
    }
  }
  // A trailing `?` makes the quantifier lazy; it is part of it, not a quantifier of its own.
  return q && p[i + q.length] === "?" ? { ...q, length: q.length + 1 } : q;
}

/** Index just past a character class starting at `i` (`[`). */
function classEnd(p: string, i: number): number {
  let j = i + 1;
  if (p[j] === "^") j++;
  while (j < p.length && p[j] !== "]") j += p[j] === "\\" ? 2 : 1;
  return j + 1;
}

/** Index of the first character inside a group starting at `i` (`(`), past `?:`, `?=`, `?<name>`… */
function groupBodyStart(p: string, i: number): number {
  const j = i + 1;
  if (p[j] !== "?") return j;
  const k = p[j + 1];
  if (k === ":" || k === "=" || k === "!") return j + 2;
  if (k !== "<") return j + 1;
  if (p[j + 2] === "=" || p[j + 2] === "!") return j + 3;
  const close = p.indexOf(">", j);
  return close < 0 ? p.length : close + 1;
}

/** The first group that repeats while containing a variable quantifier, as `(a+)+`; undefined if none. */
export function nestedQuantifier(p: string): string | undefined {
  const stack: { start: number; variable: boolean }[] = [{ start: 0, variable: false }];
  let i = 0;
  while (i < p.length) {
    const c = p[i];
    if (c === "\\") i += 2;
    else if (c === "[") i = classEnd(p, i);
    else if (c === "(") {
      stack.push({ start: i, variable: false });
      i = groupBodyStart(p, i);
    } else if (c === ")") {
      const group = stack.pop();
      const parent = stack.at(-1);
      if (group === undefined || parent === undefined) return undefined; // unbalanced: RegExp rejects it
      const q = quantifierAt(p, i + 1);
      if (q?.repeats && group.variable) return p.slice(group.start, i + 1 + q.length);
      parent.variable ||= group.variable || (q?.variable ?? false);
      i += 1 + (q?.length ?? 0);
    } else {
      const q = quantifierAt(p, i);
      const top = stack.at(-1);
      if (q !== undefined && top !== undefined) top.variable ||= q.variable;
      i += q?.length ?? 1;
    }
  }
  return undefined;
}

function compileRegex(pattern: string, fold: boolean, fail: PatternFail): RegExp {
  const field = ["regex"];
  if (pattern.length > MAX_PATTERN_LENGTH) {
    fail(field, `regex is ${pattern.length} characters long; at most ${MAX_PATTERN_LENGTH} are allowed`);
  }
  // Compiled alone first: the anchoring wrapper must not be escapable by a pattern such as `a)|(b`.
  try {
    new RegExp(pattern);
  } catch (err) {
    fail(field, `invalid regex ${JSON.stringify(pattern)}: ${(err as Error).message}`);
  }
  const nested = nestedQuantifier(pattern);
  if (nested !== undefined) {
    fail(
      field,
      `regex ${JSON.stringify(pattern)} repeats a group that contains a quantifier (${nested}), which can take exponential time; rewrite it without nested repetition`,
    );
  }
  return new RegExp(`^(?:${pattern})$`, fold ? "i" : "");
}

/** One value matcher; `fold` compares case-insensitively (for DNS names). */
export function compileValueMatcher(spec: MatcherConfig, fold: boolean, fail: PatternFail): ValueMatcher {
  if (typeof spec === "string") {
    if (spec === "") fail([], "expected a non-empty value");
    const want = fold ? spec.toLowerCase() : spec;
    return { label: `exact ${spec}`, test: (v) => (fold ? v.toLowerCase() : v) === want };
  }
  if ("glob" in spec) {
    if (spec.glob === "") fail(["glob"], "expected a non-empty glob");
    if (spec.glob.length > MAX_PATTERN_LENGTH) {
      fail(["glob"], `glob is longer than ${MAX_PATTERN_LENGTH} characters`);
    }
    return { label: `glob ${spec.glob}`, test: globTest(spec.glob, fold) };
  }
  const re = compileRegex(spec.regex, fold, fail);
  return { label: `regex ${spec.regex}`, test: (v) => re.test(v) };
}
