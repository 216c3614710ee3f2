// usage.ts spells out lists that live elsewhere (so that help loads nothing): they must stay in step.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CRL_REASONS } from "../pki/issue.ts";
import { KEY_ALGORITHMS } from "../pki/keys.ts";
import { BINDING_KINDS, DEVICE_STATUSES } from "../registry/types.ts";
import {
  CERTIFICATES_USAGE,
  COMMAND_NAMES,
  commandUsage,
  DEVICES_USAGE,
  ENROLL_USAGE,
  PKI_USAGE,
  REENROLL_USAGE,
  USAGE,
  wantsHelp,
} from "./usage.ts";

test("pki usage lists every key algorithm and CRL reason", () => {
  assert.ok(PKI_USAGE.includes(`ALG:    ${KEY_ALGORITHMS.join(" | ")} (default ec-p256)\n`), PKI_USAGE);
  assert.ok(PKI_USAGE.includes(`REASON: ${CRL_REASONS.join(" | ")}\n`), PKI_USAGE);
});

test("enroll, reenroll and certificates usages list every key algorithm and CRL reason", () => {
  for (const usage of [ENROLL_USAGE, REENROLL_USAGE]) {
    assert.ok(usage.includes(`ALG: ${KEY_ALGORITHMS.join(" | ")}\n`), usage);
  }
  assert.ok(
    CERTIFICATES_USAGE.includes(`REASON: ${CRL_REASONS.join(" | ")} (default unspecified)\n`),
    CERTIFICATES_USAGE,
  );
});

test("devices usage lists every device status and binding kind", () => {
  assert.ok(DEVICES_USAGE.includes(`S: ${DEVICE_STATUSES.join(" | ")}.`), DEVICES_USAGE);
  assert.ok(DEVICES_USAGE.includes(`KIND: ${BINDING_KINDS.join(" | ")}.`), DEVICES_USAGE);
});

test("every command has a usage text and a line in the overview", () => {
  assert.deepEqual(COMMAND_NAMES, [
    "demo",
    "start",
    "check",
    "echo",
    "pki",
    "verify",
    "devices",
    "tokens",
    "certificates",
    "enroll",
    "reenroll",
    "version",
    "help",
  ]);
  for (const name of COMMAND_NAMES) {
    assert.match(commandUsage(name) ?? "", new RegExp(`^Usage:[\\s\\S]*portcullis ${name}\\b`), name);
    assert.match(USAGE, new RegExp(`^ {2}${name}\\b`, "m"), name);
  }
  assert.equal(commandUsage("nosuch"), undefined);
  assert.equal(commandUsage("toString"), undefined, "no inherited property is a command");
});

test("wantsHelp: --help or -h before any --", () => {
  assert.equal(wantsHelp(["--help"]), true);
  assert.equal(wantsHelp(["issue", "device", "-h"]), true);
  assert.equal(wantsHelp(["--dir", "x"]), false);
  assert.equal(wantsHelp(["--", "-h"]), false);
  assert.equal(wantsHelp(["--json", "--", "--help"]), false);
  assert.equal(wantsHelp(["--helpful"]), false);
});
