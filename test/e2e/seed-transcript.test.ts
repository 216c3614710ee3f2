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

  test("wrong certificate fails the TLS handshake: no HTTP response at all", async () => {
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "wrong-device" });
    assert.notEqual(r.exitCode, 0);
    assert.equal(r.status, 0);
  });

  test("no certificate fails the TLS handshake", async () => {
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir });
    assert.notEqual(r.exitCode, 0);
    assert.equal(r.status, 0);
  });

  test("registered device gets 200", async () => {
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "device" });
    assert.equal(r.status, 200, r.body);
  });
});
