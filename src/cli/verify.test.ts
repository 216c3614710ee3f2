// `portcullis verify` as users run it (the real CLI in a child process): exit codes 0/1/2, the JSON shape,
// --at and --purpose changing the verdict, --crl, and the --config form agreeing with a running demo gateway.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type GatewayProcess, runCli, startDemo, tempDir } from "../../test/helpers/gateway-process.ts";
import { tlsHttp } from "../../test/helpers/tls-http.ts";
import * as c from "../identity/testing/corpus.ts";
import * as p from "../identity/testing/corpus-profile.ts";
import * as r from "../identity/testing/corpus-rules.ts";

const tmp = tempDir("portcullis-verify-");
const file = (name: string, text: string): string => {
  const path = join(tmp.dir, name);
  writeFileSync(path, text);
  return path;
};
const NOW = c.NOW.toISOString();
const root = file("root.pem", c.root.pem);
const int = file("int.pem", c.int.pem);
const good = file("good.pem", c.good.pem);
const goodWithChain = file("good-chain.pem", c.good.pem + c.int.pem);
const expired = file("expired.pem", c.expiredLeaf.pem);
const serverOnly = file("server-only.pem", c.serverOnly.pem);
const ncOutside = file("nc-outside.pem", r.dnsOutside.pem + r.ncDns.pem);
after(() => tmp.cleanup());

const verify = (...args: string[]) => runCli(["verify", ...args]);

describe("portcullis verify --ca", () => {
  test("exit 0: the chain sent as --untrusted, or after the leaf in LEAF.pem", async () => {
    const a = await verify("--ca", root, "--untrusted", int, "--at", NOW, good);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /^accepted$/m);
    assert.match(a.stdout, /0 leaf\s+CN=device-001/);
    assert.match(a.stdout, /2 anchor\s+CN=Acme Root CA,O=Acme/);
    const b = await verify("--ca", root, "--at", NOW, goodWithChain);
    assert.equal(b.code, 0, b.stdout);
  });

  test("exit 1 with the reason code and a sentence", async () => {
    const a = await verify("--ca", root, "--at", NOW, expired);
    assert.equal(a.code, 1);
    assert.match(a.stdout, /^rejected: untrusted_issuer$/m, "no intermediate: untrusted");
    const b = await verify("--ca", root, "--untrusted", int, "--at", NOW, expired);
    assert.equal(b.code, 1);
    assert.match(b.stdout, /^rejected: certificate_expired$/m);
    assert.match(b.stdout, /certificate "CN=device-expired" expired at 2026-04-27T00:00:00.000Z/);
    const nc = await verify("--ca", root, "--at", NOW, ncOutside);
    assert.equal(nc.code, 1);
    assert.match(nc.stdout, /^rejected: name_constraints_violation$/m);
  });

  test("--json: accepted, reason, detail, path of summaries, trustStore", async () => {
    const a = await verify("--ca", root, "--at", NOW, "--json", goodWithChain);
    assert.equal(a.code, 0);
    const ok = JSON.parse(a.stdout);
    assert.equal(ok.accepted, true);
    assert.equal(ok.reason, undefined);
    assert.equal(ok.trustStore, "root.pem");
    assert.match(ok.detail, /is valid through trust store "root.pem"/);
    assert.deepEqual(
      ok.path.map((p: { subject: string }) => p.subject),
      [c.good.cert.subject, c.int.cert.subject, c.root.cert.subject],
    );
    assert.deepEqual(ok.path[0], {
      subject: c.good.cert.subject,
      issuer: c.good.cert.issuer,
      fingerprint: c.good.cert.fingerprint,
      notBefore: c.good.cert.notBefore.toISOString(),
      notAfter: c.good.cert.notAfter.toISOString(),
    });
    const b = await verify("--ca", root, "--untrusted", int, "--at", NOW, "--json", expired);
    assert.equal(b.code, 1);
    const no = JSON.parse(b.stdout);
    assert.equal(no.accepted, false);
    assert.equal(no.reason, "certificate_expired");
    assert.deepEqual(no.path, []);
    assert.equal(no.trustStore, "root.pem");
  });

  test("--at in the past or the future changes the verdict; Unix seconds work too", async () => {
    const args = ["--ca", root, "--untrusted", int, "--json"];
    const at = async (time: string) => JSON.parse((await verify(...args, "--at", time, good)).stdout);
    assert.equal((await at(NOW)).accepted, true);
    assert.equal((await at(String(c.NOW.getTime() / 1000))).accepted, true);
    assert.equal((await at("2030-01-01T00:00:00Z")).reason, "certificate_expired");
    assert.equal((await at("2020-01-01")).reason, "certificate_not_yet_valid");
  });

  test("--purpose server / any", async () => {
    const base = ["--ca", root, "--untrusted", int, "--at", NOW];
    const a = await verify(...base, "--purpose", "server", good);
    assert.equal(a.code, 1);
    assert.match(a.stdout, /^rejected: wrong_purpose$/m);
    assert.equal((await verify(...base, "--purpose", "server", serverOnly)).code, 0);
    assert.equal((await verify(...base, serverOnly)).code, 1);
    assert.equal((await verify(...base, "--purpose", "any", serverOnly)).code, 0);
  });

  test("exit 1 for every certificate problem, in the leaf, the chain or the CA file, naming it", async () => {
    const garbage = file("garbage.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    const truncated = file("truncated.pem", c.good.pem.slice(0, 200));
    const derGarbage = file("garbage.der", "\x30\x03\x02\x01\x00");
    // OpenSSL reads it; the engine refuses its nameConstraints: the message names the certificate.
    const badNc = file("bad-nc.pem", p.ncIpBadLength.pem);
    const cases: [string[], string, RegExp][] = [
      [["--ca", root, garbage], "bad_certificate", /garbage.pem: PEM block #1 does not parse/],
      [["--ca", root, truncated], "bad_certificate", /not terminated/],
      [["--ca", root, derGarbage], "bad_certificate", /garbage.der: malformed certificate/],
      [["--ca", root, "--untrusted", garbage, good], "bad_certificate", /garbage.pem/],
      [["--ca", garbage, good], "bad_certificate", /--ca .*garbage.pem/],
      [["--ca", good, good], "untrusted_issuer", /"CN=device-001" is not a CA/],
      [["--ca", badNc, good], "bad_certificate", /"CN=NC bad IP CA,O=Acme".*iPAddress of 5 bytes/],
      [
        ["--ca", file("no-ski.pem", p.rootNoSki.pem), good],
        "bad_certificate",
        /without a subjectKeyIdentifier/,
      ],
    ];
    for (const [args, reason, detail] of cases) {
      const result = await verify("--at", NOW, ...args);
      assert.equal(result.code, 1, `${args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stderr, "");
      assert.match(result.stdout, new RegExp(`^rejected: ${reason}$`, "m"), args.join(" "));
      assert.match(result.stdout, detail);
      const json = JSON.parse((await verify("--json", "--at", NOW, ...args)).stdout);
      assert.equal(json.accepted, false);
      assert.equal(json.reason, reason);
    }
  });

  test("a long subject is shortened in human output, and still names the certificate", async () => {
    const a = await verify("--ca", root, "--at", NOW, file("long.pem", p.longSubject.pem));
    assert.equal(a.code, 1);
    const line = a.stdout.split("\n").find((l) => l.includes("CN=")) ?? "";
    assert.ok(line.length < 300, line);
    assert.match(line, /x… \(sha256:[0-9a-f]{16}…\)/);
  });

  test("exit 2 with one line on stderr for usage and input errors", async () => {
    const key = file("key.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    const cases: [string[], RegExp][] = [
      [[good], /--ca ROOTS.pem or --config FILE is required/],
      [["--ca", root], /exactly one LEAF.pem/],
      [["--ca", join(tmp.dir, "missing.pem"), good], /cannot read .*missing.pem: ENOENT/],
      [["--ca", root, "--at", "yesterday", good], /--at "yesterday"/],
      [["--ca", root, "--max-depth", "1", good], /--max-depth/],
      [["--ca", root, "--purpose", "email", good], /--purpose/],
      [["--ca", root, file("text.txt", "hello")], /holds no PEM block and is not a DER certificate/],
      [["--ca", root, key], /is a "PRIVATE KEY", not a CERTIFICATE/],
      [["--ca", file("empty.pem", "nothing here"), good], /no certificate found/],
      [["--ca", root, "--crl", good, good], /CRL/],
      [["--ca", root, "--bogus", good], /bogus/],
      [["--ca", root, "--host", "x", good], /--host and --path go with --config/],
    ];
    for (const [args, message] of cases) {
      const result = await verify(...args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stdout}`);
      assert.equal(result.stdout, "");
      const lines = result.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, result.stderr);
      assert.match(result.stderr, message);
    }
  });
});

describe("portcullis verify against the demo PKI and config, next to the running demo gateway", () => {
  const demo = tempDir("portcullis-verify-demo-");
  let gw: GatewayProcess;
  const certs = ["device", "expired-device", "wrong-device", "revoked-device", "unregistered-device"];
  const at = (name: string) => join(demo.dir, name);

  before(async () => {
    gw = await startDemo(demo.dir);
  });
  after(async () => {
    await gw.stop();
    demo.cleanup();
  });

  test("--crl: the revoked device is certificate_revoked, the good one passes", async () => {
    const args = ["--ca", at("ca-chain.crt"), "--crl", at("crl.pem"), "--crl", at("root-crl.pem")];
    const revoked = await verify(...args, at("revoked-device.crt"));
    assert.equal(revoked.code, 1);
    assert.match(revoked.stdout, /^rejected: certificate_revoked$/m);
    assert.equal((await verify(...args, at("device.crt"))).code, 0);
  });

  test("--config explains the route, the trust stores, the path and what decided", async () => {
    const config = at("portcullis.yaml");
    const a = await verify("--config", config, "--host", "localhost", "--path", "/echo", at("device.crt"));
    assert.equal(a.code, 0, a.stdout + a.stderr);
    assert.match(a.stdout, /route "echo" matched localhost\/echo/);
    assert.match(a.stdout, /trust stores "devices"/);
    assert.match(a.stdout, /trust store "devices": path built/);
    assert.match(a.stdout, /decided by: path validation in trust store "devices"/);
    const pub = await verify(
      "--config",
      config,
      "--host",
      "localhost",
      "--path",
      "/public/echo",
      at("wrong-device.crt"),
    );
    assert.equal(pub.code, 0);
    assert.match(pub.stdout, /public/);
    const none = await verify(
      "--config",
      config,
      "--host",
      "unknown.example",
      "--path",
      "/echo",
      at("device.crt"),
    );
    assert.equal(none.code, 1);
    assert.match(none.stdout, /404/);
  });

  test("--config consults the config's registry, read-only, or says plainly that it could not", async () => {
    const config = at("portcullis.yaml");
    const args = ["--config", config, "--host", "localhost", "--path", "/echo"];
    const known = await verify(...args, at("device.crt"));
    assert.equal(known.code, 0, known.stdout + known.stderr);
    assert.match(known.stdout, /^registry: registered device "device-001" \(active, groups demo\)$/m);
    const unknown = await verify(...args, at("unregistered-device.crt"));
    assert.equal(unknown.code, 1, unknown.stdout);
    assert.match(unknown.stdout, /^registry: no device is registered for certificate [0-9a-f]{64}$/m);
    assert.match(unknown.stdout, /^rejected: unknown_device$/m);

    const elsewhere = at("portcullis-no-store.yaml");
    const text = readFileSync(config, "utf8");
    assert.match(text, /url: sqlite:portcullis\.db/);
    writeFileSync(elsewhere, text.replace("url: sqlite:portcullis.db", "url: sqlite:no-such-dir/none.db"));
    const none = await verify(
      "--config",
      elsewhere,
      "--host",
      "localhost",
      "--path",
      "/echo",
      at("device.crt"),
    );
    assert.equal(none.code, 1, none.stdout);
    assert.match(none.stdout, /could not consult the SQLite registry .*none\.db: the file does not exist/);
    assert.match(none.stdout, /^rejected: registry_unavailable$/m);
    assert.equal(existsSync(at("no-such-dir")), false, "nothing was created");
  });

  for (const name of certs) {
    test(`--config agrees with the gateway on ${name}`, async () => {
      const cli = await verify(
        "--config",
        at("portcullis.yaml"),
        "--host",
        "localhost",
        "--path",
        "/echo",
        "--json",
        at(`${name}.crt`),
      );
      assert.notEqual(cli.code, 2, cli.stderr);
      const verdict = JSON.parse(cli.stdout);
      const answer = await tlsHttp({
        port: gw.ports.demo ?? 0,
        servername: "localhost",
        path: "/echo",
        cert: readFileSync(at(`${name}.crt`), "utf8"),
        key: readFileSync(at(`${name}.key`), "utf8"),
      });
      const status = answer.http?.status;
      assert.ok(status !== undefined, `no HTTP answer: ${answer.error}`);
      const body = status === 200 ? {} : JSON.parse(answer.http?.body ?? "{}");
      // The registry too (read-only): unregistered-device is unknown_device for both.
      assert.equal(verdict.registry, "required", cli.stdout);
      assert.equal(
        verdict.accepted,
        status === 200,
        `CLI ${cli.stdout} vs gateway ${status} ${answer.http?.body}`,
      );
      if (!verdict.accepted) assert.equal(verdict.reason, body.reason);
    });
  }
});
