// What the log says about requests: refusal lines carry the client's address and port, the method, the path,
// the reason and a request id; a certificate that did not verify is logged as `claimedSubject`, never as a
// verified subject or device; the access log (log.access, on in the demo) writes one line per request and is
// switched by a reload.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { stringify } from "yaml";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startDemo, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { lines, waitForLine } from "../helpers/log-lines.ts";

describe("request logs in the demo", () => {
  const tmp = tempDir();
  let gw: GatewayProcess;
  before(async () => {
    gw = await startDemo(tmp.dir);
  });
  after(async () => {
    await gw.stop();
    tmp.cleanup();
  });

  test("a denial's line: client address and port, method, path, reason, request id; an unverified subject is only claimed", async () => {
    const r = await curl({
      port: gw.ports.demo ?? 0,
      dir: tmp.dir,
      device: "wrong-device",
      path: "/echo?x=1",
    });
    assert.equal(r.status, 401, r.body);
    const denied = await waitForLine(gw, (l) => l.msg === "request denied", '"request denied"');
    assert.equal(denied.peer, "127.0.0.1");
    assert.equal(typeof denied.peerPort, "number");
    assert.equal(denied.method, "GET");
    assert.equal(denied.path, "/echo");
    assert.equal(denied.reason, "untrusted_issuer");
    assert.match(String(denied.requestId), /^[0-9a-f]{8}-[0-9a-z]+$/);
    assert.match(String(denied.claimedSubject), /device-001/, "the certificate claims to be device-001");
    assert.equal(denied.subject, undefined, "an unverified subject is not logged as a subject");
    assert.equal(denied.deviceId, undefined);

    const access = await waitForLine(
      gw,
      (l) => l.msg === "request" && l.requestId === denied.requestId,
      "of the access log for the denied request",
    );
    assert.equal(access.status, 401);
    assert.equal(access.reason, "untrusted_issuer");
    assert.equal(access.route, "echo");
    assert.equal(access.peer, "127.0.0.1");
    assert.equal(access.peerPort, denied.peerPort);
    assert.equal(access.deviceId, undefined);
    assert.equal(access.bytes, Buffer.byteLength(r.body));
  });

  test("an allowed request's access line names the device, route, status, bytes and latency", async () => {
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "device" });
    assert.equal(r.status, 200, r.body);
    const access = await waitForLine(
      gw,
      (l) => l.msg === "request" && l.status === 200 && l.route === "echo",
      "of the access log for an allowed request",
    );
    assert.equal(access.deviceId, "device-001");
    assert.equal(access.method, "GET");
    assert.equal(access.path, "/echo");
    assert.equal(access.sni, "mtls.auth.local.com");
    assert.equal(access.host, "mtls.auth.local.com");
    assert.equal(access.listener, "demo");
    assert.match(String(access.fingerprint), /^[0-9a-f]{64}$/);
    assert.equal(access.bytes, Buffer.byteLength(r.body));
    assert.equal(typeof access.latencyMs, "number");
    assert.ok(typeof access.time === "string" && !Number.isNaN(Date.parse(access.time)));
  });
});

describe("log.access: off by default, switched on by a reload", () => {
  const tmp = tempDir();
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  const config = (access?: boolean): ConfigInput => ({
    listeners: [
      {
        name: "main",
        port: 0,
        clientAuth: "application",
        certificates: [{ cert: "server.crt", key: "server.key" }],
        trustStores: ["devices"],
      },
    ],
    trustStores: [{ name: "devices", ca: ["ca-chain.crt"] }],
    services: [{ name: "echo", targets: [echo.url] }],
    routes: [
      { name: "echo", hosts: ["mtls.auth.local.com"], paths: ["/echo"], service: "echo", public: true },
    ],
    ...(access === undefined ? {} : { log: { access } }),
  });
  before(async () => {
    await ensureDemoPki(tmp.dir);
    echo = await startEchoUpstream();
    gw = await startGateway(tmp.dir, config());
  });
  after(async () => {
    await gw.stop();
    await echo.close();
    tmp.cleanup();
  });

  test("no access line by default; one per request after a reload turns it on", async () => {
    const request = () => curl({ port: gw.ports.main ?? 0, dir: tmp.dir });
    assert.equal((await request()).status, 200);
    writeFileSync(join(tmp.dir, "portcullis.yaml"), stringify(config(true)));
    gw.child.kill("SIGHUP");
    await waitForLine(gw, (l) => l.msg === "config reloaded", '"config reloaded"');
    assert.equal(lines(gw).filter((l) => l.msg === "request").length, 0, "none before the reload");
    assert.equal((await request()).status, 200);
    const access = await waitForLine(gw, (l) => l.msg === "request", "of the access log");
    assert.equal(access.route, "echo");
    assert.equal(access.status, 200);
  });
});
