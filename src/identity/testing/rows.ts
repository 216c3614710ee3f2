// Test helper: table-driven verifyChain cases, each asserting the exact reason code (and a detail snippet).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Certificate } from "../certificate.ts";
import { verifyChain } from "../path-validation.ts";
import type { ReasonCode } from "../reasons.ts";
import type { TrustStore } from "../types.ts";
import { NOW, stores } from "./corpus.ts";

export interface Row {
  readonly name: string;
  readonly leaf: Certificate;
  readonly untrusted: readonly Certificate[];
  /** Default: corpus.ts's "acme" store (the root only). */
  readonly store?: TrustStore;
  /** A reason code, or "ok" when the chain must validate. */
  readonly expect: ReasonCode | "ok";
  /** Substring the deny detail must contain. */
  readonly detail?: string;
}

/** One node:test test per row, at corpus.ts's NOW. */
export function runRows(rows: readonly Row[]): void {
  for (const row of rows) {
    test(`verifyChain: ${row.name}`, () => {
      const result = verifyChain(row.leaf, row.untrusted, row.store ?? stores.acme, NOW);
      if (row.expect === "ok") {
        assert.ok(result.ok, result.ok ? "" : `${result.reason}: ${result.detail}`);
        return;
      }
      assert.equal(result.ok, false, "expected a denial");
      if (result.ok) return;
      assert.equal(result.reason, row.expect, result.detail);
      if (row.detail) assert.ok(result.detail.includes(row.detail), result.detail);
    });
  }
}
