// CRLs over HTTP from a plain local server: Distribution Points and configured URLs; good, revoked, stale,
// wrong signer, slow (timeout), 404 and oversized, each in soft and strict mode with the exact outcome.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { checkRevocation, type RevocationCheck } from "../identity/revocation/check.ts";
import { parseCrls } from "../identity/revocation/crl.ts";
import { crlPem, DAY, device, settings, store, testPki } from "../identity/revocation/testing/pki.ts";
import { mintCa } from "../identity/testing/mint.ts";
import { compileTrustStore } from "../identity/trust-store.ts";
import { MIN_INTERVAL_MS, nextRefreshDelay } from "./crl-url-source.ts";
import { RevocationService } from "./revocation-service.ts";
import { type Route, recordingLogger, startServer } from "./testing/http.ts";

const server = await startServer();
const services: RevocationService[] = [];
after(async () => {
  await Promise.all(services.map((s) => s.close()));
  await server.close();
});

type Expect =
  | { ok: true; soft?: RegExp }
  | { ok: false; reason: "certificate_revoked" | "revocation_unknown"; detail: RegExp };

/** One CA whose CRL `route` serves at /<name>.crl, and one of its leaves naming it as CRL Distribution Point. */
async function runCase(
  name: string,
  route: (p: Awaited<ReturnType<typeof testPki>>) => Promise<Route>,
  revokeLeaf = false,
) {
  const pki = await testPki(name);
  const leaf = await device(`${name}-leaf`, pki.int, { crl: server.url(`/${name}.crl`) });
  const crlRoute = await route(pki);
  server.set(`/${name}.crl`, revokeLeaf ? { body: await crlPem(pki.int, { revoked: [leaf] }) } : crlRoute);
  const crl = { timeoutMs: 300, maxBytes: 4096 };
  const stores = {
    soft: store(pki, { mode: "soft", crl }, "soft"),
    strict: store(pki, { mode: "strict", crl }, "strict"),
  };
  const logger = recordingLogger();
  const service = await RevocationService.create(Object.values(stores), { logger });
  services.push(service);
  const path = [pki.int.cert, pki.root.cert];
  const results: Record<string, RevocationCheck> = {};
  for (const [mode, s] of Object.entries(stores)) {
    const started = Date.now();
    await service.prepare(leaf.cert, path, s, new Date());
    assert.ok(Date.now() - started < 2_000, "prepare is bounded by the timeout");
    results[mode] = checkRevocation(leaf.cert, path, s, service.view(), new Date());
  }
  return { results, logger, service };
}

function expectResult(result: RevocationCheck | undefined, expected: Expect) {
  assert.ok(result);
  if (expected.ok) {
    assert.equal(result.ok, true, JSON.stringify(result));
    const soft = result.ok ? result.softFailures : [];
    if (expected.soft) assert.match(soft.join("\n"), expected.soft);
    else assert.deepEqual(soft, []);
  } else {
    assert.equal(result.ok, false, JSON.stringify(result));
    assert.equal(!result.ok && result.reason, expected.reason);
    assert.match(!result.ok ? result.detail : "", expected.detail);
  }
}

const cases: {
  name: string;
  route: (p: Awaited<ReturnType<typeof testPki>>) => Promise<Route>;
  revokeLeaf?: boolean;
  soft: Expect;
  strict: Expect;
  log?: RegExp;
}[] = [
  {
    name: "good",
    route: async (p) => ({ body: await crlPem(p.int) }),
    soft: { ok: true },
    strict: { ok: true },
  },
  {
    name: "revoked",
    route: async () => ({}),
    revokeLeaf: true,
    soft: {
      ok: false,
      reason: "certificate_revoked",
      detail: /"CN=revoked-leaf" was revoked at .* \(keyCompromise\), per CRL/,
    },
    strict: {
      ok: false,
      reason: "certificate_revoked",
      detail: /per CRL of "CN=revoked Device CA,O=revoked"/,
    },
  },
  {
    name: "stale",
    route: async (p) => ({
      body: await crlPem(p.int, {
        thisUpdate: new Date(Date.now() - 2 * DAY),
        nextUpdate: new Date(Date.now() - DAY),
      }),
    }),
    soft: { ok: true, soft: /the CRL of issuer .* is stale: its nextUpdate .* has passed/ },
    strict: { ok: false, reason: "revocation_unknown", detail: /is stale/ },
    log: /stale, its nextUpdate/,
  },
  {
    name: "wrongsigner",
    route: async (p) => ({
      body: await crlPem(p.int, {}, await mintCa("O=wrongsigner, CN=wrongsigner Device CA")),
    }),
    soft: { ok: true, soft: /no CRL of issuer "CN=wrongsigner Device CA,O=wrongsigner" is loaded/ },
    strict: { ok: false, reason: "revocation_unknown", detail: /no CRL of issuer/ },
    log: /its signature does not verify with the key of CA "CN=wrongsigner Device CA/,
  },
  {
    name: "slow",
    route: async (p) => ({ body: await crlPem(p.int), delayMs: 3_000 }),
    soft: { ok: true, soft: /no CRL of issuer/ },
    strict: { ok: false, reason: "revocation_unknown", detail: /no CRL of issuer/ },
    log: /no complete answer within 300 ms/,
  },
  {
    name: "missing",
    route: async () => ({ status: 404 }),
    soft: { ok: true, soft: /no CRL of issuer/ },
    strict: { ok: false, reason: "revocation_unknown", detail: /no CRL of issuer/ },
    log: /missing\.crl: HTTP 404/,
  },
  {
    name: "huge",
    route: async () => ({ body: Buffer.alloc(10_000) }),
    soft: { ok: true, soft: /no CRL of issuer/ },
    strict: { ok: false, reason: "revocation_unknown", detail: /no CRL of issuer/ },
    log: /exceeds the limit of 4096/,
  },
];

for (const c of cases) {
  test(`CRL Distribution Point, ${c.name}: soft and strict`, async () => {
    const { results, logger } = await runCase(c.name, c.route, c.revokeLeaf);
    expectResult(results.soft, c.soft);
    expectResult(results.strict, c.strict);
    if (c.log)
      assert.match(logger.lines.map((l) => `${l.msg} ${Object.values(l.obj).join(" ")}`).join("\n"), c.log);
  });
}

test("configured CRL URLs are fetched at start; chain scope checks the intermediate on the root's CRL", async () => {
  const root = await mintCa("O=Chain, CN=Chain Root CA");
  const int = await mintCa("O=Chain, CN=Chain Device CA", root, { pathLength: 0 });
  const leaf = await device("chain-leaf", int);
  server.set("/chain-int.crl", { body: await crlPem(int) });
  server.set("/chain-root.crl", { body: await crlPem(root, { revoked: [int] }) });
  const crl = {
    urls: [server.url("/chain-int.crl"), server.url("/chain-root.crl")],
    distributionPoints: false,
  };
  const make = (scope: "leaf" | "chain") =>
    compileTrustStore(scope, root.pem + int.pem, { revocation: settings({ mode: "strict", scope, crl }) });
  const stores = [make("leaf"), make("chain")];
  const service = await RevocationService.create(stores, { logger: recordingLogger() });
  services.push(service);
  const path = [int.cert, root.cert];
  const [leafStore, chainStore] = stores;
  assert.ok(leafStore && chainStore);
  assert.deepEqual(checkRevocation(leaf.cert, path, leafStore, service.view(), new Date()), {
    ok: true,
    softFailures: [],
  });
  const chain = checkRevocation(leaf.cert, path, chainStore, service.view(), new Date());
  assert.equal(!chain.ok && chain.reason, "certificate_revoked");
  assert.match(!chain.ok ? chain.detail : "", /"CN=Chain Device CA,O=Chain" was revoked/);
  assert.equal(server.hits("/chain-int.crl"), 1, "one fetch per URL, shared by both stores");
});

test("refresh timing: on the interval, ahead of nextUpdate, never in a tight loop", async () => {
  const pki = await testPki("Timing");
  const now = new Date();
  const inHours = (h: number) => new Date(now.getTime() + h * 3_600_000);
  const fresh = parseCrls(
    Buffer.from(await crlPem(pki.int, { thisUpdate: now, nextUpdate: inHours(1) })),
    "a",
  );
  const ahead = nextRefreshDelay(fresh, 10 * 3_600_000, now);
  assert.ok(Math.abs(ahead - (3_600_000 - 5 * 60_000)) < 1_000, `5 minutes before nextUpdate, got ${ahead}`);
  assert.equal(nextRefreshDelay(fresh, 600_000, now), 600_000, "the interval when sooner");
  const stale = parseCrls(
    Buffer.from(await crlPem(pki.int, { thisUpdate: inHours(-2), nextUpdate: inHours(-1) })),
    "s",
  );
  assert.equal(nextRefreshDelay(stale, 3_600_000, now), 60_000, "a stale CRL is retried every minute");
  assert.equal(nextRefreshDelay(undefined, 3_600_000, now), 60_000, "so is a failed fetch");
  assert.equal(nextRefreshDelay(fresh, 1_000, now), 1_000, "a configured interval below the floor is kept");
  assert.equal(nextRefreshDelay(stale, 3_600_000, now) >= MIN_INTERVAL_MS, true);
});
