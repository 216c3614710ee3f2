// Value matchers: exact, glob and anchored regex semantics, case folding, and the regex screen that keeps
// a config from making decisions take exponential time.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { MatcherConfig } from "../config/schema.ts";
import { compileValueMatcher, nestedQuantifier, type PatternFail } from "./value-matchers.ts";

const fail: PatternFail = (field, problem) => {
  throw new Error(`${field.join(".")}: ${problem}`);
};

const values: { desc: string; spec: MatcherConfig; fold?: boolean; yes: string[]; no: string[] }[] = [
  { desc: "exact", spec: "device-1", yes: ["device-1"], no: ["Device-1", "device-10", "", "xdevice-1"] },
  {
    desc: "exact, folded",
    spec: "Host.Example",
    fold: true,
    yes: ["host.example", "HOST.EXAMPLE"],
    no: ["host.example."],
  },
  {
    desc: "glob *",
    spec: { glob: "urn:device:fleet-*" },
    yes: ["urn:device:fleet-", "urn:device:fleet-1/2"],
    no: ["urn:device:flee"],
  },
  { desc: "glob ? is one character", spec: { glob: "d?" }, yes: ["d1", "dé", "d😀"], no: ["d", "d12"] },
  {
    desc: "glob * in the middle",
    spec: { glob: "a*b*c" },
    yes: ["abc", "a-b-c", "abbbc"],
    no: ["ab", "acb"],
  },
  {
    desc: "glob: regex characters are literal",
    spec: { glob: "a.b+(c)[d]" },
    yes: ["a.b+(c)[d]"],
    no: ["aXb+(c)[d]", "a.bb(c)d"],
  },
  {
    desc: "glob, folded",
    spec: { glob: "*.EXAMPLE" },
    fold: true,
    yes: ["a.example", "B.Example"],
    no: ["example"],
  },
  {
    desc: "regex is anchored",
    spec: { regex: "dev-\\d+" },
    yes: ["dev-1", "dev-123"],
    no: ["dev-", "xdev-1", "dev-1x"],
  },
  {
    desc: "regex alternation stays anchored",
    spec: { regex: "a|b" },
    yes: ["a", "b"],
    no: ["ab", "xa", "bx"],
  },
  {
    desc: "regex, folded",
    spec: { regex: "[a-z]+\\.example" },
    fold: true,
    yes: ["ABC.Example"],
    no: ["a.b.example"],
  },
];

for (const row of values) {
  test(`value matcher: ${row.desc}`, () => {
    const m = compileValueMatcher(row.spec, row.fold ?? false, fail);
    for (const v of row.yes) assert.equal(m.test(v), true, `${JSON.stringify(v)} should match`);
    for (const v of row.no) assert.equal(m.test(v), false, `${JSON.stringify(v)} should not match`);
  });
}

test("value matcher: labels name the kind and the pattern", () => {
  const labels = (["x", { glob: "y*" }, { regex: "z+" }] as MatcherConfig[]).map(
    (spec) => compileValueMatcher(spec, false, fail).label,
  );
  assert.deepEqual(labels, ["exact x", "glob y*", "regex z+"]);
});

const nested: { desc: string; pattern: string; expected: string | undefined }[] = [
  { desc: "plain quantifiers", pattern: "urn:device:[a-z0-9-]+", expected: undefined },
  { desc: "repeated fixed group", pattern: "(ab)+", expected: undefined },
  { desc: "fixed count inside", pattern: "(a{3})+", expected: undefined },
  { desc: "optional group", pattern: "(a+)?", expected: undefined },
  { desc: "quantifier chars in a class", pattern: "([+*]x)+", expected: undefined },
  { desc: "escaped parentheses", pattern: "\\(a+\\)+", expected: undefined },
  { desc: "named group", pattern: "(?<id>[a-z]+)-\\d+", expected: undefined },
  { desc: "lookahead", pattern: "(?=a)a+", expected: undefined },
  { desc: "(a+)+", pattern: "(a+)+", expected: "(a+)+" },
  { desc: "(a*)*", pattern: "x(a*)*y", expected: "(a*)*" },
  { desc: "lazy quantifiers", pattern: "(a+?)+?", expected: "(a+?)+?" },
  { desc: "non-capturing with alternation", pattern: "(?:x|y*){2,}", expected: "(?:x|y*){2,}" },
  { desc: "bounded variable inside", pattern: "(a{1,3})+", expected: "(a{1,3})+" },
  { desc: "depth propagates", pattern: "((ab)+c)+", expected: "((ab)+c)+" },
  { desc: "escape class inside", pattern: "(\\d+){2}", expected: "(\\d+){2}" },
];

for (const row of nested) {
  test(`nestedQuantifier: ${row.desc}`, () => {
    assert.equal(nestedQuantifier(row.pattern), row.expected);
  });
}

test("glob: many stars against a long value stays fast (no exponential backtracking)", () => {
  const m = compileValueMatcher({ glob: "*a*a*a*a*a*a*a*a*a*a*b" }, false, fail);
  const started = performance.now();
  assert.equal(m.test("a".repeat(5000)), false);
  // Backtracking would take ages on 5,000 characters and ten stars; a linear match takes well under 1 ms.
  // The bound only separates the two, generously (a loaded machine must not fail it).
  assert.ok(performance.now() - started < 5_000, "glob took too long");
});
