import assert from "node:assert/strict";
import { test } from "node:test";
import {
  AMBIGUOUS_DOT_PARAMETERS,
  AMBIGUOUS_DOUBLE_ENCODING,
  ambiguousPathRefusal,
  normalizeRequestPath,
} from "./request-path.ts";

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

test("paths an upstream could read differently are marked ambiguous, in every encoding and case", () => {
  const dotParameters = [
    "/public/echo/..;/..;/echo",
    "/public/echo/..;x/..;x/echo",
    "/public/echo/..;jsessionid=1/echo",
    "/public/echo/.;/echo",
    "/public/echo/.;x/echo",
    "/public/echo/..%3b/..%3b/echo",
    "/public/echo/..%3B/echo",
    "/public/echo/%2e%2e;/echo",
    "/public/echo/%2E%2E%3B/echo",
    "/public/echo/.%2e%3bx/echo",
    "/public/echo/..%253b/echo", // decoded twice: ..;
  ];
  for (const input of dotParameters) {
    const target = normalizeRequestPath(input);
    assert.ok(target, input);
    assert.equal(target.ambiguity?.detail, AMBIGUOUS_DOT_PARAMETERS, input);
  }
  const doubleEncoded = [
    "/public/echo/%252e%252e/%252e%252e/echo",
    "/public/echo/%252E%252E/echo",
    "/public/echo/%252e./echo",
    "/public/%252fecho",
    "/public/%252F..",
    "/public/%255cecho",
    "/public/%255C",
    "/public/%25%32%65%25%32%65/echo", // %25 then the escapes of '2' and 'e'
    "/public/%25252e", // three decodings
  ];
  for (const input of doubleEncoded) {
    const target = normalizeRequestPath(input);
    assert.ok(target, input);
    assert.equal(target.ambiguity?.detail, AMBIGUOUS_DOUBLE_ENCODING, input);
  }
  // Forwarded exactly as routed: only %2e is decoded, dot segments removed.
  assert.equal(normalizeRequestPath("/public/echo/..;/..;/echo")?.path, "/public/echo/..;/..;/echo");
  assert.equal(normalizeRequestPath("/a/%252e%252e/b")?.path, "/a/%252e%252e/b");
});

test("';' parameters and '%25' elsewhere are not ambiguous", () => {
  for (const input of [
    "/echo;jsessionid=abc",
    "/a;v=1/b;v=2",
    "/a/...;x/b", // not a dot segment
    "/a/x..;/b",
    "/a/;../b", // the segment is empty once its parameters are dropped
    "/files/100%25",
    "/files/%2525",
    "/files/%253b",
    "/echo?x=..;&y=%252e",
  ]) {
    const target = normalizeRequestPath(input);
    assert.ok(target, input);
    assert.equal(target.ambiguity, undefined, input);
  }
});

test("readings: parameters dropped and a second decoding, each normalised", () => {
  assert.deepEqual(normalizeRequestPath("/public/echo/..;/..;/echo")?.ambiguity?.readings, [
    "/public/echo/..;/..;/echo",
    "/echo",
  ]);
  assert.deepEqual(normalizeRequestPath("/a/%252e%252e/b")?.ambiguity?.readings, ["/a/%252e%252e/b", "/b"]);
  assert.deepEqual(normalizeRequestPath("/a/b%255c..%255cc")?.ambiguity?.readings, [
    "/a/b%255c..%255cc",
    "/a/c",
  ]);
});

test("ambiguousPathRefusal: refused unless the route opts in, and then only while every reading stays on it", () => {
  const pub = { name: "public", allowAmbiguousPaths: false };
  const legacy = { name: "legacy", allowAmbiguousPaths: true };
  const priv = { name: "private" };
  const routeOf = (path: string) =>
    path.startsWith("/legacy")
      ? legacy
      : path.startsWith("/public")
        ? pub
        : path.startsWith("/echo")
          ? priv
          : undefined;
  const check = (path: string, route: typeof pub) => {
    const target = normalizeRequestPath(path);
    assert.ok(target, path);
    return ambiguousPathRefusal(target, route, routeOf);
  };
  assert.equal(check("/public/echo", pub), undefined);
  assert.equal(check("/public/echo;x", pub), undefined);
  assert.equal(check("/public/echo/..;/..;/echo", pub), AMBIGUOUS_DOT_PARAMETERS);
  assert.equal(check("/public/echo/%252e%252e/x", pub), AMBIGUOUS_DOUBLE_ENCODING);
  assert.equal(check("/legacy/a/..;/b", legacy), undefined);
  assert.equal(check("/legacy/a/%252e%252e/b", legacy), undefined);
  assert.equal(check("/legacy/a/b/%252e%252e%252fc", legacy), undefined);
  assert.match(
    check("/legacy/..;/echo", legacy) ?? "",
    /could read it as \/echo, which is not on the same route/,
  );
  assert.match(check("/legacy/%252e%252e/echo", legacy) ?? "", /as \/echo,/);
  assert.match(
    check("/legacy/..;/nowhere", legacy) ?? "",
    /as \/nowhere,/,
    "no route at all is not the same route",
  );
});
