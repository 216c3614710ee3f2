// OCSP against a pkijs-built responder for what a correct responder never does: bad signature, wrong CertID,
// signer without id-kp-OCSPSigning, tryLater, HTTP errors, slow (timeout) and down, in soft and strict
// mode; plus coalescing of concurrent lookups, the HTTP proxy, and an answer expiring into a revocation.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { after, test } from "node:test";
import { checkRevocation } from "../identity/revocation/check.ts";
import type { ResponseSpec } from "../identity/revocation/testing/ocsp-builder.ts";
import { device, responder, store, testPki } from "../identity/revocation/testing/pki.ts";
import { RevocationService } from "./revocation-service.ts";
import { REFUSED_URL, recordingLogger } from "./testing/http.ts";
import { type Script, startPkijsResponder } from "./testing/ocsp-responder.ts";

const pki = await testPki("Pkijs");
const path = [pki.int.cert, pki.root.cert];
const noEku = await responder(pki.int, { eku: false });
const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

async function serviceFor(responderUrl: string, extra: { proxy?: string; failureTtlMs?: number } = {}) {
  const ocsp = { enabled: true, responder: responderUrl, timeoutMs: 300, proxy: extra.proxy };
  const soft = store(pki, { mode: "soft", ocsp }, "soft");
  const strict = store(pki, { mode: "strict", ocsp }, "strict");
  const logger = recordingLogger();
  const service = await RevocationService.create([soft, strict], {
    logger,
    ocspFailureTtlMs: extra.failureTtlMs ?? 30_000,
  });
  cleanup.push(() => service.close());
  return { service, soft, strict, logger };
}

async function responderFor(spec: Script) {
  const r = await startPkijsResponder(spec);
  cleanup.push(() => r.close());
  return r;
}

const broken: { name: string; script: Script | "down"; detail: RegExp }[] = [
  {
    name: "bad signature",
    script: () => ({ status: "good", signer: pki.int, corruptSignature: true }),
    detail: /the response signature does not verify with the key of "CN=Pkijs Device CA/,
  },
  {
    name: "wrong CertID",
    script: () => ({ status: "good", signer: pki.int, wrongCertId: true }),
    detail: /the response has no status for serial/,
  },
  {
    name: "responder without id-kp-OCSPSigning",
    script: () => ({ status: "good", signer: noEku }),
    detail: /responder "CN=OCSP responder of Pkijs Device CA" lacks extendedKeyUsage id-kp-OCSPSigning/,
  },
  {
    name: "tryLater",
    script: () => ({ status: "good", signer: pki.int, responseStatus: 3 }),
    detail: /responder answered tryLater/,
  },
  { name: "HTTP 500", script: () => ({ httpStatus: 500 }), detail: /HTTP 500/ },
  {
    name: "slow responder",
    script: () => ({ status: "good", signer: pki.int, delayMs: 3_000 }),
    detail: /no complete answer within 300 ms/,
  },
  { name: "responder down", script: "down", detail: /ECONNREFUSED|connect/ },
];

for (const c of broken) {
  test(`OCSP ${c.name}: soft allows and reports, strict denies revocation_unknown`, async () => {
    const url = c.script === "down" ? REFUSED_URL : (await responderFor(c.script)).url;
    const { service, soft, strict } = await serviceFor(url);
    const leaf = (await device(`leaf-${c.name}`, pki.int)).cert;
    const started = Date.now();
    await service.prepare(leaf, path, soft, new Date());
    assert.ok(Date.now() - started < 2_000, "bounded by the OCSP timeout");
    const s = checkRevocation(leaf, path, soft, service.view(), new Date());
    assert.equal(s.ok, true);
    assert.match(s.ok ? s.softFailures.join() : "", c.detail);
    await service.prepare(leaf, path, strict, new Date());
    const r = checkRevocation(leaf, path, strict, service.view(), new Date());
    assert.equal(!r.ok && r.reason, "revocation_unknown");
    assert.match(!r.ok ? r.detail : "", c.detail);
  });
}

test("concurrent lookups of one certificate share one request; a failure is remembered for its TTL", async () => {
  let answer: ResponseSpec & { delayMs?: number } = { status: "good", signer: pki.int, delayMs: 100 };
  const r = await responderFor(() => answer);
  const { service, strict } = await serviceFor(r.url, { failureTtlMs: 30_000 });
  const leaf = (await device("coalesced", pki.int)).cert;
  await Promise.all(Array.from({ length: 5 }, () => service.prepare(leaf, path, strict, new Date())));
  assert.equal(r.requests(), 1);
  assert.deepEqual(checkRevocation(leaf, path, strict, service.view(), new Date()), {
    ok: true,
    softFailures: [],
  });

  answer = { status: "good", signer: pki.int, corruptSignature: true };
  const other = (await device("failing", pki.int)).cert;
  await service.prepare(other, path, strict, new Date());
  await service.prepare(other, path, strict, new Date());
  assert.equal(r.requests(), 2, "the failure is cached: no second request");
});

test("responders are reached through the configured HTTP proxy", async () => {
  const r = await responderFor(() => ({ status: "revoked", signer: pki.int, reason: 1 }));
  let tunnels = 0;
  const proxy = createServer();
  proxy.on("connect", (req, client, head) => {
    tunnels++;
    const [host, port] = (req.url ?? "").split(":");
    const upstream = connect(Number(port), host, () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  cleanup.push(
    () =>
      new Promise<void>((resolve) => {
        proxy.closeAllConnections();
        proxy.close(() => resolve());
      }),
  );
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const { service, strict } = await serviceFor(r.url, { proxy: proxyUrl });
  const leaf = (await device("proxied", pki.int)).cert;
  await service.prepare(leaf, path, strict, new Date());
  const result = checkRevocation(leaf, path, strict, service.view(), new Date());
  assert.equal(!result.ok && result.reason, "certificate_revoked");
  assert.ok(tunnels >= 1, "the request went through the proxy");
});

test("a cached good answer expires at nextUpdate: onChange fires, and the next lookup sees the revocation", async () => {
  let spec: ResponseSpec = { status: "good", signer: pki.int, nextUpdate: new Date(Date.now() + 1_200) };
  const r = await responderFor(() => spec);
  const { service, strict } = await serviceFor(r.url);
  const leaf = (await device("expiring", pki.int)).cert;
  await service.prepare(leaf, path, strict, new Date());
  assert.equal(checkRevocation(leaf, path, strict, service.view(), new Date()).ok, true);
  spec = { status: "revoked", signer: pki.int, reason: 1 };
  const changed = new Promise<number>((resolve) => service.onChange(resolve));
  const epoch = await changed;
  assert.equal(service.view().epoch, epoch);
  const expired = checkRevocation(leaf, path, strict, service.view(), new Date());
  assert.equal(!expired.ok && expired.reason, "revocation_unknown");
  await service.prepare(leaf, path, strict, new Date());
  const revoked = checkRevocation(leaf, path, strict, service.view(), new Date());
  assert.equal(!revoked.ok && revoked.reason, "certificate_revoked");
});
