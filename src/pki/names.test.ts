// Server names and device ids that `portcullis pki issue` accepts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { deviceIdProblem, serverNameProblem } from "./names.ts";

test("server names: DNS names in preferred name syntax, one leading wildcard label, IP addresses", () => {
  for (const good of [
    "localhost",
    "gw.example",
    "GW-1.Example.COM",
    "1gw.example",
    "*.fleet.example",
    "xn--bcher-kva.example",
    `${"a".repeat(63)}.example`,
    "127.0.0.1",
    "::1",
    "2001:db8::1",
  ]) {
    assert.equal(serverNameProblem(good), undefined, good);
  }
  for (const bad of [
    "",
    "evil/../x",
    "a b",
    "gw.example.",
    ".gw.example",
    "gw..example",
    "-gw.example",
    "gw-.example",
    "gw_1.example",
    "bücher.example",
    `${"a".repeat(64)}.example`,
    `${"a.".repeat(127)}ab`,
    "*",
    "*.",
    "*.com",
    "a.*.example",
    "*a.example",
    "**.example",
    "1.2.3",
    "01.2.3.4",
    "256.1.1.1",
    "fe80::1%eth0",
    "[::1]",
    "gw.example:8443",
  ]) {
    assert.match(serverNameProblem(bad) ?? "", /\S/, `refused: ${JSON.stringify(bad)}`);
  }
});

test("device ids follow the registry's syntax", () => {
  for (const good of ["device-001", "sensor_7:a@site.1", "A", "x".repeat(256)]) {
    assert.equal(deviceIdProblem(good), undefined, good);
  }
  for (const bad of ["", "a b", "../x", "dev/42", "-lead", ".hidden", "x".repeat(257), "a\nb", "é"]) {
    assert.match(deviceIdProblem(bad) ?? "", /^device id .*: expected 1 to 256 letters/, JSON.stringify(bad));
  }
});
