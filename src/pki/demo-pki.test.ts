// Tests of the demo PKI: every file is created, reused byte for byte, repaired, and works with Node's TLS stack.
import assert from "node:assert/strict";
import { createPrivateKey, createPublicKey } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import tls from "node:tls";
import { parsePemBundle } from "../identity/certificate.ts";
import { x509 } from "../identity/x509.ts";
import { type DemoPki, ensureDemoPki } from "./demo-pki.ts";
import { readCrl, readIssuer } from "./files.ts";
import { createCrl } from "./issue.ts";

const base = mkdtempSync(join(tmpdir(), "portcullis-demo-"));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(base, `demo-${++n}`);

const DEMO_FILES = [
  "ca.crt",
  "ca-chain.crt",
  "server.crt",
  "server.key",
  "device.crt",
  "device.key",
  "wrong-ca.crt",
  "wrong-device.crt",
  "wrong-device.key",
  "expired-device.crt",
  "expired-device.key",
  "revoked-device.crt",
  "revoked-device.key",
  "unregistered-device.crt",
  "unregistered-device.key",
  "crl.pem",
  "root-crl.pem",
  "admin.token",
  "enroll-ca.crt",
  "enroll-ca.key",
  "enroll-crl.pem",
];

function snapshot(dir: string): Map<string, string> {
  const files = [
    ...readdirSync(dir).filter((f) => f !== "pki"),
    ...readdirSync(join(dir, "pki")).map((f) => `pki/${f}`),
  ];
  return new Map(files.map((f) => [f, readFileSync(join(dir, f), "latin1")]));
}

const certs = (path: string) => parsePemBundle(readFileSync(path, "utf8"));

test("creates every file with the specified contents", async () => {
  const dir = freshDir();
  const started = performance.now();
  const demo = await ensureDemoPki(dir);
  assert.ok(performance.now() - started < 3000, "demo PKI generation should be fast");
  assert.deepEqual(
    readdirSync(dir)
      .filter((f) => f !== "pki")
      .sort(),
    [...DEMO_FILES].sort(),
  );
  assert.equal(demo.deviceId, "device-001");
  for (const [key, value] of Object.entries(demo)) {
    if (typeof value === "string" && key !== "deviceId") assert.ok(value.startsWith(dir), key);
  }
  for (const f of DEMO_FILES.filter((f) => f.endsWith(".key") || f === "admin.token")) {
    assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  }
  assert.match(readFileSync(demo.adminToken, "utf8"), /^[0-9a-f]{64}\n$/);

  const [root] = certs(demo.caCert);
  const [intermediate, chainRoot] = certs(demo.caChain);
  assert.ok(root && intermediate && chainRoot?.fingerprint === root.fingerprint);
  const [server, serverChain] = certs(demo.serverCert);
  assert.deepEqual(server?.sanDns, ["localhost", "mtls.auth.local.com"]);
  assert.deepEqual(server?.sanIps, ["127.0.0.1"]);
  assert.equal(serverChain?.fingerprint, intermediate.fingerprint);
  const now = Date.now();
  for (const [file, id] of [
    [demo.deviceCert, "device-001"],
    [demo.revokedDeviceCert, "revoked-device"],
    [demo.unregisteredDeviceCert, "unregistered-device"],
    [demo.expiredDeviceCert, "expired-device"],
  ] as const) {
    const [leaf, chain] = certs(file);
    assert.equal(leaf?.commonName, id);
    assert.deepEqual(leaf?.sanUris, [`urn:device:${id}`]);
    assert.ok(leaf?.node.checkIssued(intermediate.node) && leaf.node.verify(intermediate.node.publicKey));
    assert.equal(chain?.fingerprint, intermediate.fingerprint);
  }
  const [expired] = certs(demo.expiredDeviceCert);
  assert.ok(expired && expired.notAfter.getTime() < now && expired.notBefore >= root.notBefore);
  const [wrongCa] = certs(demo.wrongCaCert);
  const [wrong] = certs(demo.wrongDeviceCert);
  assert.equal(wrongCa?.commonName, "Untrusted Demo CA");
  assert.ok(wrongCa && wrong?.node.verify(wrongCa.node.publicKey));
  assert.ok(!wrong?.node.verify(intermediate.node.publicKey));
  assert.ok(readdirSync(demo.pkiDir).includes("intermediate.key"));

  // The enrollment CA: issued by the root (not the intermediate), may issue leaves only.
  const [enrollCa, ...rest] = certs(demo.enrollCaCert);
  assert.equal(rest.length, 0);
  assert.equal(enrollCa?.commonName, "Portcullis Demo Enrollment CA");
  assert.ok(enrollCa?.isCA);
  assert.ok(enrollCa.node.checkIssued(root.node) && enrollCa.node.verify(root.node.publicKey));
  assert.notEqual(enrollCa.fingerprint, intermediate.fingerprint);
  const bc = new x509.X509Certificate(enrollCa.der).getExtension(x509.BasicConstraintsExtension);
  assert.equal(bc?.pathLength, 0);
  assert.ok(enrollCa.notAfter <= root.notAfter);
  const enrollKey = createPrivateKey(readFileSync(demo.enrollCaKey));
  assert.ok(createPublicKey(enrollKey).equals(enrollCa.node.publicKey));
  const crl = readCrl(demo.enrollCrl);
  assert.equal(crl.entries.length, 0);
  assert.ok(await crl.verify({ publicKey: new x509.X509Certificate(enrollCa.der).publicKey }));
});

test("the enrollment CA is reused, repaired, and its CRL is replaced once another CA signed it", async () => {
  const dir = freshDir();
  const demo = await ensureDemoPki(dir);
  const issuer = await readIssuer(demo.enrollCaCert, demo.enrollCaKey);
  // As the gateway rewrites it at start.
  writeFileSync(demo.enrollCrl, (await createCrl(issuer, { revoked: [] })).pem);
  const first = snapshot(dir);
  assert.deepEqual((await ensureDemoPki(dir)).written, []);
  assert.deepEqual(snapshot(dir), first, "a CRL of the current enrollment CA is kept");

  writeFileSync(demo.enrollCaKey, "not a key");
  const repaired = await ensureDemoPki(dir);
  assert.deepEqual(repaired.written.sort(), ["enroll-ca.crt", "enroll-ca.key", "enroll-crl.pem"]);
  assert.equal(statSync(demo.enrollCaKey).mode & 0o777, 0o600);
  // The old CA's CRL would be refused by the gateway: replaced by an empty one of the new CA.
  const newCa = await readIssuer(demo.enrollCaCert, demo.enrollCaKey);
  assert.ok(await readCrl(demo.enrollCrl).verify({ publicKey: newCa.cert.publicKey }));
  rmSync(demo.enrollCrl);
  assert.deepEqual((await ensureDemoPki(dir)).written, ["enroll-crl.pem"]);
  const after = snapshot(dir);
  for (const [file, text] of first) {
    if (!file.startsWith("enroll-")) assert.equal(after.get(file), text, file);
  }

  // A CA that is not the root's (a leaf in its place) is replaced.
  writeFileSync(demo.enrollCaCert, readFileSync(demo.deviceCert));
  writeFileSync(demo.enrollCaKey, readFileSync(demo.deviceKey));
  assert.deepEqual((await ensureDemoPki(dir)).written.sort(), [
    "enroll-ca.crt",
    "enroll-ca.key",
    "enroll-crl.pem",
  ]);
});

test("a second call reuses every file untouched; a deleted or broken file is repaired", async () => {
  const dir = freshDir();
  await ensureDemoPki(dir);
  const first = snapshot(dir);
  const again = await ensureDemoPki(dir);
  assert.deepEqual(again.written, []);
  assert.deepEqual(snapshot(dir), first);

  rmSync(join(dir, "device.key"));
  writeFileSync(join(dir, "crl.pem"), "garbage");
  const repaired = await ensureDemoPki(dir);
  assert.deepEqual(repaired.written.sort(), ["crl.pem", "device.crt", "device.key"]);
  const after = snapshot(dir);
  for (const [file, text] of first) {
    if (!repaired.written.includes(file)) assert.equal(after.get(file), text, file);
  }

  // A revoked-device reissue must reach the store's list and the CRL.
  rmSync(join(dir, "revoked-device.crt"));
  const reissued = await ensureDemoPki(dir);
  assert.ok(reissued.written.includes("crl.pem"));
  const [revoked] = certs(reissued.revokedDeviceCert);
  const list = JSON.parse(readFileSync(join(reissued.pkiDir, "revoked.json"), "utf8"));
  assert.ok(list.some((e: { serialNumber: string }) => e.serialNumber === revoked?.serialNumber));
});

test("a broken CA regenerates everything but keeps the admin token", async () => {
  const dir = freshDir();
  const demo = await ensureDemoPki(dir);
  const token = readFileSync(demo.adminToken, "utf8");
  const ca = readFileSync(demo.caCert, "utf8");
  writeFileSync(join(demo.pkiDir, "root.key"), "not a key");
  const again = await ensureDemoPki(dir);
  assert.notEqual(readFileSync(demo.caCert, "utf8"), ca);
  assert.equal(readFileSync(demo.adminToken, "utf8"), token);
  for (const f of [
    "server.crt",
    "device.crt",
    "expired-device.crt",
    "revoked-device.crt",
    "crl.pem",
    "enroll-ca.crt",
    "enroll-ca.key",
  ]) {
    assert.ok(again.written.includes(f), f);
  }
  // Certificates that would expire within a day are renewed.
  const later = await ensureDemoPki(dir, { now: new Date(Date.now() + 364.5 * 86_400_000) });
  assert.ok(later.written.includes("device.crt") && later.written.includes("crl.pem"));
  assert.ok(!later.written.includes("ca.crt"));
});

/** Connects with a demo client certificate; resolves to the server's verdict on it. */
async function handshake(
  demo: DemoPki,
  cert: string,
  key: string,
): Promise<{ authorized: boolean; error: unknown }> {
  const read = (path: string) => readFileSync(path);
  const server = tls.createServer({
    key: read(demo.serverKey),
    cert: read(demo.serverCert),
    ca: read(demo.caChain),
    crl: [read(demo.crl), read(demo.rootCrl)],
    requestCert: true,
    rejectUnauthorized: false,
  });
  const verdict = new Promise<{ authorized: boolean; error: unknown }>((resolve) =>
    server.on("secureConnection", (socket) => {
      resolve({ authorized: socket.authorized, error: socket.authorizationError });
      socket.end();
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  // The client verifies the server against ca.crt alone: server.crt must carry the intermediate.
  const client = tls.connect({
    port,
    host: "127.0.0.1",
    servername: "mtls.auth.local.com",
    ca: read(demo.caCert),
    cert: read(cert),
    key: read(key),
  });
  await new Promise<void>((resolve, reject) => client.on("secureConnect", resolve).on("error", reject));
  const result = await verdict;
  client.destroy();
  server.close();
  return result;
}

test("the demo files work with Node's TLS stack", async () => {
  const demo = await ensureDemoPki(freshDir());
  assert.deepEqual(await handshake(demo, demo.deviceCert, demo.deviceKey), { authorized: true, error: null });
  assert.equal(
    (await handshake(demo, demo.unregisteredDeviceCert, demo.unregisteredDeviceKey)).authorized,
    true,
  );
  assert.deepEqual(await handshake(demo, demo.wrongDeviceCert, demo.wrongDeviceKey), {
    authorized: false,
    error: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  });
  assert.deepEqual(await handshake(demo, demo.expiredDeviceCert, demo.expiredDeviceKey), {
    authorized: false,
    error: "CERT_HAS_EXPIRED",
  });
  assert.deepEqual(await handshake(demo, demo.revokedDeviceCert, demo.revokedDeviceKey), {
    authorized: false,
    error: "CERT_REVOKED",
  });
});
