// Tests of `portcullis pki` (src/cli/pki.ts): usage errors exit 2 with one line, the happy paths exit 0.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { runPki } from "../cli/pki.ts";
import { x509 } from "../identity/x509.ts";

const base = mkdtempSync(join(tmpdir(), "portcullis-cli-pki-"));
after(() => rmSync(base, { recursive: true, force: true }));

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await runPki(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

async function expectUsageError(argv: string[], message: string | RegExp): Promise<void> {
  const { code, stdout, stderr } = await cli(...argv);
  assert.equal(code, 2, `${argv.join(" ")}: ${stderr}`);
  assert.equal(stdout, "");
  assert.equal(stderr.split("\n").length, 2, `one line: ${stderr}`);
  if (typeof message === "string") assert.equal(stderr, `portcullis pki: ${message}\n`);
  else assert.match(stderr, message);
}

test("--help prints usage and exits 0", async () => {
  for (const argv of [["--help"], ["issue", "device", "--help"], ["crl", "-h"]]) {
    const { code, stdout } = await cli(...argv);
    assert.equal(code, 0);
    assert.match(stdout, /^Usage:\n {2}portcullis pki init --dir DIR/);
  }
});

test("usage errors exit 2 with one clear line", async () => {
  const dir = join(base, "usage");
  await expectUsageError([], /^portcullis pki: a subcommand is required/);
  await expectUsageError(["frob"], /^portcullis pki: unknown subcommand "frob"/);
  await expectUsageError(["init"], "--dir is required");
  await expectUsageError(["init", "--dir", dir, "--algorithm", "dsa"], /--algorithm must be one of ec-p256/);
  await expectUsageError(["init", "--dir", dir, "--bogus"], /^portcullis pki: Unknown option '--bogus'/);
  await expectUsageError(["init", "--dir", dir, "extra"], 'unexpected argument "extra"');
  await expectUsageError(["issue"], 'issue needs "device" or "server", got nothing');
  await expectUsageError(["issue", "device", "--dir", dir], "--id is required");
  await expectUsageError(
    ["issue", "device", "--dir", dir, "--id", "d", "--days", "0"],
    /--days must be a whole number/,
  );
  await expectUsageError(["issue", "server", "--dir", dir], "--name is required");
  await expectUsageError(["revoke", "--dir", dir], "give exactly one of --serial or --cert");
  await expectUsageError(
    ["revoke", "--dir", dir, "--serial", "01", "--reason", "nope"],
    /unknown revocation reason "nope"/,
  );
  await expectUsageError(["crl", "--dir", dir], `${join(dir, "root.crt")}: missing`);
  assert.ok(!existsSync(dir));
});

test("init, issue, revoke and crl work end to end", async () => {
  const dir = join(base, "pki");
  const init = await cli("init", "--dir", dir, "--name", "CLI Root CA", "--algorithm", "ec-p384");
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stdout, /initialised PKI/);
  const device = await cli("issue", "device", "--dir", dir, "--id", "device-9", "--days", "30");
  assert.equal(device.code, 0, device.stderr);
  assert.ok(existsSync(join(dir, "device-9.crt")) && existsSync(join(dir, "device-9.key")));
  await expectUsageError(
    ["issue", "device", "--dir", dir, "--id", "device-9"],
    /device-9\.crt: already exists/,
  );
  const out = join(base, "gateway");
  const server = await cli(
    "issue",
    "server",
    "--dir",
    dir,
    "--name",
    "gw.local",
    "--name",
    "127.0.0.1",
    "--out",
    out,
  );
  assert.equal(server.code, 0, server.stderr);
  const leaf = new x509.X509Certificate(
    readFileSync(`${out}.crt`, "utf8").split(/(?<=-----END CERTIFICATE-----\n)/)[0] ?? "",
  );
  assert.equal(leaf.subjectName.getField("CN")[0], "gw.local");

  const revoked = await cli(
    "revoke",
    "--dir",
    dir,
    "--cert",
    join(dir, "device-9.crt"),
    "--reason",
    "keyCompromise",
  );
  assert.equal(revoked.code, 0, revoked.stderr);
  const serial = /serial ([0-9a-f]+)/.exec(revoked.stdout)?.[1] ?? "";
  const crl = new x509.X509Crl(readFileSync(join(dir, "crl.pem"), "utf8"));
  assert.ok(crl.findRevoked(serial));
  const crlOut = join(base, "out.crl");
  const exported = await cli("crl", "--dir", dir, "--days", "2", "--out", crlOut);
  assert.equal(exported.code, 0, exported.stderr);
  assert.ok(new x509.X509Crl(readFileSync(crlOut, "utf8")).findRevoked(serial));

  writeFileSync(join(dir, "root.key"), "junk");
  await expectUsageError(["crl", "--dir", dir], `${join(dir, "root.key")}: not a PEM private key`);
  await expectUsageError(["init", "--dir", dir], /root\.key: already exists/);
});

test("issue refuses a server name that is not a DNS name or IP address, and a device id outside the registry's syntax; nothing is written", async () => {
  const dir = join(base, "names");
  assert.equal((await cli("init", "--dir", dir)).code, 0);
  const before = readdirSync(dir).sort();
  const server = (...names: string[]) => [
    "issue",
    "server",
    "--dir",
    dir,
    ...names.map((n) => `--name=${n}`),
  ];
  await expectUsageError(server("evil/../x"), /^portcullis pki: --name "evil\/\.\.\/x": expected a DNS name/);
  await expectUsageError(server("gw.local", "a b.example"), /--name "a b\.example": expected a DNS name/);
  for (const bad of [
    "-gw.example",
    "gw-.example",
    "gw..example",
    "gw.example.",
    "*",
    "*.com",
    "a.*.example",
    "1.2.3",
    "fe80::1%eth0",
    `${"a".repeat(64)}.example`,
    "gw_1.example",
    "bücher.example",
  ]) {
    const { code, stderr } = await cli(...server(bad));
    assert.equal(code, 2, `${bad}: ${stderr}`);
    assert.equal(stderr.split("\n").length, 2, `one line: ${stderr}`);
    assert.ok(stderr.includes(JSON.stringify(bad)), stderr);
  }
  await expectUsageError(
    ["issue", "device", "--dir", dir, "--id", "a b"],
    `--id: device id "a b": expected 1 to 256 letters, digits, '.', '_', ':', '@' or '-', starting with a letter or digit`,
  );
  for (const bad of ["../x", "-lead", "a/b", "x".repeat(257), "a\nb"]) {
    const { code, stderr } = await cli("issue", "device", "--dir", dir, `--id=${bad}`);
    assert.equal(code, 2, `${bad}: ${stderr}`);
    assert.equal(stderr.split("\n").length, 2, `one line: ${stderr}`);
    assert.ok(stderr.startsWith(`portcullis pki: --id: device id ${JSON.stringify(bad)}: `), stderr);
  }
  assert.deepEqual(readdirSync(dir).sort(), before, "nothing written when refused");

  const ok = await cli(
    ...server("*.fleet.example", "GW-1.Example", "::1", "10.0.0.1", "xn--bcher-kva.example"),
  );
  assert.equal(ok.code, 0, ok.stderr);
  const device = await cli("issue", "device", "--dir", dir, "--id", "sensor_7:a@site.1");
  assert.equal(device.code, 0, device.stderr);
});
