// Revocation end to end, on the demo: the demo CRL refuses revoked-device; a revocation published with
// `portcullis pki revoke` while a device holds a keep-alive connection denies its very next request.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, runCli, startDemo, tempDir } from "../helpers/gateway-process.ts";
import { keepAliveClient } from "../helpers/keep-alive.ts";

const _HOST = "mtls.auth.local.com";

/** Resolves once the gateway has written more than `count` lines containing `text`; returns how many. */
async function linesWith(gw: GatewayProcess, text: string, count: number): Promise<number> {
  const n = () => gw.output().split(text).length - 1;
  while (n() <= count) {
    await new Promise<void>((resolve) => {
      const done = () => {
        gw.child.stdout?.off("data", done);
        gw.child.stderr?.off("data", done);
        resolve();
      };
      gw.child.stdout?.on("data", done);
      gw.child.stderr?.on("data", done);
    });
  }
  return n();
}

describe("revocation (demo, application mode)", () => {
  const tmp = tempDir();
  let gw: GatewayProcess;
  let port = 0;

  before(async () => {
    gw = await startDemo(tmp.dir);
    port = gw.ports.demo ?? 0;
  });
  after(async () => {
    await gw.stop();
    tmp.cleanup();
  });

  test("the device listed on the demo CRL gets 401 certificate_revoked", async () => {
    const r = await curl({ port, dir: tmp.dir, device: "revoked-device" });
    assert.equal(r.status, 401, r.body);
    assert.deepEqual(r.json(), {
      message: "TLS certificate failed verification",
      reason: "certificate_revoked",
    });
  });

  test("a broken new version of the CRL file is rejected; the CRLs last loaded from it stay in force", {
    timeout: 30_000,
  }, async (t) => {
    const crl = join(tmp.dir, "pki", "crl.pem");
    const good = readFileSync(crl);
    t.after(() => writeFileSync(crl, good));
    const REJECTED = '"msg":"CRL file rejected; keeping the CRLs last loaded from it"';
    const before = gw.output().split(REJECTED).length - 1;
    writeFileSync(crl, "-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n");
    await linesWith(gw, REJECTED, before);
    // Never "no CRL, nothing revoked": the revoked device is still refused, the others served.
    const revoked = await curl({ port, dir: tmp.dir, device: "revoked-device" });
    assert.equal(revoked.status, 401, revoked.body);
    assert.equal(revoked.json<{ reason: string }>().reason, "certificate_revoked");
    assert.equal((await curl({ port, dir: tmp.dir, device: "device" })).status, 200);
  });

  test("a revocation published while a device is connected denies its next request on the same connection", async () => {
    // A second device, issued and registered as an operator would.
    const issued = await runCli([
      "pki",
      "issue",
      "device",
      "--dir",
      join(tmp.dir, "pki"),
      "--id",
      "device-002",
      "--out",
      join(tmp.dir, "device-002"),
    ]);
    assert.equal(issued.code, 0, issued.stderr);
    const token = readFileSync(join(tmp.dir, "admin.token"), "utf8").trim();
    const added = await runCli([
      "devices",
      "add",
      "--url",
      `http://127.0.0.1:${gw.adminPort}`,
      "--token",
      token,
      "--id",
      "device-002",
      "--cert",
      join(tmp.dir, "device-002.crt"),
    ]);
    assert.equal(added.code, 0, added.stderr);
    const client = keepAliveClient(port, tmp.dir, "device-002");
    try {
      assert.equal((await client.get()).status, 200);
      const revoked = await runCli([
        "pki",
        "revoke",
        "--dir",
        join(tmp.dir, "pki"),
        "--cert",
        join(tmp.dir, "device-002.crt"),
        "--reason",
        "keyCompromise",
      ]);
      assert.equal(revoked.code, 0, revoked.stderr);
      const deadline = Date.now() + 10_000;
      let last = await client.get();
      while (last.status === 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        last = await client.get();
      }
      assert.equal(last.status, 401);
      assert.equal(last.body.reason, "certificate_revoked");
      assert.equal(client.connects, 1, "the same keep-alive connection carried every request");
      // Other devices are not affected.
      assert.equal((await curl({ port, dir: tmp.dir, device: "device" })).status, 200);
    } finally {
      await client.close();
    }
  });
});
