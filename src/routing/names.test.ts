import assert from "node:assert/strict";
import { test } from "node:test";
import { matchesPattern, normalizeName, normalizePattern } from "./names.ts";
import { sniAllowsHost } from "./sni-binding.ts";

test("normalizeName: one canonical form for every spelling of a name", () => {
  const rows: [string | undefined, string | undefined][] = [
    ["mtls.auth.local.com", "mtls.auth.local.com"],
    ["MTLS.Auth.Local.COM", "mtls.auth.local.com"],
    ["mtls.auth.local.com.", "mtls.auth.local.com"],
    ["mtls.auth.local.com:8443", "mtls.auth.local.com"],
    ["MTLS.auth.local.com.:8443", "mtls.auth.local.com"],
    ["bücher.example", "xn--bcher-kva.example"],
    ["127.0.0.1:8443", "127.0.0.1"],
    ["[::1]:8443", "::1"],
    ["[::1]", "::1"],
    ["::1", "::1"],
    ["", undefined],
    [undefined, undefined],
    ["a..b", undefined],
    ["host:port", undefined],
    ["host:99999999", undefined],
    ["[::1", undefined],
    ["[nope]", undefined],
    ["ex ample.com", undefined],
    ["evil.com/x", undefined],
    [".", undefined],
  ];
  for (const [input, expected] of rows)
    assert.equal(normalizeName(input), expected, `normalizeName(${input})`);
});

test("normalizePattern accepts one leading wildcard label only", () => {
  assert.equal(normalizePattern("*.Example.COM"), "*.example.com");
  assert.equal(normalizePattern("*.127.0.0.1"), undefined);
  assert.equal(normalizePattern("a.*.example.com"), undefined);
});

test("matchesPattern: a wildcard covers exactly one label", () => {
  assert.equal(matchesPattern("a.example.com", "*.example.com"), true);
  assert.equal(matchesPattern("a.b.example.com", "*.example.com"), false);
  assert.equal(matchesPattern("example.com", "*.example.com"), false);
  assert.equal(matchesPattern("example.com", "example.com"), true);
  assert.equal(matchesPattern("xexample.com", "*.example.com"), false);
});

test("sniAllowsHost: with SNI the names must be equal; without SNI only IP literals", () => {
  assert.equal(sniAllowsHost("a.example", "a.example"), true);
  assert.equal(sniAllowsHost("a.example", "b.example"), false);
  assert.equal(sniAllowsHost("a.example", "127.0.0.1"), false);
  assert.equal(sniAllowsHost(undefined, "127.0.0.1"), true);
  assert.equal(sniAllowsHost(undefined, "::1"), true);
  assert.equal(sniAllowsHost(undefined, "a.example"), false);
});
