// The seed proof of concept, replayed against the real demo in both modes: the wrong certificate gets
// HTTP/2 401 JSON in application mode and a failed handshake in handshake mode; the device gets 200 with
// the XFCC header the gateway injected.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startDemo, tempDir } from "../helpers/gateway-process.ts";

describe("seed transcript, application mode", () => {
  const tmp = tempDir();
  let gw: GatewayProcess;
  before(async () => {
    gw = await startDemo(tmp.dir, ["--mode", "application"]);
  });
  after(async () => {
    assert.equal(await gw.stop(), 0, "graceful stop exits 0");
    tmp.cleanup();
  });

  test("wrong certificate completes the handshake and gets HTTP/2 401 JSON", async () => {
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "wrong-device" });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.httpVersion, "2");
    assert.equal(r.status, 401);
    assert.deepEqual(r.json(), {
      message: "TLS certificate failed verification",
      reason: "untrusted_issuer",
    });
    assert.match(r.headers["x-portcullis-latency"] ?? "", /^\d+$/);
  });

  test("registered device gets 200 and the echoed request with the injected XFCC", async () => {
    for (const http of ["2", "1.1"] as const) {
      const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "device", http });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.httpVersion, http);
      const echoed = r.json<{ path: string; headers: Record<string, string> }>();
      assert.equal(echoed.path, "/echo");
      assert.match(
        echoed.headers["x-forwarded-client-cert"] ?? "",
        /^Hash=[0-9a-f]{64};Subject="CN=device-001";URI=urn:device:device-001$/,
      );
      assert.equal(echoed.headers["x-device-id"], "device-001");
    }
  });

  test("no certificate gets 401 no_certificate", async () => {
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json(), { message: "No required TLS certificate was sent", reason: "no_certificate" });
  });

  test("public route without a certificate gets 200", async () => {
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, path: "/public/echo" });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json<{ headers: Record<string, string> }>().headers["x-forwarded-client-cert"], undefined);
  });
});

describe("seed transcript, handshake mode", () => {
  const tmp = tempDir();
  let gw: GatewayProcess;
  before(async () => {
    gw = await startDemo(tmp.dir, ["--mode", "handshake"]);
  });
  after(async () => {
    assert.equal(await gw.stop(), 0);
    tmp.cleanup();
  });

  /** curl's exit codes for a handshake the server failed (docs/mtls-modes.md): never 0, nor "curl is missing". */
  const HANDSHAKE_FAILED = [18, 35, 52, 55, 56];

  /** The gateway's refusal lines with this reason, once there are more than `before` of them. */
  async function refusals(
    reason: string,
    before: number,
    msg = /"msg":"(handshake failed|connection refused)"/,
  ): Promise<number> {
    const count = () =>
      gw
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{") && msg.test(l) && l.includes(`"reason":"${reason}"`)).length;
    if (count() > before) return count();
    await new Promise<void>((resolve) => {
      const onData = () => {
        if (count() <= before) return;
        gw.child.stdout?.off("data", onData);
        gw.child.stderr?.off("data", onData);
        resolve();
      };
      gw.child.stdout?.on("data", onData);
      gw.child.stderr?.on("data", onData);
    });
    return count();
  }

  test("wrong certificate fails the TLS handshake: no HTTP response at all", {
    timeout: 30_000,
  }, async () => {
    const before = await refusals("untrusted_issuer", -1);
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "wrong-device" });
    assert.ok(HANDSHAKE_FAILED.includes(r.exitCode), `curl exit ${r.exitCode}: ${r.stderr}`);
    assert.match(r.stderr, /^curl: \(\d+\) /, "curl ran and reported a transport error");
    assert.equal(r.status, 0);
    assert.equal(r.body, "", "not one HTTP byte");
    // The gateway refused it for the certificate, not for anything else.
    assert.ok((await refusals("untrusted_issuer", before)) > before);
  });

  test("no certificate fails the TLS handshake", { timeout: 30_000 }, async () => {
    const before = await refusals("no_certificate", -1);
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir });
    assert.ok(HANDSHAKE_FAILED.includes(r.exitCode), `curl exit ${r.exitCode}: ${r.stderr}`);
    // Usually the "certificate required" alert; curl may also see the close first (timing).
    assert.match(r.stderr, /^curl: \(\d+\) /, "curl ran and reported a transport error");
    assert.equal(r.status, 0);
    assert.ok((await refusals("no_certificate", before)) > before);
  });

  test("registered device gets 200", async () => {
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "device" });
    assert.equal(r.status, 200, r.body);
  });

  test("a certificate on the loaded CRL fails at admission: closed before any HTTP byte (certificate_revoked)", {
    timeout: 30_000,
  }, async () => {
    // The identity engine refuses it right after the handshake (OpenSSL is given no CRL).
    const refused = /"msg":"connection refused"/;
    const before = await refusals("certificate_revoked", -1, refused);
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "revoked-device" });
    assert.ok(HANDSHAKE_FAILED.includes(r.exitCode), `curl exit ${r.exitCode}: ${r.stderr}`);
    assert.equal(r.status, 0);
    assert.equal(r.body, "", "not one HTTP byte");
    assert.ok(
      (await refusals("certificate_revoked", before, refused)) > before,
      "refused for the revocation",
    );
  });

  test("a trusted but unregistered device completes the handshake and gets HTTP 401 unknown_device (route policy)", async () => {
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "unregistered-device" });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.status, 401, r.body);
    assert.equal(r.json<{ reason: string }>().reason, "unknown_device");
  });
});
