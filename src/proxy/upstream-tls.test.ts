// Upstream over TLS: the tls.ca / rejectUnauthorized options, and connect timeouts (a handshake that never completes).
import assert from "node:assert/strict";
import { createServer as createHttpsServer } from "node:https";
import { createServer as createNetServer } from "node:net";
import { after, test } from "node:test";
import { request } from "undici";
import { UPSTREAM_MESSAGES } from "../gateway/respond.ts";
import { x509 } from "../identity/x509.ts";
import { type EchoBody, echo, ProxyHarness } from "./testing/harness.ts";

const h = new ProxyHarness();
after(() => h.close());

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** A self-signed server certificate for 127.0.0.1, as PEM cert and PKCS#8 key. */
async function serverCredentials(): Promise<{ cert: string; key: string }> {
  const keys = await globalThis.crypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "0a",
    name: "CN=upstream.test",
    keys,
    signingAlgorithm: ALG,
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 86_400_000),
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "ip", value: "127.0.0.1" }])],
  });
  const pkcs8 = Buffer.from(await globalThis.crypto.subtle.exportKey("pkcs8", keys.privateKey));
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString("base64").replace(/.{1,64}/g, "$&\n")}-----END PRIVATE KEY-----\n`;
  return { cert: cert.toString("pem"), key };
}

const credentials = await serverCredentials();
const tlsTarget = await h.listen(createHttpsServer(credentials, echo), "https");

/** Accepts TCP and never speaks: a TLS handshake against it can only time out. */
const silentTlsTarget = () => h.listen(createNetServer(), "https");

test("an https target is verified against tls.ca", async () => {
  const gateway = await h.startGateway(h.upstream([tlsTarget], { tls: { ca: credentials.cert } }));
  const res = await request(new URL("/tls", gateway), { dispatcher: h.client });
  assert.equal(res.statusCode, 200);
  const seen = (await res.body.json()) as EchoBody;
  assert.equal(seen.url, "/tls");
  assert.equal(seen.headers["x-device-id"], "device-001");
});

test("an https target with an unknown CA is a 502, unless verification is switched off", async () => {
  const strict = await h.startGateway(h.upstream([tlsTarget]));
  const refused = await request(strict, { dispatcher: h.client });
  assert.equal(refused.statusCode, 502);
  assert.deepEqual(await refused.body.json(), { message: UPSTREAM_MESSAGES.badGateway });

  const lax = await h.startGateway(h.upstream([tlsTarget], { tls: { rejectUnauthorized: false } }));
  const accepted = await request(lax, { dispatcher: h.client });
  assert.equal(accepted.statusCode, 200);
  await accepted.body.dump();
});

test("a connect timeout is a 504, and is retried on the next target", async () => {
  const silent = await silentTlsTarget();
  const alone = await h.startGateway(h.upstream([silent], { connectTimeoutMs: 200 }));
  const started = performance.now();
  const res = await request(alone, { dispatcher: h.client });
  assert.equal(res.statusCode, 504);
  assert.deepEqual(await res.body.json(), { message: UPSTREAM_MESSAGES.timeout });
  // undici runs its connect timer on a ~0.5 s clock: late by up to about a second, never unbounded.
  assert.ok(performance.now() - started < 2000);

  const live = await h.startUpstream(echo);
  const withFallback = await h.startGateway(
    h.upstream([silent, live], { connectTimeoutMs: 200, retries: 1 }),
  );
  for (let i = 0; i < 2; i++) {
    const ok = await request(withFallback, { dispatcher: h.client });
    assert.equal(ok.statusCode, 200);
    await ok.body.dump();
  }
});
