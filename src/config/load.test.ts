// The YAML front door of the config: size and alias limits, and every YAML failure as one ConfigError line.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ConfigError } from "./errors.ts";
import { loadConfig, MAX_CONFIG_BYTES, MAX_YAML_ALIAS_COUNT, parseConfigText } from "./load.ts";

/** A "billion laughs" document: 9 levels of 9 aliases each, 9^9 strings once expanded. */
function aliasBomb(): string {
  const lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i <= 8; i++)
    lines.push(
      `a${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(",")}]`,
    );
  return `${lines.join("\n")}\n`;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${(err as Error).stack}`);
    assert.equal(err.message.split("\n").length, 1, `one line: ${err.message}`);
    return err;
  }
  assert.fail("the text was accepted");
}

describe("config YAML limits", () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-load-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("an alias bomb is one ConfigError naming the file, not a ReferenceError", () => {
    const started = Date.now();
    const err = configError(() => parseConfigText(aliasBomb(), "bomb.yaml"));
    assert.match(err.message, /^bomb\.yaml: .*alias/);
    assert.ok(err.message.includes(String(MAX_YAML_ALIAS_COUNT)), err.message);
    assert.ok(Date.now() - started < 5_000, "refused quickly");
  });

  test("a few aliases, as a config shares a block, are still fine", () => {
    const text = [
      "listeners: [{ name: main, port: 0, clientAuth: off, certificates: [{ cert: s.crt, key: s.key }] }]",
      "services:",
      "  - { name: a, targets: &targets ['http://127.0.0.1:9'], readTimeout: &slow 30s }",
      "  - { name: b, targets: *targets, readTimeout: *slow }",
      "  - { name: c, targets: *targets, readTimeout: *slow }",
      "routes: [{ name: r, paths: [/], service: a, public: true }]",
    ].join("\n");
    const config = parseConfigText(text, "f.yaml");
    assert.deepEqual(
      config.services.map((s) => [s.name, s.targets, s.readTimeout]),
      ["a", "b", "c"].map((name) => [name, ["http://127.0.0.1:9"], 30_000]),
    );
  });

  test("an alias without its anchor is a ConfigError with the line", () => {
    const err = configError(() => parseConfigText("listeners: []\nservices: *nowhere\n", "f.yaml"));
    assert.match(err.message, /^f\.yaml: .*YAML line 2 column 11: .*nowhere/);
  });

  test("nesting too deep for the parser is a ConfigError with line and column", () => {
    for (const text of [`a: ${"[".repeat(10_000)}`, `a: ${"{a: ".repeat(10_000)}1${"}".repeat(10_000)}`]) {
      const err = configError(() => parseConfigText(text, "deep.yaml"));
      assert.match(err.message, /^deep\.yaml: .*YAML line \d+ column \d+: /);
    }
  });

  test("a syntax error is one line even when the parser reports several", () => {
    const err = configError(() => parseConfigText("a: [\nb: {\nc: ]]]\n  - d\n", "f.yaml"));
    assert.match(err.message, /YAML line \d+ column \d+: .*more YAML error/);
  });

  test("a file over the size limit is refused before it is parsed, naming the file and the limit", async () => {
    const file = join(dir, "big.yaml");
    // Valid YAML (a comment) but too big: only the size can refuse it.
    writeFileSync(file, `# ${"x".repeat(MAX_CONFIG_BYTES)}\nlisteners: []\n`);
    await assert.rejects(loadConfig(file), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message.split("\n").length, 1);
      assert.ok(err.message.startsWith(`${file}: `), err.message);
      assert.match(err.message, /more than the limit of 1048576 bytes \(1 MiB\)/);
      return true;
    });
    assert.throws(() => parseConfigText(`# ${"x".repeat(MAX_CONFIG_BYTES)}`, "t.yaml"), /1 MiB/);
  });

  test("a file just under the limit is read whole (the refusal is the size, not the reading)", async () => {
    const file = join(dir, "edge.yaml");
    writeFileSync(file, `# ${"x".repeat(MAX_CONFIG_BYTES - 20)}\nbogus: 1\n`);
    await assert.rejects(loadConfig(file), /unknown key "bogus"/);
  });

  test("a file that cannot be read is named", async () => {
    await assert.rejects(loadConfig(join(dir, "missing.yaml")), /missing\.yaml: .*cannot read config/);
    await assert.rejects(loadConfig(dir), /cannot read config/);
  });
});
