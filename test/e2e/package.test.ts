// The npm package: `npm pack` makes a tarball that holds what the CLI needs to run (dist/, bin/, the licence
// and docs, no tests), runs from it as it is, and installs with `npm install -g` into a prefix, whose
// `portcullis` runs. The install needs the npm registry, or an npm cache that already holds the
// dependencies; without either it is skipped with the reason. Needs `npm run build` first (dist/).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ROOT, tempDir } from "../helpers/gateway-process.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}) {
  return new Promise<Run>((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd ?? ROOT, timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The shell's node (often older than the pinned 24): how an operator runs npm and the launcher. */
const SYSTEM_NODE = ["/usr/bin/node", "/usr/local/bin/node"].find((p) => existsSync(p));
const NPM_CLI = [
  "/usr/lib/node_modules/npm/bin/npm-cli.js",
  "/usr/local/lib/node_modules/npm/bin/npm-cli.js",
].find((p) => existsSync(p));

/** npm run under the shell's node when there is one (as on an operator's machine), else through PATH. */
const npm = (args: readonly string[], options: { cwd?: string; timeoutMs?: number } = {}) =>
  SYSTEM_NODE && NPM_CLI ? run(SYSTEM_NODE, [NPM_CLI, ...args], options) : run("npm", args, options);

describe("the npm package", () => {
  const tmp = tempDir("portcullis-package-");
  let tarball = "";
  const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };

  before(async () => {
    assert.ok(existsSync(join(ROOT, "dist", "cli", "main.js")), "npm run build first");
    // --ignore-scripts: dist/ is built already (prepare would rebuild it under the running tests).
    const packed = await npm(["pack", "--ignore-scripts", "--pack-destination", tmp.dir]);
    assert.equal(packed.code, 0, packed.stderr);
    tarball = join(tmp.dir, `portcullis-${version}.tgz`);
    assert.ok(existsSync(tarball), `${packed.stdout}\n${packed.stderr}`);
    const unpacked = await run("tar", ["-xzf", tarball, "-C", tmp.dir]);
    assert.equal(unpacked.code, 0, unpacked.stderr);
  });
  after(() => tmp.cleanup());

  test("the tarball holds the CLI, the licence and the docs, and no tests or sources", () => {
    const pkg = join(tmp.dir, "package");
    for (const file of [
      "LICENSE",
      "README.md",
      "SECURITY.md",
      "CHANGELOG.md",
      "CONTRIBUTING.md",
      "bin/portcullis.js",
      "dist/cli/main.js",
      "docs/operations.md",
      "deploy/portcullis.service",
      "deploy/Dockerfile",
    ]) {
      assert.ok(existsSync(join(pkg, file)), file);
    }
    assert.match(readFileSync(join(pkg, "LICENSE"), "utf8"), /Apache License\s+Version 2\.0/);
    const manifest = JSON.parse(readFileSync(join(pkg, "package.json"), "utf8")) as { license: string };
    assert.equal(manifest.license, "Apache-2.0");
    assert.equal(existsSync(join(pkg, "src")), false);
    assert.equal(existsSync(join(pkg, "test")), false);
    const walk = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
      );
    assert.deepEqual(
      walk(join(pkg, "dist")).filter((f) => /\.test\.js$|\/testing\//.test(f)),
      [],
    );
  });

  test("the unpacked package runs: version, help, and check with its dependencies", async () => {
    const pkg = join(tmp.dir, "package");
    const bin = join(pkg, "bin", "portcullis.js");
    const node = SYSTEM_NODE ?? process.execPath;
    // version and help load no dependency: they run from the tarball as it is (the launcher needs the
    // pinned runtime only under an older node, so this uses the current one there).
    const v = await run(process.execPath, [bin, "version"]);
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, new RegExp(`^portcullis ${version.replaceAll(".", "\\.")} \\(node v24\\.`));
    // With the project's dependencies in place, a command that loads them (check) runs too, on the
    // pinned Node 24 even when started by the shell's node.
    symlinkSync(join(ROOT, "node_modules"), join(pkg, "node_modules"));
    const help = await run(node, [bin, "help", "check"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /portcullis check --config FILE/);
    const check = await run(node, [bin, "check", join(pkg, "missing.yaml")]);
    assert.equal(check.code, 2, check.stdout);
    assert.match(check.stderr, /missing\.yaml: \(top level\): cannot read config/);
  });

  test("npm install -g of the tarball puts a working portcullis on the path, without engine warnings", async (t) => {
    const prefix = join(tmp.dir, "global");
    const installed = await npm(
      ["install", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", tarball],
      { timeoutMs: 240_000 },
    );
    if (
      installed.code !== 0 &&
      /ENOTFOUND|EAI_AGAIN|ENOTCACHED|ECONNREFUSED|ETIMEDOUT/.test(installed.stderr)
    ) {
      t.skip(`needs the npm registry or a warm npm cache: ${installed.stderr.split("\n")[0]}`);
      return;
    }
    assert.equal(installed.code, 0, installed.stderr);
    assert.doesNotMatch(
      installed.stderr,
      /EBADENGINE/,
      "a supported set-up installs without engine warnings",
    );
    const r = await run(join(prefix, "bin", "portcullis"), ["version"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^portcullis ${version.replaceAll(".", "\\.")} \\(node v24\\.`));
  });
});
