// EST enrollment end to end, the device's life after the token: factory-certificate bootstrap with
// `portcullis enroll` (auto and manual approval), renewal with `portcullis reenroll` and with curl
// (simplereenroll), and the old certificate's overlap. One gateway, three profiles on one CA.
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import {
  assertIssued,
  assertRefused,
  deviceFiles,
  type EnrollmentPki,
  echo,
  enrollmentConfig,
  enrollmentPki,
  est,
  makeCsr,
  openssl,
  portcullis,
  profile,
  serialOf,
  serverUrl,
  tokenEnroll,
  x509Text,
} from "../helpers/enrollment.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { AdminApi, type DeviceJson, metricValue, waitFor } from "../helpers/registry.ts";

interface CertificateJson {
  serial: string;
  operation: string;
  state: string;
  issuedAt: string;
  revocationReason?: string;
}

const OVERLAP_MS = 3000;

describe("enrollment: factory bootstrap, renewal, revocation (one gateway)", () => {
  const tmp = tempDir("portcullis-enroll-renew-");
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
        profile("devices", { overlap: `${OVERLAP_MS}ms`, crlFile: "enrolled-crl.pem" }),
        // Same CA as "devices" (a second CA label): tokens issue at once, factory certificates await approval.
        profile("manual", {
          approval: "manual",
          retryAfter: "1s",
        }),
        // Like manual, with room for three requests an hour: a device that waits longer polls more often.
        profile("manual-limited", {
          bootstrap: { factory: { trustStores: ["factory"] } },
          approval: "manual",
          retryAfter: "1s",
          rateLimit: { requests: 3, interval: "1h" },
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

  const server = () => ["--server", serverUrl(port), "--ca", join(dir, "ca.crt")];
  const cliOutput = (r: { stdout: string; stderr: string }) => `${r.stdout}${r.stderr}`;
  const certificatesOf = async (id: string) => {
    const r = await admin.call<{ certificates: CertificateJson[] }>("GET", `/devices/${id}/certificates`);
    assert.equal(r.status, 200, r.text);
    return r.json.certificates;
  };
  test("portcullis enroll with a factory certificate: files written (key 0600), the certificate works on /echo", async () => {
    const id = "fac-001";
    const factory = await pki.factoryCert(id);
    // The factory certificate itself is no operational credential.
    const asFactory = await echo(port, dir, `factory-${id}`);
    assert.equal(asFactory.status, 403, asFactory.body);
    assert.equal(asFactory.json<{ reason: string }>().reason, "ca_not_allowed_for_route");

    const out = join(dir, "fac-out");
    const flags = ["--factory-cert", factory.certFile, "--factory-key", factory.keyFile, "--out", out];
    // The device id is the factory certificate's: asking for another one is refused, nothing written.
    const wrongId = await portcullis(["enroll", ...server(), ...flags, "--id", "fac-other"]);
    assert.equal(wrongId.code, 1, cliOutput(wrongId));
    assert.match(wrongId.stderr, /csr_not_allowed/);
    assert.equal(existsSync(out), false, "a refused enrollment writes nothing");

    const r = await portcullis(["enroll", ...server(), ...flags, "--id", id]);
    assert.equal(r.code, 0, cliOutput(r));
    assert.equal(statSync(join(out, `${id}.key`)).mode & 0o777, 0o600);
    const cert = readFileSync(join(out, `${id}.crt`), "utf8");
    const text = await x509Text(cert);
    assert.match(text, /subject=CN=fac-001\n/);
    assert.match(text, /URI:urn:device:fac-001/);
    assert.match(readFileSync(join(out, "ca.pem"), "utf8"), /BEGIN CERTIFICATE/);
    const verified = await openssl(["verify", "-CAfile", join(out, "ca.pem"), join(out, `${id}.crt`)]);
    assert.match(verified.stdout, /: OK/);

    const ok = await echo(port, dir, `fac-out/${id}`);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.json<{ headers: Record<string, string> }>().headers["x-device-id"], id);
    const device = await admin.call<DeviceJson>("GET", `/devices/${id}`);
    assert.equal(device.json.status, "active", device.text);
  });

  test("a factory certificate of an untrusted CA is refused 401 untrusted_issuer", async () => {
    const csr = await makeCsr(dir, "wrong-factory", "device-001");
    // wrong-device.crt: CN device-001, issued by a CA no trust store holds.
    const r = await est({ port, dir, op: "simpleenroll", body: csr.base64, device: "wrong-device" });
    assertRefused(r, 401, "untrusted_issuer");
  });

  test("approval: manual — 202 with Retry-After, the device pending, issued once an operator activates it", async () => {
    const id = "man-001";
    const factory = await pki.factoryCert(id);
    const csr = await makeCsr(dir, id, id);
    const r = await est({ port, dir, op: "manual/simpleenroll", body: csr.base64, device: `factory-${id}` });
    assert.equal(r.status, 202, r.body);
    assert.equal(r.headers["retry-after"], "1");
    assert.match(r.body, /^device_pending: /);
    const pending = await admin.call<DeviceJson>("GET", `/devices/${id}`);
    assert.equal(pending.status, 200, pending.text);
    assert.equal(pending.json.status, "pending");

    const out = join(dir, "man-out");
    const flags = ["--label", "manual", "--factory-cert", factory.certFile, "--factory-key", factory.keyFile];
    const cli = await portcullis(["enroll", ...server(), ...flags, "--id", id, "--out", out]);
    assert.equal(cli.code, 75, cliOutput(cli));
    assert.equal(existsSync(join(out, `${id}.key`)), false, "pending writes no key");
    assert.equal((await admin.call<DeviceJson>("GET", `/devices/${id}`)).json.status, "pending");

    await admin.patch(id, { status: "active" });
    const retried = await est({
      port,
      dir,
      op: "manual/simpleenroll",
      body: csr.base64,
      device: `factory-${id}`,
    });
    const leaf = await assertIssued(retried);
    assert.match(await x509Text(leaf), /URI:urn:device:man-001/);

    // `--wait`: the CLI retries on its own while an operator approves.
    const id2 = "man-002";
    const factory2 = await pki.factoryCert(id2);
    const waiting = portcullis([
      "enroll",
      ...server(),
      "--label",
      "manual",
      "--factory-cert",
      factory2.certFile,
      "--factory-key",
      factory2.keyFile,
      "--id",
      id2,
      "--out",
      out,
      "--wait",
      "20s",
    ]);
    await waitFor(
      async () => (await admin.call<DeviceJson>("GET", `/devices/${id2}`)).json?.status === "pending",
      15_000,
      `${id2} pending`,
    );
    await admin.patch(id2, { status: "active" });
    const done = await waiting;
    assert.equal(done.code, 0, cliOutput(done));
    assert.match(done.stderr, /pending approval, retrying in 1 s/);
    const ok = await echo(port, dir, `man-out/${id2}`);
    assert.equal(ok.status, 200, ok.body);

    const metrics = (await admin.call("GET", "/metrics")).text;
    const labels = { profile: "manual", operation: "enroll", outcome: "pending", reason: "device_pending" };
    assert.ok((metricValue(metrics, "portcullis_enrollments_total", labels) ?? 0) >= 2, metrics);
  });

  test("approval: manual — a device polling as Retry-After says is not rate limited out of its approval", async () => {
    // With the defaults (retryAfter 60s, 10 requests an hour) a device pending for more than ten minutes
    // would be in the same place: here three polls, one a second, then the operator approves.
    const id = "man-003";
    const factory = await pki.factoryCert(id);
    const waiting = portcullis([
      "enroll",
      ...server(),
      "--label",
      "manual-limited",
      "--factory-cert",
      factory.certFile,
      "--factory-key",
      factory.keyFile,
      "--id",
      id,
      "--out",
      join(dir, "man-limited"),
      "--wait",
      "30s",
    ]);
    const labels = { profile: "manual-limited", operation: "enroll", outcome: "pending" };
    await waitFor(
      async () =>
        (metricValue((await admin.call("GET", "/metrics")).text, "portcullis_enrollments_total", labels) ??
          0) >= 3,
      20_000,
      `${id} answered pending three times`,
    );
    await admin.patch(id, { status: "active" });
    const done = await waiting;
    assert.equal(done.code, 0, `approved, yet: ${cliOutput(done)}`);
    assert.equal((await echo(port, dir, `man-limited/${id}`)).status, 200);
  });

  test("portcullis reenroll: the new certificate works at once, the old one until the overlap ends", async () => {
    const id = "ren-001";
    const { name: oldName } = await tokenEnroll(admin, port, dir, id, `ren-1/${id}`);
    assert.equal((await echo(port, dir, oldName)).status, 200);

    const r = await portcullis([
      "reenroll",
      ...server(),
      "--cert",
      join(dir, `${oldName}.crt`),
      "--key",
      join(dir, `${oldName}.key`),
      "--out",
      join(dir, "ren-2"),
    ]);
    assert.equal(r.code, 0, cliOutput(r));
    // Right after the renewal, well within the overlap: the old certificate still passes.
    const during = await echo(port, dir, oldName);
    assert.equal(during.status, 200, during.body);
    const newName = `ren-2/${id}`;
    const fresh = await echo(port, dir, newName);
    assert.equal(fresh.status, 200, fresh.body);
    assert.equal(fresh.json<{ headers: Record<string, string> }>().headers["x-device-id"], id);
    const oldPem = readFileSync(join(dir, `${oldName}.crt`), "utf8");
    const newPem = readFileSync(join(dir, `${newName}.crt`), "utf8");
    assert.notEqual(await serialOf(newPem), await serialOf(oldPem));
    assert.notEqual(
      readFileSync(join(dir, `${newName}.key`), "utf8"),
      readFileSync(join(dir, `${oldName}.key`), "utf8"),
    );

    const certs = await certificatesOf(id);
    const renewal = certs.find((c) => c.operation === "reenroll");
    assert.ok(renewal, JSON.stringify(certs));
    assert.equal(renewal.serial, await serialOf(newPem));
    const overlapEnds = Date.parse(renewal.issuedAt) + OVERLAP_MS;
    // The old certificate is refused once the overlap ends (not before), while the new one keeps working.
    let refusedAt = 0;
    await waitFor(
      async () => {
        const r = await echo(port, dir, oldName);
        if (r.status === 200) return false;
        refusedAt = Date.now();
        assert.equal(r.status, 401, r.body);
        assert.equal(r.json<{ reason: string }>().reason, "unknown_device");
        return true;
      },
      OVERLAP_MS + 15_000,
      "the old certificate refused after the overlap",
    );
    assert.ok(
      refusedAt >= overlapEnds - 250,
      `refused ${overlapEnds - refusedAt} ms before the overlap ended`,
    );
    assert.equal((await echo(port, dir, newName)).status, 200);
    // Nor can the superseded certificate renew any more.
    const late = await makeCsr(dir, "ren-001-late", id);
    assertRefused(
      await est({ port, dir, op: "simplereenroll", body: late.base64, device: oldName }),
      401,
      "unknown_device",
    );
  });

  test("curl simplereenroll with the current certificate; a changed subject is 403 subject_changed", async () => {
    const id = "ren-002";
    const { name: current } = await tokenEnroll(admin, port, dir, id, `ren-c/${id}`);

    const changed = await makeCsr(dir, "ren-002-changed", id, { subject: `/CN=${id}/O=Elsewhere` });
    assertRefused(
      await est({ port, dir, op: "simplereenroll", body: changed.base64, device: current }),
      403,
      "subject_changed",
    );
    const otherSan = await makeCsr(dir, "ren-002-san", id, {
      san: [`URI:urn:device:${id}`, "DNS:evil.example"],
    });
    assertRefused(
      await est({ port, dir, op: "simplereenroll", body: otherSan.base64, device: current }),
      403,
      "subject_changed",
    );
    // No certificate: no renewal.
    const csr = await makeCsr(dir, "ren-002-new", id);
    assertRefused(await est({ port, dir, op: "simplereenroll", body: csr.base64 }), 401, "no_certificate");

    const leaf = await assertIssued(
      await est({ port, dir, op: "simplereenroll", body: csr.base64, device: current }),
    );
    const text = await x509Text(leaf);
    assert.match(text, /subject=CN=ren-002\n/);
    assert.match(text, /URI:urn:device:ren-002/);
    writeFileSync(join(dir, "ren-002-new.crt"), leaf);
    const ok = await echo(port, dir, "ren-002-new");
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual((await certificatesOf(id)).map((c) => c.operation).sort(), ["enroll", "reenroll"]);

    const decisions = await admin.call<{
      decisions: { route?: string; reason?: string; deviceId?: string }[];
    }>("GET", "/decisions?limit=1000");
    const refused = decisions.json.decisions.find((d) => d.deviceId === id && d.reason === "subject_changed");
    assert.equal(refused?.route, "est:devices/reenroll", decisions.text);

    // A suspended device cannot renew.
    await admin.patch(id, { status: "suspended" });
    const again = await makeCsr(dir, "ren-002-again", id);
    assertRefused(
      await est({ port, dir, op: "simplereenroll", body: again.base64, device: "ren-002-new" }),
      403,
      "device_suspended",
    );
  });

  test("renewing twice with one certificate (a retry after a lost answer): each superseded certificate ends with its overlap", async () => {
    const id = "ren-003";
    const { name: a } = await tokenEnroll(admin, port, dir, id, `twice/${id}-a`);
    const renewFromA = async (name: string) => {
      const csr = await makeCsr(dir, name.replace("/", "-"), id);
      const leaf = await assertIssued(
        await est({ port, dir, op: "simplereenroll", body: csr.base64, device: a }),
      );
      return { name: deviceFiles(dir, name, leaf, readFileSync(csr.keyFile, "utf8")), leaf };
    };
    const issuedAt = async (pem: string) => {
      const serial = await serialOf(pem);
      const cert = (await certificatesOf(id)).find((c) => c.serial === serial);
      assert.ok(cert, serial);
      return Date.parse(cert.issuedAt);
    };
    // B: the answer the device never got; it retries with A, still within A's overlap, and gets C.
    const b = await renewFromA(`twice/${id}-b`);
    const bIssued = await issuedAt(b.leaf);
    // Half an overlap later, so that a retirement of A moved by the retry would show.
    await sleep(Math.max(0, bIssued + OVERLAP_MS / 2 - Date.now()));
    const c = await renewFromA(`twice/${id}-c`);
    const cIssued = await issuedAt(c.leaf);
    assert.equal((await echo(port, dir, c.name)).status, 200);

    // When A and B are first refused (undefined: still accepted at the deadline).
    const deadline = cIssued + OVERLAP_MS + 5000;
    const firstRefusal = async (name: string): Promise<number | undefined> => {
      while (Date.now() < deadline) {
        if ((await echo(port, dir, name)).status === 401) return Date.now();
        await sleep(50);
      }
      return undefined;
    };
    const [aRefused, bRefused] = await Promise.all([firstRefusal(a), firstRefusal(b.name)]);
    assert.equal((await echo(port, dir, c.name)).status, 200, "the newest certificate keeps working");
    const problems: string[] = [];
    if (bRefused === undefined) {
      problems.push(`B (superseded by C) is still accepted ${deadline - cIssued} ms after C was issued`);
    }
    if (aRefused === undefined || aRefused > bIssued + OVERLAP_MS + 750) {
      const when = aRefused === undefined ? "not at all" : `${aRefused - bIssued} ms after`;
      problems.push(`A's overlap ends ${OVERLAP_MS} ms after B was issued, but A was refused ${when}`);
    }
    assert.deepEqual(problems, []);
  });

  test("a new token for an enrolled device (factory reset): the previous certificate ends with the overlap", async () => {
    const id = "reset-001";
    await tokenEnroll(admin, port, dir, id, `reset-1/${id}`);
    await tokenEnroll(admin, port, dir, id, `reset-2/${id}`);
    const certs = await certificatesOf(id);
    assert.deepEqual(
      certs.map((c) => c.operation),
      ["enroll", "enroll"],
    );
    const second = certs.map((c) => Date.parse(c.issuedAt)).sort((a, b) => b - a)[0] ?? 0;
    assert.equal((await echo(port, dir, `reset-2/${id}`)).status, 200);
    await waitFor(
      async () => (await echo(port, dir, `reset-1/${id}`)).status === 401,
      OVERLAP_MS + 15_000,
      "the previous certificate refused after the overlap",
    );
    assert.ok(Date.now() >= second + OVERLAP_MS - 250, "not before the overlap ended");
    assert.equal((await echo(port, dir, `reset-2/${id}`)).status, 200);
  });
});
