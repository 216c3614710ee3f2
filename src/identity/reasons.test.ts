// Holds docs/reason-codes.md to the code: every reason code, status and message documented, no stale row.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { REASONS } from "./reasons.ts";

const doc = readFileSync(new URL("../../docs/reason-codes.md", import.meta.url), "utf8");
const rows = new Map(
  [...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \| ([^|]+) \|/gm)].map((m) => [
    m[1],
    { status: Number(m[2]), message: m[3]?.trim() },
  ]),
);

test("every reason code is documented with its status and message", () => {
  for (const [code, { status, message }] of Object.entries(REASONS)) {
    assert.deepEqual(rows.get(code), { status, message }, `docs/reason-codes.md row for ${code}`);
  }
});

test("the docs list no reason code that the code does not have", () => {
  for (const code of rows.keys()) assert.ok(Object.hasOwn(REASONS, code as string), `stale row ${code}`);
});
