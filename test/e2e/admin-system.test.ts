// The admin routes about the gateway itself: /status with the store's health, /metrics, /decisions; and the
// admin listener over TLS requiring a client certificate.
import assert from "node:assert/strict";
import { request } from "node:https";
import { after, before, describe, test } from "node:test";
import { type AdminHarness, startAdmin, TEST_TOKEN } from "../../src/admin/testing/harness.ts";
import type { DecisionRecord } from "../../src/gateway/decision-log.ts";
import { EKU } from "../../src/identity/certificate.ts";
import { mint } from "../../src/identity/testing/mint.ts";

describe("admin API: status, metrics, decisions", () => {
  let admin: AdminHarness;
  before(async () => {
    admin = await startAdmin();
  });
  after(() => admin.close());

  test("GET /status keeps the gateway's status and adds the store's health", async () => {
    const r = await admin.call<{ status: string; store: { kind: string; ok: boolean; since: string } }>(
      "GET",
      "/status",
    );
    assert.equal(r.status, 200);
    assert.equal(r.json.status, "ok");
    assert.equal(r.json.store.ok, true);
    assert.ok(!Number.isNaN(Date.parse(r.json.store.since)));
  });

  test("GET /metrics answers Prometheus text", async () => {
    admin.metrics.recordDecision({
      at: "",
      listener: "l",
      allow: false,
      enforced: true,
      reason: "unknown_device",
    });
    const r = await admin.call("GET", "/metrics");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    assert.match(r.text, /# TYPE portcullis_decisions_total counter/);
    assert.match(
      r.text,
      /portcullis_decisions_total\{result="deny",reason="unknown_device",route="\(none\)",enforced="true",protocol="http"\} 1/,
    );
  });

  test("GET /decisions returns the recorded decisions, newest first, at most limit", async () => {
    const records: DecisionRecord[] = Array.from({ length: 5 }, (_, i) => ({
      at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
      listener: "devices",
      route: "echo",
      allow: i % 2 === 0,
      enforced: true,
      ...(i % 2 === 0 ? { deviceId: `device-${i}` } : { reason: "device_suspended" as const }),
    }));
    for (const r of records) admin.decisions.record(r);
    const all = await admin.call<{ decisions: DecisionRecord[] }>("GET", "/decisions");
    assert.deepEqual(all.json.decisions, [...records].reverse());
    const two = await admin.call<{ decisions: DecisionRecord[] }>("GET", "/decisions?limit=2");
    assert.deepEqual(two.json.decisions, [records[4], records[3]]);
    assert.equal((await admin.call("GET", "/decisions?limit=0")).status, 400);
    assert.equal((await admin.call("GET", "/decisions?limit=ten")).status, 400);
  });
});

describe("admin API over TLS with a client certificate", () => {
  let admin: AdminHarness;
  let ca: Awaited<ReturnType<typeof mint>>;
  let server: Awaited<ReturnType<typeof mint>>;
  let client: Awaited<ReturnType<typeof mint>>;
  let stranger: Awaited<ReturnType<typeof mint>>;
  const keyPem = async (m: Awaited<ReturnType<typeof mint>>) => {
    const der = Buffer.from(await globalThis.crypto.subtle.exportKey("pkcs8", m.keys.privateKey));
    return `-----BEGIN PRIVATE KEY-----\n${der.toString("base64").replace(/.{1,64}/g, "$&\n")}-----END PRIVATE KEY-----\n`;
  };

  before(async () => {
    ca = await mint({ subject: "CN=Admin CA", ca: true, keyUsage: ["keyCertSign", "cRLSign"] });
    server = await mint({
      subject: "CN=localhost",
      issuer: ca,
      sanDns: ["localhost"],
      extKeyUsage: [EKU.serverAuth],
    });
    client = await mint({ subject: "CN=operator", issuer: ca, extKeyUsage: [EKU.clientAuth] });
    stranger = await mint({ subject: "CN=stranger", extKeyUsage: [EKU.clientAuth] });
    admin = await startAdmin({ tls: { cert: server.pem, key: await keyPem(server), ca: ca.pem } });
  });
  after(() => admin.close());

  const get = async (cert?: Awaited<ReturnType<typeof mint>>): Promise<number | string> => {
    const port = new URL(admin.url).port;
    const key = cert ? await keyPem(cert) : undefined;
    return new Promise((resolve) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          path: "/status",
          servername: "localhost",
          ca: ca.pem,
          cert: cert?.pem,
          key,
          headers: { authorization: `Bearer ${TEST_TOKEN}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", (err) => resolve((err as NodeJS.ErrnoException).code ?? err.message));
      req.end();
    });
  };

  test("a client certificate from the admin CA with the token gets in; none or a stranger's is refused", async () => {
    assert.equal(await get(client), 200);
    // Refused in the handshake: a TLS alert or a reset, never an HTTP answer.
    assert.match(String(await get()), /^(ERR_SSL_|ECONNRESET|EPIPE)/);
    assert.match(String(await get(stranger)), /^(ERR_SSL_|ECONNRESET|EPIPE)/);
  });
});
