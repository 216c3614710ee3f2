// The listener's TLS surface, seen by real clients (openssl s_client and Node's tls): protocol versions
// and AEAD-only ciphers, ALPN, refused client renegotiation, CA names in the CertificateRequest, the
// handshake-mode contract (a denied connection never gets an HTTP byte), the limits on connections
// without a valid certificate, and the choice of server certificate by SNI.
// One gateway process serves every case, with one listener per configuration.
import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";
import { after, before, describe, test } from "node:test";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { sClient } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  createTlsFixtures,
  FALLBACK_HOST,
  HOST_A,
  HOST_B,
  pem,
  type TlsFixtures,
} from "../helpers/tls-fixtures.ts";
import { openTls, requestOn, type TlsHttpResult, tlsHttp, within } from "../helpers/tls-http.ts";

const HOSTS = [HOST_A, HOST_B, "127.0.0.1"];

function show(r: TlsHttpResult): string {
  return `secureConnected=${r.secureConnected} protocol=${r.protocol} raw=${JSON.stringify(r.raw.toString("latin1").slice(0, 200))} error=${r.error?.message} timedOut=${r.timedOut}`;
}

describe("TLS listener", () => {
  const tmp = tempDir();
  let fx: TlsFixtures;
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  const port = (listener: string): number => {
    const p = gw.ports[listener];
    assert.ok(p, `listener ${listener} is bound`);
    return p;
  };
  const file = (name: string) => `${tmp.dir}/${name}`;
  const creds = (prefix: string) => ({
    cert: pem(tmp.dir, `${prefix}.crt`),
    key: pem(tmp.dir, `${prefix}.key`),
  });
  /** s_client arguments to reach a listener with HOST_A as SNI, verifying the gateway's certificate. */
  const connectArgs = (listener: string, servername = HOST_A) => [
    "-connect",
    `127.0.0.1:${port(listener)}`,
    "-servername",
    servername,
    "-CAfile",
    file("ca-chain.crt"),
  ];

  before(async () => {
    fx = await createTlsFixtures(tmp.dir);
    echo = await startEchoUpstream();
    const serverCert = { cert: "server.crt", key: "server.key" };
    const base = { port: 0, certificates: [serverCert], trustStores: ["devices"] };
    const config: ConfigInput = {
      listeners: [
        { ...base, name: "app", clientAuth: "application" },
        { ...base, name: "app-nonames", clientAuth: "application", sendCaNames: false },
        { ...base, name: "hs", clientAuth: "handshake" },
        { ...base, name: "hs-nonames", clientAuth: "handshake", sendCaNames: false },
        {
          ...base,
          name: "limits",
          clientAuth: "application",
          limits: { maxUnauthenticatedConnections: 2, unauthenticatedIdleTimeout: "10s" },
        },
        { ...base, name: "idle", clientAuth: "application", limits: { unauthenticatedIdleTimeout: "500ms" } },
        {
          ...base,
          name: "slow",
          clientAuth: "application",
          limits: { handshakeTimeout: "1s", headersTimeout: "1s", unauthenticatedIdleTimeout: "60s" },
        },
        {
          ...base,
          name: "sni",
          clientAuth: "application",
          certificates: [
            { cert: fx.fallbackServer.cert, key: fx.fallbackServer.key },
            serverCert,
            { cert: fx.otherServer.cert, key: fx.otherServer.key },
          ],
        },
      ],
      trustStores: [{ name: "devices", ca: ["ca-chain.crt"] }],
      services: [{ name: "echo", targets: [echo.url] }],
      routes: [
        { name: "echo", hosts: HOSTS, paths: ["/echo"], service: "echo", auth: { trustStores: ["devices"] } },
        { name: "public", hosts: HOSTS, paths: ["/public/echo"], service: "echo", public: true },
      ],
      // Every refusal here comes from 127.0.0.1, and the tests read their log lines: none is sampled away.
      log: { level: "info", denials: { perInterval: 100_000 } },
    };
    gw = await startGateway(tmp.dir, config);
  });

  after(async () => {
    const code = await gw?.stop();
    await echo?.close();
    tmp.cleanup();
    assert.equal(code, 0, "the gateway stops gracefully");
  });

  describe("protocol versions and ciphers", () => {
    test("TLS 1.1 is refused by the server with a protocol_version alert", async () => {
      // SECLEVEL=0 so that the client really offers TLS 1.1: the refusal must come from the gateway.
      const r = await sClient([...connectArgs("app"), "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]);
      assert.notEqual(r.code, 0, r.output);
      assert.match(r.output, /alert protocol version|SSL alert number 70/, r.output);
      assert.match(r.output, /Cipher is \(NONE\)/);
    });

    test("a non-AEAD TLS 1.2 cipher is refused, its AEAD sibling is accepted", async () => {
      const cbc = await sClient([...connectArgs("app"), "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"]);
      assert.notEqual(cbc.code, 0, cbc.output);
      assert.match(cbc.output, /handshake failure|SSL alert number 40/, cbc.output);
      assert.match(cbc.output, /Cipher is \(NONE\)/);
      const gcm = await sClient([
        ...connectArgs("app"),
        "-tls1_2",
        "-cipher",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
      ]);
      assert.match(gcm.output, /New, TLSv1\.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256/, gcm.output);
      assert.match(gcm.output, /Verify return code: 0 \(ok\)/);
    });

    test("TLS 1.3 works", async () => {
      const r = await sClient([...connectArgs("app"), "-tls1_3"]);
      assert.match(
        r.output,
        /New, TLSv1\.3, Cipher is TLS_AES_\d+_GCM_SHA\d+|New, TLSv1\.3, Cipher is TLS_CHACHA20/,
        r.output,
      );
      assert.match(r.output, /Verify return code: 0 \(ok\)/);
    });
  });

  describe("ALPN", () => {
    for (const protocol of ["h2", "http/1.1"]) {
      test(`-alpn ${protocol} negotiates ${protocol}`, async () => {
        const r = await sClient([...connectArgs("app"), "-alpn", protocol]);
        assert.match(r.output, new RegExp(`ALPN protocol: ${protocol.replace(".", "\\.")}\\n`), r.output);
      });
    }
  });

  describe("renegotiation", () => {
    test("client-initiated renegotiation (s_client 'R') is refused and the gateway keeps serving", async () => {
      const r = await sClient([...connectArgs("app"), "-tls1_2"], "R\n");
      assert.match(r.output, /RENEGOTIATING/, `s_client must really try to renegotiate:\n${r.output}`);
      assert.match(r.output, /no renegotiation/, r.output);
      assert.equal(gw.child.exitCode, null, "the gateway is still running");
      const later = await tlsHttp({
        port: port("app"),
        servername: HOST_A,
        maxVersion: "TLSv1.2",
        ...creds("device"),
      });
      assert.equal(later.http?.status, 200, show(later));
    });
  });

  describe("CA names in the CertificateRequest", () => {
    test("sent by default: the demo CAs are listed", async () => {
      const r = await sClient(connectArgs("app"));
      assert.match(
        r.output,
        /Acceptable client certificate CA names\nCN = Portcullis Demo Intermediate CA\nCN = Portcullis Demo Root CA\n/,
        r.output,
      );
      assert.doesNotMatch(r.output, /No client certificate CA names sent/);
    });

    for (const listener of ["app-nonames", "hs-nonames"]) {
      test(`${listener}: sendCaNames false lists none`, async () => {
        const r = await sClient(connectArgs(listener));
        assert.match(r.output, /No client certificate CA names sent/, r.output);
        assert.doesNotMatch(r.output, /Acceptable client certificate CA names/);
      });
    }

    test("application mode with sendCaNames false: device 200, wrong device 401, no certificate 401", async () => {
      const ok = await tlsHttp({ port: port("app-nonames"), servername: HOST_A, ...creds("device") });
      assert.equal(ok.http?.status, 200, show(ok));
      assert.equal(
        (JSON.parse(ok.http?.body ?? "{}") as { headers: Record<string, string> }).headers["x-device-id"],
        "device-001",
      );
      const wrong = await tlsHttp({
        port: port("app-nonames"),
        servername: HOST_A,
        ...creds("wrong-device"),
      });
      assert.equal(wrong.http?.status, 401, show(wrong));
      assert.equal((JSON.parse(wrong.http?.body ?? "{}") as { reason?: string }).reason, "untrusted_issuer");
      const none = await tlsHttp({ port: port("app-nonames"), servername: HOST_A });
      assert.equal(none.http?.status, 401, show(none));
      assert.equal((JSON.parse(none.http?.body ?? "{}") as { reason?: string }).reason, "no_certificate");
    });

    test("handshake mode with sendCaNames false: wrong device closed without any HTTP byte, device admitted", async () => {
      for (const maxVersion of ["TLSv1.3", "TLSv1.2"] as const) {
        for (const bad of ["wrong-device", "expired-device"]) {
          const r = await tlsHttp({
            port: port("hs-nonames"),
            servername: HOST_A,
            maxVersion,
            ...creds(bad),
          });
          assert.equal(r.timedOut, false, show(r));
          assert.equal(r.raw.length, 0, `${bad} ${maxVersion}: ${show(r)}`);
        }
        const none = await tlsHttp({ port: port("hs-nonames"), servername: HOST_A, maxVersion });
        assert.equal(none.raw.length, 0, `no certificate ${maxVersion}: ${show(none)}`);
        const ok = await tlsHttp({
          port: port("hs-nonames"),
          servername: HOST_A,
          maxVersion,
          ...creds("device"),
        });
        assert.equal(ok.http?.status, 200, show(ok));
      }
    });
  });

  describe("handshake mode: a denied connection never gets an HTTP byte", () => {
    // On TLS 1.3 the client's handshake completes before the server has judged its certificate, so the
    // request really is written; on TLS 1.2 the server closes before its Finished.
    const cases = [
      { device: "expired-device", judge: "OpenSSL", listener: "hs" },
      { device: "serverauth-device", judge: "OpenSSL", listener: "hs" },
      { device: "anyeku-device", judge: "OpenSSL", listener: "hs" },
      // anyExtendedKeyUsage without clientAuth: the engine refuses it as OpenSSL does.
      { device: "anyeku-device", judge: "engine", listener: "hs-nonames" },
      // OpenSSL accepts a CA:TRUE leaf with EKU clientAuth; only the identity engine refuses it.
      { device: "ca-leaf-device", judge: "engine", listener: "hs" },
      // Without CA names OpenSSL verifies nothing: the engine alone refuses.
      { device: "serverauth-device", judge: "engine", listener: "hs-nonames" },
    ];
    for (const c of cases) {
      for (const maxVersion of ["TLSv1.3", "TLSv1.2"] as const) {
        test(`${c.listener}, ${maxVersion}: ${c.device} (refused by ${c.judge})`, async () => {
          const before = gw.output().length;
          const r = await tlsHttp({
            port: port(c.listener),
            servername: HOST_A,
            maxVersion,
            ...creds(c.device),
          });
          assert.equal(r.timedOut, false, `the gateway closes the connection: ${show(r)}`);
          if (maxVersion === "TLSv1.3") assert.ok(r.secureConnected, `the request was written: ${show(r)}`);
          assert.equal(r.raw.length, 0, show(r));
          assert.equal(r.http, undefined);
          if (c.judge === "engine") {
            // The engine's refusal is logged once the handshake completed: OpenSSL did accept it.
            const logged = await waitFor(() =>
              gw
                .output()
                .slice(before)
                .split("\n")
                .some(
                  (l) =>
                    l.includes('"msg":"connection refused"') &&
                    l.includes(`"listener":"${c.listener}"`) &&
                    l.includes('"reason":"wrong_purpose"'),
                ),
            );
            assert.ok(logged, `the engine refused it with wrong_purpose:\n${gw.output().slice(before)}`);
          }
        });
      }
    }

    test("the same certificates in application mode get 401 with the engine's reason", async () => {
      for (const [device, reason] of [
        ["expired-device", "certificate_expired"],
        ["serverauth-device", "wrong_purpose"],
        ["ca-leaf-device", "wrong_purpose"],
        ["anyeku-device", "wrong_purpose"],
      ] as const) {
        const r = await tlsHttp({ port: port("app"), servername: HOST_A, ...creds(device) });
        assert.equal(r.http?.status, 401, show(r));
        assert.equal((JSON.parse(r.http?.body ?? "{}") as { reason?: string }).reason, reason);
      }
    });

    test("the device is admitted in handshake mode", async () => {
      const r = await tlsHttp({ port: port("hs"), servername: HOST_A, ...creds("device") });
      assert.equal(r.http?.status, 200, show(r));
    });
  });

  describe("limits for connections without a valid certificate", () => {
    test("beyond maxUnauthenticatedConnections the connection idle the longest makes room; devices are not counted", async () => {
      const p = port("limits");
      const [oldest, older] = [
        openTls({ port: p, servername: HOST_A }),
        openTls({ port: p, servername: HOST_A }),
      ];
      const held = [oldest, older];
      try {
        for (const h of held) assert.equal(await h.ready, true, "the first two are admitted");
        // The third is admitted and answered: the oldest idle one is closed to make room for it.
        const third = await tlsHttp({ port: p, servername: HOST_A, path: "/public/echo" });
        assert.equal(third.http?.status, 200, show(third));
        assert.notEqual(await within(oldest.closed, 5_000), "timeout", "the oldest is evicted");
        assert.equal(older.socket.destroyed, false, "the other one is kept");
        // A device is not counted against the limit.
        const device = await tlsHttp({ port: p, servername: HOST_A, ...creds("device") });
        assert.equal(device.http?.status, 200, show(device));
        // Expired is not a valid certificate: it is limited too, and evicts the one idle the longest.
        const refill = openTls({ port: p, servername: HOST_A });
        held.push(refill);
        assert.equal(await refill.ready, true);
        const expired = await tlsHttp({ port: p, servername: HOST_A, ...creds("expired-device") });
        assert.equal(expired.http?.status, 401, show(expired));
        assert.notEqual(await within(older.closed, 5_000), "timeout", "the older one is evicted now");
      } finally {
        for (const h of held) h.socket.destroy();
      }
    });

    for (const alpn of ["http/1.1", "h2"]) {
      test(`${alpn}: an idle unauthenticated connection is closed after ~500 ms, an authenticated one is not`, async () => {
        const p = port("idle");
        const started = performance.now();
        const anonymous = openTls({ port: p, servername: HOST_A, alpn: [alpn] });
        const device = openTls({ port: p, servername: HOST_A, alpn: [alpn], ...creds("device") });
        try {
          assert.equal(await anonymous.ready, true);
          assert.equal(await device.ready, true);
          const closed = await within(anonymous.closed, 5_000);
          const elapsed = performance.now() - started;
          assert.notEqual(closed, "timeout", "the idle unauthenticated connection is closed");
          assert.ok(elapsed >= 400, `closed after the idle timeout, not before (${Math.round(elapsed)} ms)`);
          // Twice the unauthenticated idle time in all: the device's connection is still open.
          const deviceClosed = await within(device.closed, Math.max(0, 1_000 - elapsed));
          assert.equal(deviceClosed, "timeout", "the authenticated connection stays open");
          assert.equal(device.socket.destroyed, false);
          if (alpn === "http/1.1") {
            const answer = await within(requestOn(device, HOST_A), 5_000);
            assert.equal(answer === "timeout" ? answer : answer?.status, 200);
          }
        } finally {
          anonymous.socket.destroy();
          device.socket.destroy();
        }
      });
    }
  });

  describe("handshakeTimeout and headersTimeout bound slow clients", () => {
    // Both set to 1 s on this listener (default 10 s): the timeouts are the feature, so the bounds are
    // on time, generous on the upper side.
    test("a TCP connection that never starts its TLS handshake is closed after handshakeTimeout", async () => {
      const started = performance.now();
      const socket = netConnect({ host: "127.0.0.1", port: port("slow") });
      socket.on("error", () => {});
      const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
      try {
        assert.notEqual(await within(closed, 8_000), "timeout", "closed by the gateway");
        const elapsed = performance.now() - started;
        assert.ok(elapsed >= 900, `not before the handshake timeout (${Math.round(elapsed)} ms)`);
      } finally {
        socket.destroy();
      }
    });

    test("a device whose request headers never end is closed after headersTimeout (HTTP/1.1)", async () => {
      const conn = openTls({ port: port("slow"), servername: HOST_A, ...creds("device") });
      try {
        assert.equal(await conn.ready, true);
        const started = performance.now();
        conn.socket.write(`GET /echo HTTP/1.1\r\nHost: ${HOST_A}\r\nX-Slow: 1\r\n`);
        const closed = await within(conn.closed, 8_000);
        const elapsed = performance.now() - started;
        assert.notEqual(closed, "timeout", "closed by the gateway");
        assert.ok(elapsed >= 900, `not before the headers timeout (${Math.round(elapsed)} ms)`);
        // Node answers 408 (or nothing) and closes; never a proxied answer.
        assert.doesNotMatch(String(closed), /HTTP\/1\.1 200/);
      } finally {
        conn.socket.destroy();
      }
    });
  });

  describe("SNI chooses the server certificate", () => {
    const cnOf = async (servername: string | undefined) => {
      const r = await tlsHttp({ port: port("sni"), servername, noRequest: true, timeoutMs: 2_000 });
      return r.serverCert?.subject?.CN;
    };

    test("each name gets its certificate; no or unknown SNI gets the first (default) one", async () => {
      assert.equal(await cnOf(HOST_A), "localhost");
      assert.equal(await cnOf(HOST_B), HOST_B);
      assert.equal(await cnOf("unknown.example"), FALLBACK_HOST);
      assert.equal(await cnOf(undefined), FALLBACK_HOST);
    });

    test("mixed-case SNI selects the same certificate as lower case", async () => {
      assert.equal(await cnOf("MTLS.AUTH.LOCAL.COM"), "localhost");
      assert.equal(await cnOf("Tenant-B.Local.Test"), HOST_B);
    });

    test("s_client: -servername picks the certificate, in any case", async () => {
      for (const [servername, cn] of [
        [HOST_B, HOST_B],
        ["TENANT-B.LOCAL.TEST", HOST_B],
        ["MTLS.AUTH.LOCAL.COM", "localhost"],
        ["unknown.example", FALLBACK_HOST],
      ] as const) {
        const r = await sClient(connectArgs("sni", servername));
        assert.match(
          r.output,
          new RegExp(`subject=CN ?= ?${cn.replaceAll(".", "\\.")}\\n`),
          `${servername}:\n${r.output}`,
        );
        assert.match(r.output, /Verify return code: 0 \(ok\)/);
      }
    });
  });
});

/** Polls `check` (every 50 ms, at most `attempts` times) until it is true. */
async function waitFor(check: () => boolean, attempts = 40): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return check();
}
