// Session resumption must never carry an old verdict (DESIGN.md pitfall table; node20-tls-findings §4).
// Each case captures a real session with Node's tls client, offers it again, and asserts that the
// second connection really resumed (`isSessionReused()`) before judging the answer, so that a test
// cannot pass merely because resumption silently stopped happening. The re-evaluation cases run without
// SNI (IP host) so that they judge the certificate alone; a separate case checks that a resumed session
// keeps its SNI binding. Cross-SNI: Node's client never offers a session under another SNI (which is why
// the hole "no longer reproduces" with a plain client), so the session is retargeted and a relay checks
// that the ClientHello really offered it; the gateway resumes it and then denies the request (TLS 1.3:
// 403 by host A's route policy; TLS 1.2: 421, the session keeps SNI B): B's identity never reaches A's route.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SecureVersion } from "node:tls";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { type HelloRelay, offersSession, retargetSession, startHelloRelay } from "../helpers/client-hello.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { createTlsFixtures, HOST_A, HOST_B, pem, type TlsFixtures } from "../helpers/tls-fixtures.ts";
import { lastSession, type TlsHttpOptions, type TlsHttpResult, tlsHttp } from "../helpers/tls-http.ts";

const VERSIONS: readonly SecureVersion[] = ["TLSv1.3", "TLSv1.2"];

interface Echoed {
  path: string;
  headers: Record<string, string>;
}

function describeResult(r: TlsHttpResult): string {
  return `reused=${r.reused} protocol=${r.protocol} status=${r.http?.status} body=${r.http?.body} error=${r.error?.message}`;
}

describe("TLS session resumption (application mode)", () => {
  const tmp = tempDir();
  let fx: TlsFixtures;
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let port = 0;
  let relay: HelloRelay;
  const device = () => ({ cert: pem(tmp.dir, "device.crt"), key: pem(tmp.dir, "device.key") });
  const expired = () => ({
    cert: pem(tmp.dir, "expired-device.crt"),
    key: pem(tmp.dir, "expired-device.key"),
  });
  const deviceB = () => ({ cert: pem(tmp.dir, fx.deviceB.cert), key: pem(tmp.dir, fx.deviceB.key) });

  before(async () => {
    fx = await createTlsFixtures(tmp.dir);
    echo = await startEchoUpstream();
    gw = await startGateway(tmp.dir, {
      listeners: [
        {
          name: "app",
          port: 0,
          clientAuth: "application",
          certificates: [
            { cert: "server.crt", key: "server.key" },
            { cert: fx.otherServer.cert, key: fx.otherServer.key },
          ],
        },
      ],
      trustStores: [
        { name: "devices", ca: ["ca-chain.crt"] },
        { name: "devices-b", ca: [fx.caB] },
        // The root alone: the device's intermediate is known only from what the device sends.
        { name: "root-only", ca: ["ca.crt"] },
      ],
      services: [{ name: "echo", targets: [echo.url] }],
      routes: [
        {
          name: "a",
          hosts: [HOST_A, "127.0.0.1"],
          paths: ["/echo"],
          service: "echo",
          auth: { trustStores: ["devices"] },
        },
        {
          name: "root-only",
          hosts: [HOST_A, "127.0.0.1"],
          paths: ["/root-only"],
          service: "echo",
          auth: { trustStores: ["root-only"] },
        },
        {
          name: "b",
          hosts: [HOST_B],
          paths: ["/echo"],
          service: "echo",
          auth: { trustStores: ["devices-b"] },
        },
      ],
    });
    port = gw.ports.app ?? 0;
    relay = await startHelloRelay(port);
  });

  after(async () => {
    await relay?.close();
    await gw?.stop();
    await echo?.close();
    tmp.cleanup();
  });

  /** A full handshake, then a second connection offering its session: both results. */
  async function twice(
    first: Omit<TlsHttpOptions, "port">,
    second: Omit<TlsHttpOptions, "port" | "session">,
  ) {
    const a = await tlsHttp({ port, ...first });
    assert.equal(a.reused, false, "the first connection is a full handshake");
    const b = await tlsHttp({ port, ...second, session: lastSession(a) });
    return { a, b };
  }

  for (const version of VERSIONS) {
    const pinned = { maxVersion: version, minVersion: version };
    // Without SNI (IP host): what is re-evaluated on resumption is the certificate alone.
    const noSni = { ...pinned, host: "127.0.0.1" };

    test(`${version}: a session made without a certificate, resumed without one, still gets 401 no_certificate`, async () => {
      const { a, b } = await twice(noSni, noSni);
      assert.equal(a.http?.status, 401, describeResult(a));
      assert.equal(b.reused, true, `the session must really be resumed: ${describeResult(b)}`);
      assert.equal(b.protocol, version);
      assert.equal(b.http?.status, 401, describeResult(b));
      assert.deepEqual(JSON.parse(b.http?.body ?? "{}"), {
        message: "No required TLS certificate was sent",
        reason: "no_certificate",
      });
    });

    test(`${version}: a session made with the device certificate resumes with its identity re-evaluated`, async () => {
      const opts = { ...noSni, ...device() };
      const { a, b } = await twice(opts, opts);
      assert.equal(a.http?.status, 200, describeResult(a));
      assert.equal(b.reused, true, `the session must really be resumed: ${describeResult(b)}`);
      assert.equal(b.http?.status, 200, describeResult(b));
      const echoed = JSON.parse(b.http?.body ?? "{}") as Echoed;
      assert.equal(echoed.path, "/echo");
      assert.equal(echoed.headers["x-device-id"], "device-001");
      assert.match(
        echoed.headers["x-forwarded-client-cert"] ?? "",
        /^Hash=[0-9a-f]{64};Subject="CN=device-001";URI=urn:device:device-001$/,
      );
    });

    test(`${version}: a resumed session (its leaf alone) is judged on the intermediates of the full handshake`, async () => {
      // The route's store holds only the root: without the remembered intermediate, the resumed leaf
      // would be untrusted_issuer.
      const opts = { ...noSni, ...device(), path: "/root-only" };
      const { a, b } = await twice(opts, opts);
      assert.equal(a.http?.status, 200, describeResult(a));
      assert.equal(b.reused, true, `the session must really be resumed: ${describeResult(b)}`);
      assert.equal(b.http?.status, 200, describeResult(b));
      assert.equal((JSON.parse(b.http?.body ?? "{}") as Echoed).headers["x-device-id"], "device-001");
    });

    test(`${version}: a device session resumed under the same SNI keeps its SNI binding and gets 200`, async () => {
      const opts = { ...pinned, servername: HOST_A, ...device() };
      const { a, b } = await twice(opts, opts);
      assert.equal(a.http?.status, 200, describeResult(a));
      assert.equal(b.reused, true, `the session must really be resumed: ${describeResult(b)}`);
      assert.equal(b.http?.status, 200, describeResult(b));
      assert.equal((JSON.parse(b.http?.body ?? "{}") as Echoed).headers["x-device-id"], "device-001");
    });

    test(`${version}: a session made with the expired device certificate resumed still gets 401 certificate_expired`, async () => {
      const opts = { ...noSni, ...expired() };
      const { a, b } = await twice(opts, opts);
      assert.equal(a.http?.status, 401, describeResult(a));
      assert.equal(b.reused, true, `the session must really be resumed: ${describeResult(b)}`);
      assert.equal(b.http?.status, 401, describeResult(b));
      assert.deepEqual(JSON.parse(b.http?.body ?? "{}"), {
        message: "TLS certificate failed verification",
        reason: "certificate_expired",
      });
    });

    test(`${version}: a session verified under SNI ${HOST_B} never reaches ${HOST_A}'s route with B's identity`, async (t) => {
      const a = await tlsHttp({ port, ...pinned, servername: HOST_B, ...deviceB() });
      assert.equal(a.http?.status, 200, `device B is admitted on host B: ${describeResult(a)}`);
      assert.equal((JSON.parse(a.http?.body ?? "{}") as Echoed).headers["x-device-id"], "device-b");
      // Node clients never offer a session under another SNI; retarget it so that this one does.
      const session = retargetSession(lastSession(a), HOST_B, HOST_A);
      for (const withCert of [false, true]) {
        const b = await tlsHttp({
          port: relay.port,
          ...pinned,
          servername: HOST_A,
          session,
          ...(withCert ? deviceB() : {}),
        });
        const label = `${withCert ? "with" : "without"} B's certificate: ${describeResult(b)}`;
        t.diagnostic(label);
        const hello = relay.hellos.at(-1);
        assert.ok(hello && offersSession(hello), `the client must offer B's session under SNI A (${label})`);
        assert.ok(b.secureConnected, label);
        // The gateway does resume B's session under SNI A (docs/mtls-modes.md) — and then denies it: TLS 1.3
        // judges B's identity by host A's route (403); TLS 1.2 keeps the session's SNI, B, which Host A
        // does not match (421).
        assert.equal(b.reused, true, `B's session is resumed under SNI A: ${label}`);
        const expected =
          version === "TLSv1.3"
            ? { status: 403, message: "You cannot consume this service", reason: "ca_not_allowed_for_route" }
            : { status: 421, message: "Misdirected Request", reason: "sni_host_mismatch" };
        assert.equal(b.http?.status, expected.status, label);
        assert.deepEqual(JSON.parse(b.http?.body ?? "{}"), {
          message: expected.message,
          reason: expected.reason,
        });
        assert.doesNotMatch(b.http?.body ?? "", /device-b/);
      }
    });

    test(`${version}: SNI ${HOST_A} with Host ${HOST_B} on one connection gets 421`, async () => {
      const r = await tlsHttp({ port, ...pinned, servername: HOST_A, host: HOST_B, ...deviceB() });
      assert.equal(r.http?.status, 421, describeResult(r));
      assert.deepEqual(JSON.parse(r.http?.body ?? "{}"), {
        message: "Misdirected Request",
        reason: "sni_host_mismatch",
      });
    });
  }
});
