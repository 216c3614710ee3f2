// The EST client against a local HTTPS server: what it sends (path, content type, base64 CSR, the token as
// Basic or Bearer, the client certificate) and how it reads each answer (issued, 202 pending, refusals,
// garbage), and that it never talks to a server it cannot verify.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { x509 } from "../identity/x509.ts";
import { generateKeyPair, signingAlgorithm } from "../pki/keys.ts";
import { EstClient, type EstClientOptions, EstError, retryAfterSeconds } from "./est-client.ts";
import { csrAttrs, fromBase64Body, toBase64Body } from "./pkcs7.ts";
import {
  certsOnlyReply,
  deviceCertificate,
  type EstTestServer,
  issueFromCsr,
  startEstTestServer,
} from "./testing/est-test-server.ts";

let server: EstTestServer;
let csr: Uint8Array;
let csrSpki: Buffer;

const connect = (options: Partial<EstClientOptions> = {}) =>
  new EstClient({ server: server.url, ca: server.ca.certPem, ...options });
const last = () => server.requests.at(-1);
const text = (status: number, body: string) => ({
  status,
  headers: { "content-type": "text/plain; charset=utf-8" },
  body,
});

before(async () => {
  server = await startEstTestServer();
  const keys = await generateKeyPair("ec-p256");
  const request = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: ["device-042"] }],
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: "urn:device:device-042" }])],
    keys,
    signingAlgorithm: signingAlgorithm("ec-p256"),
  });
  csr = new Uint8Array(request.rawData);
  csrSpki = Buffer.from(await crypto.subtle.exportKey("spki", keys.publicKey));
});
after(() => server.close());

describe("EstClient requests", () => {
  test("cacerts: GET /.well-known/est/cacerts, no credentials, the CA certificates back", async () => {
    const certs = await connect({ token: "tok_1.secret", deviceId: "device-042" }).cacerts();
    assert.deepEqual(certs, [new Uint8Array(server.ca.cert.rawData)]);
    assert.equal(last()?.method, "GET");
    assert.equal(last()?.path, "/.well-known/est/cacerts");
    assert.equal(last()?.headers.authorization, undefined, "cacerts needs no authentication");
  });

  test("a label and a path prefix go into the path", async () => {
    const prefixed = new URL("/est-proxy/", server.url);
    await connect({ server: prefixed, label: "devices" }).cacerts();
    assert.equal(last()?.path, "/est-proxy/.well-known/est/devices/cacerts");
  });

  test("simpleenroll: POST application/pkcs10, a base64 CSR that parses, Basic <id>:<token>; issued", async () => {
    server.handler = async (req) => certsOnlyReply([await issueFromCsr(server.ca, req.body)]);
    const result = await connect({ token: "tok_1.secret", deviceId: "device-042" }).simpleEnroll(csr);
    const req = last();
    assert.equal(req?.method, "POST");
    assert.equal(req?.path, "/.well-known/est/simpleenroll");
    assert.equal(req?.headers["content-type"], "application/pkcs10");
    assert.deepEqual(fromBase64Body(req?.body ?? ""), csr);
    assert.match(req?.body ?? "", /^([A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n$/);
    const basic = Buffer.from("device-042:tok_1.secret").toString("base64");
    assert.equal(req?.headers.authorization, `Basic ${basic}`);
    assert.equal(result.kind, "issued");
    assert.ok(result.kind === "issued");
    const cert = new x509.X509Certificate(result.certificates[0] ?? new Uint8Array());
    assert.deepEqual(Buffer.from(cert.publicKey.rawData), csrSpki);
    assert.equal(cert.subject, "CN=device-042");
  });

  test("a token without a device id goes as Bearer", async () => {
    server.handler = async (req) => certsOnlyReply([await issueFromCsr(server.ca, req.body)]);
    await connect({ token: "tok_2.secret" }).simpleEnroll(csr);
    assert.equal(last()?.headers.authorization, "Bearer tok_2.secret");
  });

  test("simplereenroll: the client certificate is presented (mTLS), no Authorization", async () => {
    const current = await deviceCertificate(server, "device-042");
    server.handler = async (req) => certsOnlyReply([await issueFromCsr(server.ca, req.body)]);
    const result = await connect({ cert: current.certPem, key: current.keyPem }).simpleReenroll(csr);
    assert.equal(result.kind, "issued");
    assert.equal(last()?.path, "/.well-known/est/simplereenroll");
    assert.equal(last()?.clientCn, "device-042");
    assert.equal(last()?.headers.authorization, undefined);
  });

  test("csrattrs: the OIDs; 204 and 404 mean none", async () => {
    const oids = ["1.2.840.113549.1.9.7", "1.3.132.0.34"];
    server.handler = () => ({
      status: 200,
      headers: { "content-type": "application/csrattrs" },
      body: toBase64Body(csrAttrs(oids)),
    });
    assert.deepEqual(await connect().csrAttrs(), oids);
    assert.equal(last()?.path, "/.well-known/est/csrattrs");
    server.handler = () => ({ status: 204 });
    assert.deepEqual(await connect().csrAttrs(), []);
    server.handler = () => text(404, "not found");
    assert.deepEqual(await connect().csrAttrs(), []);
  });
});

describe("EstClient answers", () => {
  test("202 with Retry-After: pending, in seconds (delay-seconds or an HTTP-date)", async () => {
    server.handler = () => ({ status: 202, headers: { "retry-after": "7" } });
    assert.deepEqual(await connect({ token: "t" }).simpleEnroll(csr), {
      kind: "pending",
      retryAfterSeconds: 7,
    });
    const date = new Date(Date.now() + 120_000).toUTCString();
    server.handler = () => ({ status: 202, headers: { "retry-after": date } });
    const result = await connect({ token: "t" }).simpleEnroll(csr);
    assert.ok(result.kind === "pending" && result.retryAfterSeconds > 100 && result.retryAfterSeconds <= 120);
  });

  test("202 without a usable Retry-After is a protocol error", async () => {
    server.handler = () => ({ status: 202 });
    await assert.rejects(
      connect({ token: "t" }).simpleEnroll(csr),
      /202 \(pending\) without a valid Retry-After/,
    );
  });

  test("400/401/403/413/429: refused with the status and the text body", async () => {
    for (const status of [400, 401, 403, 413, 429]) {
      server.handler = () => text(status, "token_used: the enrollment token was already used\n");
      assert.deepEqual(await connect({ token: "t", deviceId: "d" }).simpleEnroll(csr), {
        kind: "refused",
        status,
        reason: "token_used: the enrollment token was already used",
      });
    }
    server.handler = () => ({ status: 403 });
    const empty = await connect({ token: "t" }).simpleEnroll(csr);
    assert.deepEqual(empty, { kind: "refused", status: 403, reason: "no reason given" });
  });

  test("a 200 that is not a certs-only PKCS#7 is an error naming the problem", async () => {
    const pkcs7 = { "content-type": "application/pkcs7-mime" };
    const cases: [ReturnType<EstTestServer["handler"]>, RegExp][] = [
      [{ status: 200, headers: pkcs7, body: "not base64!" }, /simpleenroll: base64 body: character "!"/],
      [
        { status: 200, headers: pkcs7, body: toBase64Body(csr) },
        /simpleenroll: certs-only PKCS#7: not a CMS/,
      ],
      [
        { status: 200, headers: { "content-type": "text/html" }, body: "<html>" },
        /answered text\/html, expected application\/pkcs7-mime/,
      ],
      [{ status: 204 }, /unexpected HTTP 204/],
    ];
    for (const [reply, message] of cases) {
      server.handler = () => reply;
      await assert.rejects(connect({ token: "t" }).simpleEnroll(csr), (err: Error) => {
        assert.ok(err instanceof EstError, String(err));
        assert.match(err.message, message);
        return true;
      });
    }
  });

  test("a raw DER body is read too", async () => {
    const der = fromBase64Body(certsOnlyReply([new Uint8Array(server.ca.cert.rawData)]).body as string);
    server.handler = () => ({
      status: 200,
      headers: { "content-type": "application/pkcs7-mime" },
      body: der,
    });
    assert.equal((await connect().cacerts()).length, 1);
  });

  test("cacerts other than 200 is an error with the server's text", async () => {
    server.handler = () => text(503, "maintenance");
    await assert.rejects(connect().cacerts(), /cacerts: unexpected HTTP 503 from the server: maintenance/);
  });
});

describe("EstClient verifies the server", () => {
  test("without the server's CA (system roots only), the handshake fails: nothing is sent", async () => {
    const before = server.requests.length;
    await assert.rejects(
      new EstClient({ server: server.url }).cacerts(),
      (err: Error) =>
        err instanceof EstError &&
        err.status === 0 &&
        /cannot reach the EST server at https:\/\/127.0.0.1:\d+: .*(self[- ]signed|unable to verify|UNABLE_TO)/i.test(
          err.message,
        ),
    );
    assert.equal(server.requests.length, before);
  });

  test("a name the certificate does not carry is refused", async () => {
    const other = await startEstTestServer();
    try {
      await assert.rejects(connect({ server: other.url }).cacerts(), /cannot reach the EST server/);
    } finally {
      await other.close();
    }
  });

  test("options are checked", () => {
    assert.throws(() => new EstClient({ server: new URL("http://localhost") }), /must be https/);
    assert.throws(() => connect({ label: "a/b" }), /CA label "a\/b"/);
    assert.throws(() => connect({ cert: "x" }), /go together/);
  });
});

test("retryAfterSeconds", () => {
  const now = Date.parse("2026-12-04T12:00:00Z");
  assert.equal(retryAfterSeconds("30", now), 30);
  assert.equal(retryAfterSeconds("0", now), 1);
  assert.equal(retryAfterSeconds("Fri, 04 Dec 2026 12:01:00 GMT", now), 60);
  assert.equal(retryAfterSeconds("Fri, 04 Dec 2026 11:00:00 GMT", now), 1);
  assert.equal(retryAfterSeconds(undefined, now), undefined);
  assert.equal(retryAfterSeconds("soon", now), undefined);
  assert.equal(retryAfterSeconds("-5", now), undefined);
});
