// Test helper: compile a config (object or YAML text) from a temp directory holding the demo PKI, or get the
// ConfigError message it fails with.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { demoConfig } from "../../demo/demo-config.ts";
import { ensureDemoPki } from "../../pki/demo-pki.ts";
import { ConfigError } from "../errors.ts";
import { loadConfig } from "../load.ts";
import type { ConfigInput } from "../schema.ts";

export interface CompileHarness {
  readonly dir: string;
  /** The demo config (application mode, free ports), a fresh copy each time. */
  base(): ConfigInput;
  compile(config: ConfigInput | string): ReturnType<typeof loadConfig>;
  /** The ConfigError message of a config that must be refused. */
  problems(config: ConfigInput | string): Promise<string>;
  /** Writes the demo PKI; call in `before`. */
  setUp(): Promise<void>;
  cleanUp(): void;
}

export function compileHarness(prefix: string): CompileHarness {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const compile = (config: ConfigInput | string) => {
    const file = join(dir, "portcullis.yaml");
    writeFileSync(file, typeof config === "string" ? config : stringify(config));
    return loadConfig(file);
  };
  return {
    dir,
    base: () =>
      structuredClone(
        demoConfig({
          mode: "application",
          port: 0,
          adminPort: 0,
          upstream: "http://127.0.0.1:9",
          store: "sqlite:test.db",
        }),
      ),
    compile,
    async problems(config) {
      try {
        await compile(config);
      } catch (err) {
        assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
        return err.message;
      }
      assert.fail("the config was accepted");
    },
    setUp: async () => {
      await ensureDemoPki(dir);
    },
    cleanUp: () => rmSync(dir, { recursive: true, force: true }),
  };
}
