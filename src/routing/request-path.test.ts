import assert from "node:assert/strict";
import { test } from "node:test";
import { normalizeRequestPath } from "./request-path.ts";

test("normalizeRequestPath removes dot segments, also percent-encoded ones", () => {
  const rows: [string, string | undefined, string?][] = [
    ["/echo", "/echo"],
    ["/echo?a=1&b=2", "/echo", "a=1&b=2"],
    ["/public/../echo", "/echo"],
    ["/public/./echo", "/public/echo"],
    ["/public/%2e%2e/echo", "/echo"],
    ["/public/%2E%2E/echo", "/echo"],
    ["/public/.%2e/echo", "/echo"],
    ["/../../echo", "/echo"],
    ["/a/b/..", "/a/"],
    ["/a/b/.", "/a/b/"],
    ["/", "/"],
    ["/a%20b", "/a%20b"],
  ];
  for (const [input, path, query = ""] of rows) {
    assert.deepEqual(normalizeRequestPath(input), { path, query }, input);
  }
});

test("normalizeRequestPath refuses targets an upstream could read differently", () => {
  for (const input of [
    "echo",
    "*",
    "http://evil.example/echo",
    "/public%2fecho",
    "/public%2Fecho",
    "/a%5cb",
    "/a\\b",
    "/a%00b",
    "/a b",
    "/a\u0000",
    "/bad%zz",
    undefined,
  ]) {
    assert.equal(normalizeRequestPath(input), undefined, String(input));
  }
});
