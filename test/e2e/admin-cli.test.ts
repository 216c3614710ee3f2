// `portcullis devices …` as a user runs it (a child process) against a live AdminServer in this process.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type AdminHarness, startAdmin, TEST_TOKEN } from "../../src/admin/testing/harness.ts";
import { mint } from "../../src/identity/testing/mint.ts";
import { ROOT, tempDir } from "../helpers/gateway-process.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function devices(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, "bin", "portcullis.js"), "devices", ...args],
      { env: { ...process.env, PORTCULLIS_ADMIN_URL: "", PORTCULLIS_ADMIN_TOKEN: "", ...env } },
      (err, stdout, stderr) => {
        const code = err ? Number((err as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("portcullis devices", () => {
  const tmp = tempDir();
  let admin: AdminHarness;
  let auth: string[];
  before(async () => {
    admin = await startAdmin();
    auth = ["--url", admin.url, "--token", TEST_TOKEN];
  });
  after(async () => {
    await admin.close();
    tmp.cleanup();
  });

  test("add with a certificate and groups, then show --json", async () => {
    const leaf = await mint({ subject: "CN=cli-device" });
    const certFile = join(tmp.dir, "cli.crt");
    writeFileSync(certFile, leaf.pem);
    const added = await devices([
      "add",
      ...auth,
      "--id",
      "cli-1",
      "--cert",
      certFile,
      "--group",
      "a",
      "--group",
      "b",
    ]);
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout.trim(), "added cli-1 (active)");
    const shown = await devices(["show", ...auth, "--json", "cli-1"]);
    assert.equal(shown.code, 0, shown.stderr);
    const device = JSON.parse(shown.stdout);
    assert.equal(device.id, "cli-1");
    assert.deepEqual(device.groups, ["a", "b"]);
    assert.deepEqual(device.bindings[0], { kind: "fingerprint", value: leaf.cert.fingerprint });
  });

  test("suspend, then list shows it as a table and as JSON; URL and token from the environment", async () => {
    await devices(["add", ...auth, "--id", "cli-2", "--status", "pending"]);
    const env = { PORTCULLIS_ADMIN_URL: admin.url, PORTCULLIS_ADMIN_TOKEN: TEST_TOKEN };
    const suspended = await devices(["suspend", "cli-2"], env);
    assert.equal(suspended.code, 0, suspended.stderr);
    assert.equal(suspended.stdout.trim(), "cli-2: suspended (version 2)");
    const table = await devices(["list"], env);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trim().split("\n");
    assert.match(lines[0] ?? "", /^ID\s+STATUS\s+GROUPS\s+BINDINGS\s+LAST SEEN$/);
    assert.ok(
      lines.some((l) => /^cli-2\s+suspended\s+-\s+-\s+never$/.test(l)),
      table.stdout,
    );
    const json = await devices(["list", "--json", "--status", "suspended"], env);
    assert.deepEqual(
      JSON.parse(json.stdout).devices.map((d: { id: string }) => d.id),
      ["cli-2"],
    );
    const tokenFile = join(tmp.dir, "admin.token");
    writeFileSync(tokenFile, `${TEST_TOKEN}\n`);
    const activated = await devices([
      "activate",
      "--url",
      admin.url,
      "--token-file",
      tokenFile,
      "--json",
      "cli-2",
    ]);
    assert.equal(JSON.parse(activated.stdout).status, "active");
  });

  test("list pages with --limit, and follows every page with --all", async () => {
    for (let i = 0; i < 5; i++) await admin.call("POST", "/devices", { body: { id: `page-${i}` } });
    const first = await devices(["list", ...auth, "--limit", "2"]);
    assert.match(first.stdout, /\(more: --after cli-2, or --all\)/);
    const every = await devices(["list", ...auth, "--limit", "2", "--all", "--json"]);
    assert.equal(JSON.parse(every.stdout).devices.length, 7);
  });

  test("import streams a file and reports; a bad file is refused with each line named, exit 1", async () => {
    const good = join(tmp.dir, "fleet.ndjson");
    writeFileSync(
      good,
      `${Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: `imp-${i}` })).join("\n")}\n`,
    );
    const ok = await devices(["import", ...auth, good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), "imported 50 devices");
    assert.match(ok.stderr, /sent 50 lines/);
    const bad = join(tmp.dir, "bad.ndjson");
    writeFileSync(
      bad,
      `${JSON.stringify({ id: "imp-x" })}\n{oops\n${JSON.stringify({ id: "imp-y", status: "on" })}\n`,
    );
    const refused = await devices(["import", ...auth, bad]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /2 problem\(s\) in the import; nothing was imported \(HTTP 422\)/);
    assert.match(refused.stderr, /line 2: malformed JSON/);
    assert.match(refused.stderr, /line 3 status: /);
    assert.equal((await admin.call("GET", "/devices/imp-x")).status, 404);
  });

  test("API errors exit 1 with the message; usage errors exit 2", async () => {
    const missing = await devices(["show", ...auth, "nope"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not found \(HTTP 404\)/);
    const wrongToken = await devices(["list", "--url", admin.url, "--token", "wrong-wrong-wrong-wrong"]);
    assert.equal(wrongToken.code, 1);
    assert.match(wrongToken.stderr, /Unauthorized \(HTTP 401\)/);
    const invalid = await devices(["add", ...auth, "--id", "bad id!"]);
    assert.equal(invalid.code, 1);
    assert.match(invalid.stderr, /^ {2}id: expected/m);
    const unreachable = await devices(["list", "--url", "http://127.0.0.1:1", "--token", TEST_TOKEN]);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /cannot reach the admin API/);
    assert.equal((await devices(["list", "--url", admin.url])).code, 2);
    assert.equal((await devices(["frobnicate", ...auth])).code, 2);
    assert.equal((await devices(["suspend", ...auth])).code, 2);
    assert.equal((await devices(["list", ...auth, "--bogus"])).code, 2);
    const help = await devices(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /portcullis devices list/);
  });
});
