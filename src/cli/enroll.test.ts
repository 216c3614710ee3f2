// `portcullis enroll` and `reenroll`, run in-process against a local EST server: the files written when the
// certificate arrives (and none otherwise), exit 1 on a refusal, 75 while pending, --wait, the CSR's names,
// and the command-line checks.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { tempDir } from "../../test/helpers/gateway-process.ts";
import { fromBase64Body } from "../enrollment/pkcs7.ts";
import {
  certsOnlyReply,
  deviceCertificate,
  type EstTestServer,
  issueFromCsr,
  startEstTestServer,
} from "../enrollment/testing/est-test-server.ts";
import { x509 } from "../identity/x509.ts";
import { readIssuer } from "../pki/files.ts";
import { createRootCa } from "../pki/issue.ts";
import { type EnrollIo, runEnroll, runReenroll } from "./enroll.ts";
import { UsageError } from "./usage.ts";

const tmp = tempDir("portcullis-enroll-");
let server: EstTestServer;
let caFile: string;
let n = 0;
/** A fresh output directory (not created) for each run. */
const newOut = () => join(tmp.dir, `out-${++n}`);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  sleeps: number[];
}

async function run(command: typeof runEnroll, args: string[]): Promise<Run> {
  const result: Run = { code: -1, stdout: "", stderr: "", sleeps: [] };
  const io: EnrollIo = {
    stdout: (text) => {
      result.stdout += text;
    },
    stderr: (text) => {
      result.stderr += text;
    },
    sleep: async (ms) => {
      result.sleeps.push(ms);
    },
  };
  result.code = await command(args, io);
  return result;
}

const enroll = (out: string, ...more: string[]) =>
  run(runEnroll, [
    ...["--server", server.url.href, "--ca", caFile, "--token", "tok_1.secret"],
    ...["--id", "device-042", "--out", out, ...more],
  ]);
const issue = async (body: string) => certsOnlyReply([await issueFromCsr(server.ca, body)]);
const text = (status: number, body: string) => ({
  status,
  headers: { "content-type": "text/plain" },
  body,
});
const csrOf = (body: string) => new x509.Pkcs10CertificateRequest(fromBase64Body(body));

before(async () => {
  server = await startEstTestServer();
  caFile = join(tmp.dir, "est-ca.pem");
  writeFileSync(caFile, server.ca.certPem);
});
beforeEach(() => {
  server.handler = (req) =>
    req.path.endsWith("/cacerts")
      ? certsOnlyReply([new Uint8Array(server.ca.cert.rawData)])
      : issue(req.body);
});
after(async () => {
  await server.close();
  tmp.cleanup();
});

describe("portcullis enroll", () => {
  test("issued: DIR/ID.crt, DIR/ID.key (0600, matching) and DIR/ca.pem; serial and notAfter printed", async () => {
    const out = newOut();
    const result = await enroll(out);
    assert.equal(result.code, 0, result.stderr);
    const enrollRequest = server.requests.find((r) => r.path.endsWith("/simpleenroll"));
    const basic = Buffer.from("device-042:tok_1.secret").toString("base64");
    assert.equal(enrollRequest?.headers.authorization, `Basic ${basic}`);
    const csr = csrOf(enrollRequest?.body ?? "");
    assert.equal(csr.subject, "CN=device-042");
    const san = csr.getExtension("2.5.29.17");
    assert.ok(san);
    assert.deepEqual(new x509.SubjectAlternativeNameExtension(san.rawData).names.toJSON(), [
      { type: "url", value: "urn:device:device-042" },
    ]);
    const crt = join(out, "device-042.crt");
    const key = join(out, "device-042.key");
    assert.deepEqual(readdirSync(out).sort(), ["ca.pem", "device-042.crt", "device-042.key"]);
    assert.equal(statSync(key).mode & 0o777, 0o600);
    assert.match(readFileSync(key, "utf8"), /^-----BEGIN PRIVATE KEY-----\n/);
    const issued = await readIssuer(crt, key); // throws unless the key matches the certificate
    assert.equal(issued.algorithm, "ec-p256");
    assert.equal(readFileSync(join(out, "ca.pem"), "utf8"), server.ca.certPem);
    assert.ok(
      result.stdout.includes(`certificate ${crt}, key ${key}, CA certificates ${join(out, "ca.pem")}`),
    );
    assert.ok(result.stdout.includes(`serial ${issued.cert.serialNumber}`), result.stdout);
    assert.ok(result.stdout.includes(`valid until ${issued.cert.notAfter.toISOString()}`), result.stdout);
  });

  test("--key-type rsa-2048 makes an RSA key", async () => {
    const out = newOut();
    assert.equal((await enroll(out, "--key-type", "rsa-2048")).code, 0);
    const issued = await readIssuer(join(out, "device-042.crt"), join(out, "device-042.key"));
    assert.equal(issued.algorithm, "rsa-2048");
  });

  test("refused: exit 1 with the reason, no file written, an existing key left alone", async () => {
    server.handler = (req) =>
      req.path.endsWith("/cacerts")
        ? certsOnlyReply([new Uint8Array(server.ca.cert.rawData)])
        : text(403, "token_used: the enrollment token was already used\n");
    const fresh = newOut();
    const result = await enroll(fresh);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      "portcullis: enrollment refused (HTTP 403): token_used: the enrollment token was already used\n",
    );
    assert.equal(result.stdout, "");
    assert.equal(existsSync(fresh), false, "the output directory is not even made");
    const dir = tmp.dir;
    writeFileSync(join(dir, "device-042.key"), "OLD KEY\n");
    assert.equal((await enroll(dir)).code, 1);
    assert.equal(readFileSync(join(dir, "device-042.key"), "utf8"), "OLD KEY\n");
    assert.equal(existsSync(join(dir, "device-042.crt")), false);
  });

  test("pending: exit 75, 'pending approval, retry after N s', nothing written", async () => {
    server.handler = (req) =>
      req.path.endsWith("/cacerts")
        ? certsOnlyReply([new Uint8Array(server.ca.cert.rawData)])
        : { status: 202, headers: { "retry-after": "30" } };
    const out = newOut();
    const result = await enroll(out);
    assert.equal(result.code, 75);
    assert.equal(result.stdout, "pending approval, retry after 30 s\n");
    assert.deepEqual(result.sleeps, []);
    assert.equal(existsSync(out), false);
    const short = await enroll(newOut(), "--wait", "10s");
    assert.equal(short.code, 75, "a Retry-After beyond --wait is not waited for");
    assert.deepEqual(short.sleeps, []);
  });

  test("--wait: retries after Retry-After until issued", async () => {
    let pending = 2;
    server.handler = (req) => {
      if (req.path.endsWith("/cacerts")) return certsOnlyReply([new Uint8Array(server.ca.cert.rawData)]);
      if (pending-- > 0) return { status: 202, headers: { "retry-after": "5" } };
      return issue(req.body);
    };
    const out = newOut();
    const result = await enroll(out, "--wait", "1m");
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.sleeps, [5000, 5000]);
    assert.match(result.stderr, /^pending approval, retrying in 5 s\n/);
    assert.ok(existsSync(join(out, "device-042.key")));
  });

  test("--factory-cert/--factory-key: mutual TLS with the factory certificate, no Authorization", async () => {
    const factory = await deviceCertificate(server, "factory-serial-77");
    writeFileSync(join(tmp.dir, "factory.crt"), factory.certPem);
    writeFileSync(join(tmp.dir, "factory.key"), factory.keyPem);
    const out = newOut();
    const result = await run(runEnroll, [
      ...["--server", server.url.href, "--ca", caFile, "--id", "device-043", "--out", out],
      ...["--factory-cert", join(tmp.dir, "factory.crt"), "--factory-key", join(tmp.dir, "factory.key")],
    ]);
    assert.equal(result.code, 0, result.stderr);
    const req = server.requests.at(-1);
    assert.equal(req?.clientCn, "factory-serial-77");
    assert.equal(req?.headers.authorization, undefined);
    assert.ok(existsSync(join(out, "device-043.crt")));
  });

  test("a server it cannot verify: exit 1, nothing sent, nothing written", async () => {
    const before = server.requests.length;
    const out = newOut();
    const result = await run(runEnroll, [
      ...["--server", server.url.href, "--token", "t", "--id", "device-042", "--out", out],
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^portcullis: cannot reach the EST server at https:\/\/127\.0\.0\.1:\d+: /);
    assert.equal(server.requests.length, before);
    assert.equal(existsSync(out), false);
  });

  test("usage errors are UsageErrors (exit 2), found before any key is made or request sent", async () => {
    const base = ["--server", server.url.href, "--out", newOut()];
    const cases: [string[], RegExp][] = [
      [[...base, "--token", "t"], /enroll needs --id/],
      [[...base, "--token", "t", "--id", "../etc"], /--id: device id "..\/etc"/],
      [[...base, "--id", "d"], /needs --token, or --factory-cert and --factory-key/],
      [[...base, "--id", "d", "--token", "t", "--factory-cert", "c", "--factory-key", "k"], /one of the two/],
      [[...base, "--id", "d", "--factory-cert", "c"], /go together/],
      [[...base, "--id", "d", "--token", "t", "--wait", "30"], /--wait must be 0 or a duration/],
      [[...base, "--id", "d", "--token", "t", "--key-type", "ed448"], /--key-type must be one of ec-p256/],
      [[...base, "--id", "d", "--token", "t", "--label", "a/b"], /CA label "a\/b"/],
      [[...base, "--id", "d", "--token", "t", "--ca", join(tmp.dir, "missing.pem")], /cannot read CA file/],
      [["--server", "http://x", "--out", "o", "--id", "d", "--token", "t"], /--server must be an https URL/],
      [["--server", server.url.href, "--id", "d", "--token", "t", "--out", caFile], /is not a directory/],
    ];
    const before = server.requests.length;
    for (const [args, message] of cases) {
      await assert.rejects(run(runEnroll, args), (err: Error) => {
        assert.ok(err instanceof UsageError, `${args.join(" ")}: ${err}`);
        assert.match(err.message, message);
        return true;
      });
    }
    assert.equal(server.requests.length, before);
  });
});

describe("portcullis reenroll", () => {
  test("new key, same subject and subjectAltName, mTLS with the current certificate; files replaced", async () => {
    const current = await deviceCertificate(server, "device-042");
    const dir = newOut();
    mkdirSync(dir);
    const crt = join(dir, "device-042.crt");
    const key = join(dir, "device-042.key");
    writeFileSync(crt, current.certPem);
    writeFileSync(key, current.keyPem, { mode: 0o600 });
    const result = await run(runReenroll, [
      ...["--server", server.url.href, "--ca", caFile, "--cert", crt, "--key", key, "--out", dir],
    ]);
    assert.equal(result.code, 0, result.stderr);
    const req = server.requests.at(-1);
    assert.equal(req?.path, "/.well-known/est/simplereenroll");
    assert.equal(req?.clientCn, "device-042");
    assert.equal(req?.headers.authorization, undefined);
    const csr = csrOf(req?.body ?? "");
    assert.deepEqual(
      Buffer.from(csr.subjectName.toArrayBuffer()),
      Buffer.from(current.cert.subjectName.toArrayBuffer()),
    );
    const currentSan = current.cert.extensions.find((e) => e.type === "2.5.29.17");
    const csrSan = csr.getExtension("2.5.29.17");
    assert.ok(currentSan && csrSan);
    assert.deepEqual(Buffer.from(csrSan.rawData), Buffer.from(currentSan.rawData));
    const renewed = await readIssuer(crt, key);
    assert.notEqual(renewed.cert.serialNumber, current.cert.serialNumber);
    assert.notEqual(readFileSync(key, "utf8"), current.keyPem, "a new key");
    assert.equal(statSync(key).mode & 0o777, 0o600);
  });

  test("the device id comes from the certificate; a mismatched key or a nameless certificate is a usage error", async () => {
    const current = await deviceCertificate(server, "device-099");
    writeFileSync(join(tmp.dir, "cur.crt"), current.certPem);
    writeFileSync(join(tmp.dir, "cur.key"), current.keyPem);
    const out = newOut();
    const args = ["--server", server.url.href, "--ca", caFile, "--out", out];
    const ok = await run(runReenroll, [
      ...args,
      "--cert",
      join(tmp.dir, "cur.crt"),
      "--key",
      join(tmp.dir, "cur.key"),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(existsSync(join(out, "device-099.crt")));
    const other = await deviceCertificate(server, "device-100");
    writeFileSync(join(tmp.dir, "other.key"), other.keyPem);
    await assert.rejects(
      run(runReenroll, [...args, "--cert", join(tmp.dir, "cur.crt"), "--key", join(tmp.dir, "other.key")]),
      /does not match the certificate/,
    );
    const nameless = await createRootCa({ subject: "O=No Device" });
    writeFileSync(join(tmp.dir, "nameless.crt"), nameless.certPem);
    writeFileSync(join(tmp.dir, "nameless.key"), nameless.keyPem);
    await assert.rejects(
      run(runReenroll, [
        ...args,
        "--cert",
        join(tmp.dir, "nameless.crt"),
        "--key",
        join(tmp.dir, "nameless.key"),
      ]),
      /nameless.crt: names no device \(no urn:device:ID subjectAltName and no CN\)/,
    );
  });
});
