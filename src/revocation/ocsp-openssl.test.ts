// OCSP against Debian's `openssl ocsp` (an independent implementation) started by the test: good, revoked
// and unknown, signed by the CA and by a delegated responder, in soft and strict mode; AIA and configured
// responder URLs; answers cached.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { checkRevocation } from "../identity/revocation/check.ts";
import { device, responder, store, testPki } from "../identity/revocation/testing/pki.ts";
import type { TrustStore } from "../identity/types.ts";
import { RevocationService } from "./revocation-service.ts";
import { recordingLogger } from "./testing/http.ts";
import { type OpensslResponder, startOpensslOcsp } from "./testing/openssl-ocsp.ts";

const pki = await testPki("OpenSSL");
const good = await device("good", pki.int);
const revoked = await device("revoked", pki.int);
const unlisted = await device("unlisted", pki.int);
const delegate = await responder(pki.int);
const path = [pki.int.cert, pki.root.cert];
const dirs: string[] = [];
const responders: OpensslResponder[] = [];
const services: RevocationService[] = [];

let byCa: OpensslResponder;
let byDelegate: OpensslResponder;
before(async () => {
  const entries = [
    { cert: good },
    { cert: revoked, revokedAt: new Date("2026-03-04T05:06:07Z"), reason: "keyCompromise" },
  ];
  const dir = (name: string) => {
    const d = mkdtempSync(join(tmpdir(), `portcullis-ocsp-${name}-`));
    dirs.push(d);
    return d;
  };
  [byCa, byDelegate] = await Promise.all([
    startOpensslOcsp({ dir: dir("ca"), ca: pki.int, entries }),
    startOpensslOcsp({ dir: dir("delegate"), ca: pki.int, entries, signer: delegate, nmin: 10 }),
  ]);
  responders.push(byCa, byDelegate);
});
after(async () => {
  await Promise.all(services.map((s) => s.close()));
  await Promise.all(responders.map((r) => r.close()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function outcomes(responderUrl: string) {
  const ocsp = { enabled: true, responder: responderUrl, timeoutMs: 2_000 };
  const stores: Record<"soft" | "strict", TrustStore> = {
    soft: store(pki, { mode: "soft", ocsp }, "soft"),
    strict: store(pki, { mode: "strict", ocsp }, "strict"),
  };
  const service = await RevocationService.create(Object.values(stores), { logger: recordingLogger() });
  services.push(service);
  return async (leaf: typeof good, mode: "soft" | "strict") => {
    await service.prepare(leaf.cert, path, stores[mode], new Date());
    return checkRevocation(leaf.cert, path, stores[mode], service.view(), new Date());
  };
}

for (const signer of ["CA", "delegated responder"] as const) {
  test(`openssl ocsp signed by the ${signer}: good, revoked, unknown in soft and strict`, async () => {
    const check = await outcomes(signer === "CA" ? byCa.url : byDelegate.url);
    for (const mode of ["soft", "strict"] as const) {
      assert.deepEqual(await check(good, mode), { ok: true, softFailures: [] }, `good, ${mode}`);
      const r = await check(revoked, mode);
      assert.equal(!r.ok && r.reason, "certificate_revoked", `revoked, ${mode}`);
      assert.match(
        !r.ok ? r.detail : "",
        /"CN=revoked" was revoked at 2026-03-04T05:06:07.000Z \(keyCompromise\), per OCSP/,
      );
    }
    const soft = await check(unlisted, "soft");
    assert.equal(soft.ok, true);
    assert.match(soft.ok ? soft.softFailures.join() : "", /answered "unknown" for certificate "CN=unlisted"/);
    const strict = await check(unlisted, "strict");
    assert.equal(!strict.ok && strict.reason, "revocation_unknown");
  });
}

test("the responder named in the leaf's AIA is used when none is configured; answers are cached; prepareChain", async () => {
  const leaf = await device("aia", pki.int, { ocsp: byCa.url });
  const s = store(pki, { mode: "strict", ocsp: { enabled: true } });
  const service = await RevocationService.create([s], { logger: recordingLogger() });
  services.push(service);
  let changes = 0;
  service.onChange(() => changes++);
  // prepareChain builds the path itself, as the gateway does before decide().
  await service.prepareChain(leaf.cert, [], [s], new Date());
  // Not in openssl's index: "unknown", from the AIA responder.
  const result = checkRevocation(leaf.cert, path, s, service.view(), new Date());
  assert.equal(!result.ok && result.reason, "revocation_unknown");
  assert.match(!result.ok ? result.detail : "", /answered "unknown"/);
  assert.equal(changes, 1);
  const epoch = service.view().epoch;
  await service.prepare(leaf.cert, path, s, new Date());
  assert.equal(service.view().epoch, epoch, "served from the cache: nothing changed");
});
