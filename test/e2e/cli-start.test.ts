// The CLI's front door: every help form (overview, `help CMD`, `CMD --help`, `CMD -h`) on stdout with
// exit 0, unknown commands and topics with exit 2, the `version` line, and that `version` and the help
// forms load no dependency and no command module (the CLI starts in tens of milliseconds; issue 7).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { ROOT, runCli, tempDir } from "../helpers/gateway-process.ts";

const TRACE_HOOK = join(ROOT, "test", "helpers", "module-trace.ts");
/** The dependencies that made `portcullis version` cost half a second when main.ts imported them eagerly. */
const HEAVY = ["zod", "yaml", "pino", "pg", "undici", "prom-client", "@peculiar/x509", "pkijs", "ioredis"];
const COMMANDS = [
  "demo",
  "start",
  "check",
  "echo",
  "pki",
  "verify",
  "devices",
  "enroll",
  "reenroll",
  "tokens",
  "certificates",
  "version",
  "help",
];
const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };

type Run = Awaited<ReturnType<typeof runCli>>;

const run = (args: readonly string[], nodeArgs: readonly string[] = [], env = process.env): Promise<Run> =>
  runCli(args, 20_000, { nodeArgs, env });

const tmp = tempDir("portcullis-cli-start-");
after(() => tmp.cleanup());
let traces = 0;

/** Runs the CLI with the module-trace hook; resolves to the run and the URLs of every module it loaded. */
async function traced(args: readonly string[]): Promise<Run & { modules: string[] }> {
  const file = join(tmp.dir, `trace-${++traces}.txt`);
  const r = await run(args, ["--import", pathToFileURL(TRACE_HOOK).href], {
    ...process.env,
    PORTCULLIS_MODULE_TRACE: file,
  });
  const modules = readFileSync(file, "utf8").split("\n").filter(Boolean);
  return { ...r, modules };
}

describe("portcullis help", () => {
  test("--help, -h and help print the overview on stdout, exit 0; no argument prints it and exits 2", async () => {
    const [long, short, word, none] = await Promise.all([
      run(["--help"]),
      run(["-h"]),
      run(["help"]),
      run([]),
    ]);
    for (const r of [long, short, word]) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      assert.equal(r.stdout, long.stdout);
    }
    assert.match(long.stdout, /^Usage: portcullis <command> \[options\]\n/);
    for (const command of COMMANDS) assert.match(long.stdout, new RegExp(`^ {2}${command}\\b`, "m"), command);
    assert.equal(none.code, 2);
    assert.equal(none.stdout, long.stdout);
  });

  for (const command of COMMANDS) {
    test(`help ${command}, ${command} --help and ${command} -h print its usage, exit 0`, async () => {
      const forms = [
        ["help", command],
        [command, "--help"],
        [command, "-h"],
      ];
      const runs = await Promise.all(forms.map((argv) => run(argv)));
      const first = runs[0] as Run;
      runs.forEach((r, i) => {
        const argv = forms[i]?.join(" ");
        assert.equal(r.code, 0, `${argv}: ${r.stderr}`);
        assert.equal(r.stderr, "", argv);
        assert.equal(r.stdout, first.stdout, `${argv} prints the same text as help ${command}`);
      });
      assert.match(first.stdout, /^Usage:/);
      assert.match(first.stdout, new RegExp(`portcullis ${command}\\b`));
      assert.notEqual(first.stdout, (await run(["help"])).stdout, "not the overview");
    });
  }

  test("--help anywhere in a command's arguments, even after other options, prints its usage", async () => {
    const pki = await run(["pki", "issue", "device", "--dir", "nowhere", "--help"]);
    assert.equal(pki.code, 0, pki.stderr);
    assert.match(pki.stdout, /^Usage:\n {2}portcullis pki init --dir DIR/);
    const start = await run(["start", "--config", "missing.yaml", "-h"]);
    assert.equal(start.code, 0, start.stderr);
    assert.match(start.stdout, /^Usage: portcullis start --config FILE/);
  });

  test("after --, -h and --help are arguments, not help", async () => {
    const r = await run(["echo", "--", "--help"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
  });

  test("help with an unknown command: exit 2, one line on stderr naming it", async () => {
    const r = await run(["help", "nosuch"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^portcullis: help: no command "nosuch" \(commands: demo, start, .*\)\n$/);
  });

  test("an unknown command: exit 2, named on stderr, nothing on stdout", async () => {
    const r = await run(["frobnicate", "--help"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^portcullis: unknown command "frobnicate"\n/);
  });
});

describe("portcullis version", () => {
  test("version, --version and -v print one line: version, Node.js and OpenSSL", async () => {
    for (const argv of [["version"], ["--version"], ["-v"]]) {
      const r = await run(argv);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      assert.equal(
        r.stdout,
        `portcullis ${version} (node ${process.version}, openssl ${process.versions.openssl})\n`,
        argv.join(" "),
      );
    }
  });
});

describe("lazy loading: what the fast commands load", () => {
  const fast = [
    ["version"],
    ["help"],
    ["--help"],
    ["help", "verify"],
    ["help", "pki"],
    ["help", "devices"],
    ["verify", "--help"],
    ["pki", "--help"],
    ["devices", "--help"],
    ["start", "--help"],
    ["demo", "-h"],
  ];
  for (const argv of fast) {
    test(`${argv.join(" ")} loads the compiled CLI core only: no dependency, no command module`, async () => {
      const r = await traced(argv);
      assert.equal(r.code, 0, r.stderr);
      const main = r.modules.find((url) => url.endsWith("/cli/main.js") || url.endsWith("/cli/main.ts"));
      assert.ok(main?.endsWith("/dist/cli/main.js"), `runs dist/ (npm run build first): ${main}`);
      const heavy = r.modules.filter((url) => HEAVY.some((name) => url.includes(`/node_modules/${name}/`)));
      assert.deepEqual(heavy, [], `none of ${HEAVY.join(", ")}`);
      const dependencies = r.modules.filter((url) => url.includes("/node_modules/"));
      assert.deepEqual(dependencies, [], "no package from node_modules at all");
      const commands = r.modules.filter((url) =>
        /\/dist\/cli\/(demo|start|echo|pki|verify|devices|workers|run-gateway)\.js$/.test(url),
      );
      assert.deepEqual(commands, [], "no command module");
      const project = r.modules.filter((url) => url.includes("/dist/")).map((url) => url.split("/dist/")[1]);
      assert.deepEqual(project.sort(), [
        "cli/main.js",
        "cli/usage.js",
        "config/errors.js",
        "registry/types.js",
        "revocation/errors.js",
      ]);
    });
  }

  test("the trace sees a command's dependencies (so that the checks above can fail)", async () => {
    const r = await traced(["start", "--config", join(tmp.dir, "missing.yaml")]);
    assert.equal(r.code, 2, r.stderr);
    const loaded = (name: string) => r.modules.some((url) => url.includes(`/node_modules/${name}/`));
    assert.ok(loaded("pino"), "pino (CommonJS)");
    assert.ok(loaded("zod"), "zod (ESM)");
    assert.ok(r.modules.some((url) => url.endsWith("/dist/cli/start.js")));
  });
});
