// CRL files per trust store: loaded at start (a broken file refuses to start, naming it), reloaded when
// replaced on disk (the view changes, onChange fires), a bad new version keeps the old CRLs; the demo PKI's CRLs.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { parsePemBundle } from "../identity/certificate.ts";
import { checkRevocation } from "../identity/revocation/check.ts";
import { crlPem, device, settings, store, testPki } from "../identity/revocation/testing/pki.ts";
import { mintCa } from "../identity/testing/mint.ts";
import { compileTrustStore } from "../identity/trust-store.ts";
import { ensureDemoPki } from "../pki/demo-pki.ts";
import { RevocationConfigError } from "./errors.ts";
import { RevocationService } from "./revocation-service.ts";
import { recordingLogger } from "./testing/http.ts";

const dir = mkdtempSync(join(tmpdir(), "portcullis-crlfiles-"));
const services: RevocationService[] = [];
after(async () => {
  await Promise.all(services.map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

const pki = await testPki("Files");
const leafA = await device("device-a", pki.int);
const leafB = await device("device-b", pki.int);
const path = [pki.int.cert, pki.root.cert];

async function create(stores: Parameters<typeof RevocationService.create>[0]) {
  const logger = recordingLogger();
  const service = await RevocationService.create(stores, { logger, filePollIntervalMs: 200 });
  services.push(service);
  return { service, logger };
}

function nextChange(service: RevocationService, ms = 3_000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no onChange within ${ms} ms`)), ms);
    const off = service.onChange((epoch) => {
      clearTimeout(timer);
      off();
      resolve(epoch);
    });
  });
}

test("a CRL file replaced on disk changes the view and fires onChange; a bad new file keeps the old CRLs", async () => {
  const file = join(dir, "devices.crl");
  writeFileSync(file, (await crlPem(pki.int, { revoked: [leafA], crlNumber: 1 })) + (await crlPem(pki.root)));
  const s = store(pki, { mode: "strict", scope: "chain", crl: { files: [file] } });
  const { service, logger } = await create([s]);
  const status = (leaf: typeof leafA) => checkRevocation(leaf.cert, path, s, service.view(), new Date());
  assert.equal(!status(leafA).ok && (status(leafA) as { reason: string }).reason, "certificate_revoked");
  assert.deepEqual(status(leafB), { ok: true, softFailures: [] });

  // Atomic replacement (write + rename): a new inode in the watched directory.
  const epoch = service.view().epoch;
  const changed = nextChange(service);
  writeFileSync(
    `${file}.tmp`,
    (await crlPem(pki.int, { revoked: [leafB], crlNumber: 2 })) + (await crlPem(pki.root)),
  );
  renameSync(`${file}.tmp`, file);
  assert.ok((await changed) > epoch);
  assert.deepEqual(status(leafA), { ok: true, softFailures: [] });
  assert.equal(status(leafB).ok, false);

  // A truncated new version: logged, rejected, the CRLs of the previous version keep answering.
  const before = service.view().epoch;
  const text = readFileSync(file, "utf8");
  writeFileSync(file, text.slice(0, text.length / 2));
  const deadline = Date.now() + 3_000;
  while (!logger.lines.some((l) => l.level === "error") && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const error = logger.lines.find((l) => l.level === "error");
  assert.match(
    `${error?.msg} ${Object.values(error?.obj ?? {}).join(" ")}`,
    /CRL file rejected; keeping .*devices\.crl: 1 PEM block\(s\) are not terminated/,
  );
  assert.equal(service.view().epoch, before);
  assert.equal(status(leafB).ok, false);

  // Rewritten in place, good again: picked up.
  const again = nextChange(service);
  writeFileSync(file, (await crlPem(pki.int, { crlNumber: 3 })) + (await crlPem(pki.root)));
  await again;
  assert.deepEqual(status(leafB), { ok: true, softFailures: [] });
});

test("a broken CRL file at start refuses to start, naming the store and the file", async () => {
  const garbage = join(dir, "garbage.crl");
  writeFileSync(garbage, "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
  const forged = join(dir, "forged.crl");
  writeFileSync(forged, await crlPem(pki.int, {}, await mintCa("O=Files, CN=Files Device CA")));
  const cases: [string, RegExp][] = [
    [garbage, /trust store "devices": CRL file .*garbage\.crl \(CRL #1\): not a DER-encoded CRL/],
    [forged, /trust store "devices": CRL file .*forged\.crl \(CRL #1\): its signature does not verify/],
    [join(dir, "missing.crl"), /trust store "devices": CRL file .*missing\.crl: ENOENT/],
  ];
  for (const [file, message] of cases) {
    await assert.rejects(
      () =>
        RevocationService.create([store(pki, { mode: "soft", crl: { files: [file] } })], {
          logger: recordingLogger(),
        }),
      (err) => err instanceof RevocationConfigError && message.test(err.message),
    );
  }
  // The same file under a store with revocation off is not read at all.
  await create([store(pki, { mode: "off", crl: { files: [garbage] } })]);
});

test("the demo PKI's CRLs: device-001 good, revoked-device revoked, over the whole chain", async () => {
  const demo = await ensureDemoPki(join(dir, "demo"));
  const s = compileTrustStore("devices", readFileSync(demo.caChain, "utf8"), {
    revocation: settings({ mode: "strict", scope: "chain", crl: { files: [demo.crl, demo.rootCrl] } }),
  });
  const { service } = await create([s]);
  const chain = parsePemBundle(readFileSync(demo.caChain, "utf8"));
  const check = (file: string) => {
    const [leaf] = parsePemBundle(readFileSync(file, "utf8"));
    assert.ok(leaf);
    return checkRevocation(leaf, chain, s, service.view(), new Date());
  };
  assert.deepEqual(check(demo.deviceCert), { ok: true, softFailures: [] });
  const revoked = check(demo.revokedDeviceCert);
  assert.equal(!revoked.ok && revoked.reason, "certificate_revoked");
  assert.match(
    !revoked.ok ? revoked.detail : "",
    /"CN=revoked-device" was revoked .*\(keyCompromise\), per CRL/,
  );
});
