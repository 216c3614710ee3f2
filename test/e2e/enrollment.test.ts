// EST enrollment (RFC 7030 / RFC 8951) end to end, as a user runs it: one gateway process with two
// enrollment profiles, curl and openssl as the device, the admin API and the `portcullis tokens` /
// `portcullis enroll` CLI as the operator. Covers cacerts and csrattrs, a token enrollment whose certificate
// works at once on a registry-required route, the token's rules (single use, expiry, revocation, device,
// none sent), the CSR rules and their reason codes in /decisions and /metrics, the rate limit, the CLI's
// token round trip, and revocation (refused at once, on the CA's CRL). Factory bootstrap, approval and
// renewal: enrollment-renewal.test.ts.
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import type { CurlResult } from "../helpers/clients.ts";
import {
  assertIssued,
  assertRefused,
  base64Of,
  deviceFiles,
  type EnrollmentPki,
  echo,
  enrollmentConfig,
  enrollmentPki,
  est,
  makeCsr,
  openssl,
  pemBlocks,
  pkcs7Certs,
  portcullis,
  profile,
  run,
  serialOf,
  serverUrl,
  tokenEnroll,
  x509Text,
} from "../helpers/enrollment.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { AdminApi, type DeviceJson, metricValue, waitFor } from "../helpers/registry.ts";

interface TokenJson {
  id: string;
  token: string;
  deviceId: string;
  profile: string;
  expiresAt: string;
  state: string;
}
interface DecisionJson {
  route?: string;
  allow: boolean;
  reason?: string;
  deviceId?: string;
}
interface CertificateJson {
  serial: string;
  deviceId: string;
  profile: string;
  operation: string;
  state: string;
  fingerprint: string;
  revocationReason?: string;
}

describe("enrollment with tokens: curl, openssl and the CLI (one gateway)", () => {
  const tmp = tempDir("portcullis-enroll-");
  const dir = tmp.dir;
  let pki: EnrollmentPki;
  let upstream: EchoUpstream;
  let gw: GatewayProcess;
  let admin: AdminApi;
  let port = 0;

  before(async () => {
    pki = await enrollmentPki(dir);
    upstream = await startEchoUpstream();
    gw = await startGateway(
      dir,
      enrollmentConfig(upstream.url, [
        profile("devices", { crlFile: "enrolled-crl.pem" }),
        profile("strict", {
          keyTypes: ["ec"],
          bootstrap: { tokens: {} },
          rateLimit: { requests: 2, interval: "1h" },
        }),
      ]),
    );
    port = gw.ports.main ?? 0;
    admin = new AdminApi(gw.adminPort, pki.token);
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
    tmp.cleanup();
  });

  const newToken = async (deviceId: string, extra: { profile?: string; ttl?: string } = {}) => {
    const r = await admin.call<TokenJson>("POST", "/enrollment-tokens", { deviceId, ...extra });
    assert.equal(r.status, 201, r.text);
    return r.json;
  };
  const enroll = (body: string, basic: string, op = "simpleenroll") => est({ port, dir, op, body, basic });
  const cliOutput = (r: { stdout: string; stderr: string }) => `${r.stdout}${r.stderr}`;
  const certificatesOf = async (id: string) => {
    const r = await admin.call<{ certificates: CertificateJson[] }>("GET", `/devices/${id}/certificates`);
    assert.equal(r.status, 200, r.text);
    return r.json.certificates;
  };

  test("cacerts is the issuing CA and its chain (openssl pkcs7); csrattrs parses (openssl asn1parse)", async () => {
    const r = await est({ port, dir, op: "cacerts" });
    assert.equal(r.status, 200, r.body);
    assert.match(r.headers["content-type"] ?? "", /^application\/pkcs7-mime/);
    const certs = pemBlocks(await pkcs7Certs(r.body));
    assert.equal(certs.length, 2, "the enrollment CA and the root above it");
    const subjects = await Promise.all(certs.map(async (pem) => await x509Text(pem)));
    assert.ok(
      subjects.some((t) => /subject=CN=Portcullis Demo Enrollment CA/.test(t)),
      subjects.join("\n"),
    );
    assert.ok(
      subjects.some((t) => /subject=CN=Portcullis Demo Root CA/.test(t)),
      subjects.join("\n"),
    );
    // What cacerts gives is exactly the configured CA files.
    const enrollCa = readFileSync(join(dir, "enroll-ca.crt"), "utf8");
    const fingerprint = async (pem: string) =>
      (await openssl(["x509", "-noout", "-fingerprint"], pem)).stdout;
    const got = await Promise.all(certs.map(fingerprint));
    assert.ok(got.includes(await fingerprint(enrollCa)));

    // The second profile answers under its CA label with the same CA.
    const labelled = await est({ port, dir, op: "strict/cacerts" });
    assert.equal(labelled.status, 200, labelled.body);
    assert.equal(pemBlocks(await pkcs7Certs(labelled.body)).length, 2);
    assert.equal((await est({ port, dir, op: "nope/cacerts" })).status, 404);

    const attrs = await est({ port, dir, op: "csrattrs" });
    assert.equal(attrs.status, 200, attrs.body);
    assert.match(attrs.headers["content-type"] ?? "", /^application\/csrattrs/);
    const der = Buffer.from(attrs.body, "base64");
    const parsed = (await openssl(["asn1parse", "-inform", "DER"], der)).stdout;
    assert.match(parsed, /SEQUENCE/);
    assert.match(parsed, /id-ecPublicKey/, parsed);
    assert.match(parsed, /ecdsa-with-SHA256/, parsed);
    // The strict profile takes EC keys only, and says so.
    const strict = await est({ port, dir, op: "strict/csrattrs" });
    const strictParsed = (await openssl(["asn1parse", "-inform", "DER"], Buffer.from(strict.body, "base64")))
      .stdout;
    assert.match(strictParsed, /id-ecPublicKey/);
    assert.doesNotMatch(strictParsed, /rsaEncryption/, strictParsed);
    assert.match(parsed, /rsaEncryption/, "the default profile takes RSA keys too");
  });

  test("a token enrollment (curl + openssl req) issues a client certificate that works at once on /echo", async () => {
    const id = "curl-001";
    const token = await newToken(id);
    assert.equal((await admin.call("GET", `/devices/${id}`)).status, 404, "unknown before enrollment");
    const csr = await makeCsr(dir, id, id);
    const r = await enroll(csr.base64, `${id}:${token.token}`);
    const leaf = await assertIssued(r);

    const text = await x509Text(leaf);
    assert.match(text, /subject=CN=curl-001\n/, text);
    assert.match(text, /URI:urn:device:curl-001/, text);
    assert.match(text, /TLS Web Client Authentication/, text);
    assert.match(text, /Issuer: CN ?= ?Portcullis Demo Enrollment CA/, text);
    // The certificate is for the CSR's key.
    const certKey = (await openssl(["x509", "-noout", "-pubkey"], leaf)).stdout;
    const csrKey = (await openssl(["pkey", "-in", csr.keyFile, "-pubout"])).stdout;
    assert.equal(certKey, csrKey);
    // It verifies against the chain cacerts gives.
    const chain = pemBlocks(await pkcs7Certs((await est({ port, dir, op: "cacerts" })).body)).join("");
    writeFileSync(join(dir, "est-chain.pem"), chain);
    writeFileSync(join(dir, `${id}-leaf.pem`), leaf);
    const verified = await openssl([
      "verify",
      "-CAfile",
      join(dir, "est-chain.pem"),
      "-purpose",
      "sslclient",
      join(dir, `${id}-leaf.pem`),
    ]);
    assert.match(verified.stdout, /: OK/);

    // At once, on a route that requires a registered device.
    const name = deviceFiles(dir, id, leaf, readFileSync(csr.keyFile, "utf8"));
    const ok = await echo(port, dir, name);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.json<{ headers: Record<string, string> }>().headers["x-device-id"], id);

    const device = await admin.call<DeviceJson>("GET", `/devices/${id}`);
    assert.equal(device.status, 200, device.text);
    assert.equal(device.json.status, "active");
    const certs = await admin.call<{ certificates: CertificateJson[] }>("GET", `/devices/${id}/certificates`);
    assert.equal(certs.status, 200, certs.text);
    assert.equal(certs.json.certificates.length, 1, certs.text);
    const [listed] = certs.json.certificates;
    assert.equal(listed?.serial, await serialOf(leaf));
    assert.equal(listed?.profile, "devices");
    assert.equal(listed?.operation, "enroll");
    assert.equal(listed?.state, "valid");
    const tokens = await admin.call<{ tokens: TokenJson[] }>("GET", `/enrollment-tokens?deviceId=${id}`);
    assert.equal(tokens.json.tokens.find((t) => t.id === token.id)?.state, "used", tokens.text);
  });

  test("a Bearer token over HTTP/2, an Ed25519 key and a CSR without SANs enroll too", async () => {
    const id = "bearer-001";
    const token = await newToken(id);
    const csr = await makeCsr(dir, id, id, { keyKind: "ed25519", san: [] });
    const r = await est({ port, dir, op: "simpleenroll", body: csr.base64, bearer: token.token, http: "2" });
    assert.equal(r.httpVersion, "2");
    const leaf = await assertIssued(r);
    const text = await x509Text(leaf);
    assert.match(text, /ED25519/);
    assert.match(text, /URI:urn:device:bearer-001/, "the device's name is added");
    const name = deviceFiles(dir, id, leaf, readFileSync(csr.keyFile, "utf8"));
    assert.equal((await echo(port, dir, name)).status, 200);
  });

  test("tokens: single use, expiry, revocation, the device they name, and none at all", async () => {
    const csr = await makeCsr(dir, "tok-a", "tok-a");
    // Single use: the second enrollment with the same token is refused.
    const a = await newToken("tok-a");
    await assertIssued(await enroll(csr.base64, `tok-a:${a.token}`));
    assertRefused(await enroll(csr.base64, `tok-a:${a.token}`), 401, "token_spent");

    // Expired: a one-second token, used after its expiresAt.
    const b = await newToken("tok-b", { ttl: "1s" });
    const csrB = await makeCsr(dir, "tok-b", "tok-b");
    await sleep(Math.max(0, Date.parse(b.expiresAt) - Date.now()) + 100);
    assertRefused(await enroll(csrB.base64, `tok-b:${b.token}`), 401, "token_expired");

    // Revoked through the admin API.
    const c = await newToken("tok-c");
    const revoked = await admin.call<TokenJson>("DELETE", `/enrollment-tokens/${c.id}`);
    assert.equal(revoked.status, 200, revoked.text);
    assert.equal(revoked.json.state, "revoked");
    const csrC = await makeCsr(dir, "tok-c", "tok-c");
    assertRefused(await enroll(csrC.base64, `tok-c:${c.token}`), 401, "token_invalid");

    // Another device's token: the Basic user is not the token's device.
    const d = await newToken("tok-d");
    const csrE = await makeCsr(dir, "tok-e", "tok-e");
    assertRefused(await enroll(csrE.base64, `tok-e:${d.token}`), 401, "token_invalid");
    // A made-up token, and a wrong secret of a real one.
    assertRefused(await enroll(csrE.base64, "tok-e:tok_nope.nope"), 401, "token_invalid");
    assertRefused(await enroll(csrE.base64, `tok-d:${d.token.slice(0, -2)}xx`), 401, "token_invalid");
    // A token of the default profile is not one of the strict profile.
    const csrD = await makeCsr(dir, "tok-d", "tok-d");
    assertRefused(await enroll(csrD.base64, `tok-d:${d.token}`, "strict/simpleenroll"), 401, "token_invalid");
    // None of that spent tok-d's token.
    await assertIssued(await enroll(csrD.base64, `tok-d:${d.token}`));

    // No credentials at all.
    assertRefused(await est({ port, dir, op: "simpleenroll", body: csrE.base64 }), 401, "no_credentials");
    for (const id of ["tok-b", "tok-c", "tok-e"]) {
      assert.equal((await admin.call("GET", `/devices/${id}`)).status, 404, `${id} was not created`);
    }
  });

  test("refusals: CSR rules, suspended device, rate limit — each in /decisions and /metrics; a refusal spends no token", async () => {
    const refusals: { deviceId: string; profile: string; reason: string }[] = [];
    const expect = (r: CurlResult, status: number, reason: string, deviceId: string, prof = "devices") => {
      assertRefused(r, status, reason);
      refusals.push({ deviceId, profile: prof, reason });
    };

    const id = "csr-001";
    const token = await newToken(id);
    const basic = `${id}:${token.token}`;
    // RSA-1024: under the trust store's key policy.
    const weak = await makeCsr(dir, "csr-weak", id, { keyKind: "rsa1024" });
    expect(await enroll(weak.base64, basic), 403, "key_not_allowed", id);
    // A name beyond the device's own.
    const extra = await makeCsr(dir, "csr-extra", id, { san: [`URI:urn:device:${id}`, "DNS:evil.example"] });
    expect(await enroll(extra.base64, basic), 403, "csr_not_allowed", id);
    // Another device's CN.
    const other = await makeCsr(dir, "csr-other", id, { subject: "/CN=someone-else", san: [] });
    expect(await enroll(other.base64, basic), 403, "csr_not_allowed", id);
    // A broken signature: the last byte of the DER is the signature's.
    const good = await makeCsr(dir, "csr-good", id);
    const broken = Buffer.from(good.der);
    broken[broken.length - 1] = (broken[broken.length - 1] ?? 0) ^ 0xff;
    expect(await enroll(await base64Of(broken), basic), 400, "proof_of_possession_failed", id);
    // Not a CSR at all.
    expect(await enroll("this is not a certification request\n", basic), 400, "csr_invalid", id);
    // None of it spent the token: a good CSR with it is issued.
    await assertIssued(await enroll(good.base64, basic));
    assert.equal(refusals.length, 5);

    // A suspended device gets no certificate, even with a fresh token.
    const suspended = await tokenEnroll(admin, port, dir, "susp-001");
    await admin.patch("susp-001", { status: "suspended" });
    const again = await newToken("susp-001");
    const csrS = await makeCsr(dir, "susp-001-2", "susp-001");
    expect(await enroll(csrS.base64, `susp-001:${again.token}`), 403, "device_suspended", "susp-001");
    assert.equal((await echo(port, dir, suspended.name)).status, 403, "nor does its certificate pass");

    // strict: EC keys only, and two requests per device and hour.
    const sid = "strict-001";
    const s1 = await newToken(sid, { profile: "strict" });
    const rsa = await makeCsr(dir, "strict-rsa", sid, { keyKind: "rsa" });
    const strictEnroll = (body: string, t: string) => enroll(body, `${sid}:${t}`, "strict/simpleenroll");
    expect(await strictEnroll(rsa.base64, s1.token), 403, "key_not_allowed", sid, "strict");
    const ec = await makeCsr(dir, "strict-ec", sid);
    await assertIssued(await strictEnroll(ec.base64, s1.token));
    const s2 = await newToken(sid, { profile: "strict" });
    const limited = await strictEnroll(ec.base64, s2.token);
    expect(limited, 429, "enrollment_rate_limited", sid, "strict");
    assert.match(limited.headers["retry-after"] ?? "", /^[1-9]\d*$/, JSON.stringify(limited.headers));
    assert.ok(Number(limited.headers["retry-after"]) <= 3600);

    const decisions = await admin.call<{ decisions: DecisionJson[] }>("GET", "/decisions?limit=1000");
    assert.equal(decisions.status, 200, decisions.text);
    const metrics = (await admin.call("GET", "/metrics")).text;
    for (const { deviceId, profile: prof, reason } of refusals) {
      const found = decisions.json.decisions.find((d) => d.deviceId === deviceId && d.reason === reason);
      assert.ok(found, `no decision ${reason} for ${deviceId}`);
      assert.equal(found.route, `est:${prof}/enroll`);
      assert.equal(found.allow, false);
      const labels = { profile: prof, operation: "enroll", outcome: "refused", reason };
      const count = metricValue(metrics, "portcullis_enrollments_total", labels) ?? 0;
      assert.ok(count >= 1, `portcullis_enrollments_total ${JSON.stringify(labels)}`);
    }
    const issued = decisions.json.decisions.find((d) => d.deviceId === id && d.allow);
    assert.equal(issued?.route, "est:devices/enroll");
    assert.ok(
      (metricValue(metrics, "portcullis_certificates_issued_total", { profile: "strict" }) ?? 0) >= 1,
      "issued certificates are counted per profile",
    );
    assert.ok(
      (metricValue(metrics, "portcullis_enrollments_total", {
        profile: "devices",
        operation: "enroll",
        outcome: "issued",
      }) ?? 0) >= 1,
    );
  });

  test("portcullis tokens create → portcullis enroll → tokens list shows it used", async () => {
    const id = "cli-001";
    const conn = ["--url", admin.base, "--token-file", join(dir, "admin.token")];
    const created = await portcullis(["tokens", "create", "--device", id, ...conn]);
    assert.equal(created.code, 0, created.stderr);
    const token = /^token\s+(tok_\S+)/m.exec(created.stdout)?.[1];
    assert.ok(token, created.stdout);
    const out = join(dir, "cli-out");
    const enrolled = await portcullis([
      "enroll",
      "--server",
      serverUrl(port),
      "--ca",
      join(dir, "ca.crt"),
      "--token",
      token,
      "--id",
      id,
      "--out",
      out,
    ]);
    assert.equal(enrolled.code, 0, `${enrolled.stdout}${enrolled.stderr}`);
    const ok = await echo(port, dir, `cli-out/${id}`);
    assert.equal(ok.status, 200, ok.body);

    const listed = await portcullis(["tokens", "list", "--device", id, ...conn]);
    assert.equal(listed.code, 0, listed.stderr);
    const row = listed.stdout.split("\n").find((line) => line.includes(id));
    assert.match(row ?? "", /\bused\b/, listed.stdout);

    // The spent token is refused to the CLI as well: exit 1, the directory left as it was.
    const again = await portcullis([
      "enroll",
      "--server",
      serverUrl(port),
      "--ca",
      join(dir, "ca.crt"),
      "--token",
      token,
      "--id",
      id,
      "--out",
      join(dir, "cli-out-2"),
    ]);
    assert.equal(again.code, 1, `${again.stdout}${again.stderr}`);
    assert.match(again.stderr, /token_spent/);
  });

  test("portcullis certificates revoke: refused on /echo at once, listed on the profile's CRL", async () => {
    const id = "rev-001";
    const { name, leaf } = await tokenEnroll(admin, port, dir, id);
    assert.equal((await echo(port, dir, name)).status, 200);
    const serial = await serialOf(leaf);

    // The gateway wrote the profile's CRL at start; it does not list the certificate yet.
    const crlFile = join(dir, "enrolled-crl.pem");
    const crlText = async () => (await openssl(["crl", "-in", crlFile, "-noout", "-text"])).stdout;
    const serialPattern = new RegExp(`Serial Number: 0*${serial}\\b`, "i");
    assert.ok(existsSync(crlFile), `${crlFile} written at start`);
    assert.doesNotMatch(await crlText(), serialPattern);

    const conn = ["--url", admin.base, "--token-file", join(dir, "admin.token")];
    const [listed] = await certificatesOf(id);
    assert.equal(listed?.serial, serial);
    assert.equal(listed?.state, "valid");

    const revoked = await portcullis([
      "certificates",
      "revoke",
      serial,
      "--reason",
      "keyCompromise",
      ...conn,
    ]);
    assert.equal(revoked.code, 0, cliOutput(revoked));
    assert.match(revoked.stdout, /revoked \(keyCompromise\)/);

    const refused = await echo(port, dir, name);
    assert.equal(refused.status, 401, refused.body);
    assert.equal(refused.json<{ reason: string }>().reason, "unknown_device");
    // A revoked certificate cannot renew itself either.
    const csr = await makeCsr(dir, "rev-001-renew", id);
    assertRefused(
      await est({ port, dir, op: "simplereenroll", body: csr.base64, device: name }),
      401,
      "unknown_device",
    );
    const [cert] = await certificatesOf(id);
    assert.equal(cert?.state, "revoked");
    assert.equal(cert?.revocationReason, "keyCompromise");

    // The CRL is rewritten (debounced): it lists the serial, is signed by the enrollment CA, and openssl
    // refuses the certificate with it.
    await waitFor(async () => serialPattern.test(await crlText()), 10_000, `${crlFile} lists ${serial}`);
    const text = await crlText();
    assert.match(text, /Issuer: CN ?= ?Portcullis Demo Enrollment CA/);
    assert.match(text, /Key Compromise/);
    const signed = await openssl(["crl", "-in", crlFile, "-noout", "-CAfile", join(dir, "enroll-ca.crt")]);
    assert.match(`${signed.stdout}${signed.stderr}`, /verify OK/);
    const verify = [
      "verify",
      "-crl_check",
      "-CAfile",
      join(dir, "ca.crt"),
      "-untrusted",
      join(dir, "enroll-ca.crt"),
    ];
    const check = await run("openssl", [...verify, "-CRLfile", crlFile, join(dir, `${name}.crt`)], {
      allowFail: true,
    });
    assert.notEqual(check.code, 0);
    assert.match(`${check.stdout}${check.stderr}`, /certificate revoked/);
  });

  test("the CRL covers every certificate of its CA: one revoked under another profile of that CA is listed", async () => {
    // "strict" issues from the same CA as "devices", whose crlFile is that CA's CRL.
    const other = await tokenEnroll(admin, port, dir, "crl-strict", "crl-strict", "strict");
    const own = await tokenEnroll(admin, port, dir, "crl-devices");
    const otherSerial = await serialOf(other.leaf);
    const ownSerial = await serialOf(own.leaf);
    for (const serial of [otherSerial, ownSerial]) {
      const r = await admin.call("POST", `/certificates/${serial}/revoke`, { reason: "keyCompromise" });
      assert.equal(r.status, 200, r.text);
    }
    assert.equal((await echo(port, dir, other.name)).status, 401, "refused on /echo at once");
    const crlFile = join(dir, "enrolled-crl.pem");
    const crlText = async () => (await openssl(["crl", "-in", crlFile, "-noout", "-text"])).stdout;
    const listed = (serial: string, text: string) =>
      new RegExp(`Serial Number: 0*${serial}\\b`, "i").test(text);
    await waitFor(async () => listed(ownSerial, await crlText()), 10_000, `${crlFile} lists ${ownSerial}`);
    // The CRL is signed by the CA that issued both: a verifier trusting it accepts what it does not list.
    assert.ok(
      listed(otherSerial, await crlText()),
      `the CA's CRL omits ${otherSerial}, revoked, issued by that CA`,
    );
    const verify = [
      "verify",
      "-crl_check",
      "-CAfile",
      join(dir, "ca.crt"),
      "-untrusted",
      join(dir, "enroll-ca.crt"),
    ];
    const check = await run("openssl", [...verify, "-CRLfile", crlFile, join(dir, `${other.name}.crt`)], {
      allowFail: true,
    });
    assert.match(`${check.stdout}${check.stderr}`, /certificate revoked/);
  });
});
