// GET /metrics after a scripted mix of traffic on one gateway, with exact counts: N allowed requests on
// /echo, M 401s of a certificate from an untrusted CA, K 403s of a suspended device, a rate-limited route
// (LIMIT allowed, then L 429s) and one request no route matches (404: no auth decision, no duration
// sample). Every portcullis_decisions_total series, every request-duration count and the rate-limit
// counters are held to what was sent.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { AdminApi, HOST, type RegistryPki, registryConfig, registryPki } from "../helpers/registry.ts";

const N = 4; // allowed on /echo
const M = 3; // 401: a certificate from a CA no trust store holds
const K = 2; // 403: a suspended device
const LIMIT = 2; // the rate-limited route's limit per device and window
const L = 3; // 429s past it

/** Every sample of one metric: `{labels} value` keyed by its sorted label set (the worker label aside). */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf("}");
    const labels = [...line.slice(name.length + 1, close).matchAll(/(\w+)="([^"]*)"/g)]
      .map(([, k, v]) => `${k}=${v}`)
      .sort()
      .join(",");
    out.set(labels, Number(line.slice(close + 1).trim()));
  }
  return out;
}

/** The expected samples, in the same key form. */
function expected(entries: [Record<string, string>, number][]): Map<string, number> {
  return new Map(
    entries.map(([labels, value]) => [
      Object.entries(labels)
        .map(([k, v]) => `${k}=${v}`)
        .sort()
        .join(","),
      value,
    ]),
  );
}

describe("metrics after a scripted mix of traffic", () => {
  const tmp = tempDir("portcullis-metrics-mix-");
  let pki: RegistryPki;
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let metrics = "";
  const statuses: Record<string, number[]> = {};

  before(async () => {
    pki = await registryPki(tmp.dir);
    const suspended = await pki.issue("dev-suspended");
    echo = await startEchoUpstream();
    gw = await startGateway(
      tmp.dir,
      registryConfig({
        upstream: echo.url,
        storeUrl: "sqlite:data/registry.db",
        routes: [
          {
            name: "limited",
            hosts: [HOST],
            paths: ["/limited"],
            service: "echo",
            auth: { trustStores: ["devices"], registry: "required" },
            plugins: [{ name: "rate-limit", config: { limit: LIMIT, window: "1m" } }],
          },
        ],
      }),
    );
    const admin = new AdminApi(gw.adminPort, pki.token);
    await admin.register("dev-a", pki.existing("device"));
    await admin.register("dev-suspended", suspended, { status: "suspended" });
    const port = gw.ports.main ?? 0;
    const send = async (what: string, device: string, path: string, times: number) => {
      for (let i = 0; i < times; i++) {
        const r = await curl({ port, dir: tmp.dir, device, path, http: "1.1" });
        statuses[what] = [...(statuses[what] ?? []), r.status];
      }
    };
    await send("allowed", "device", "/echo", N);
    await send("untrusted", "wrong-device", "/echo", M);
    await send("suspended", "dev-suspended", "/echo", K);
    await send("limited", "device", "/limited", LIMIT + L);
    await send("no-route", "device", "/nowhere", 1);
    metrics = (await admin.call("GET", "/metrics")).text;
  });
  after(async () => {
    await gw?.stop();
    await echo?.close();
    tmp.cleanup();
  });

  test("the mix got the answers it was scripted for", () => {
    assert.deepEqual(statuses, {
      allowed: Array(N).fill(200),
      untrusted: Array(M).fill(401),
      suspended: Array(K).fill(403),
      limited: [...Array(LIMIT).fill(200), ...Array(L).fill(429)],
      "no-route": [404],
    });
  });

  test("portcullis_decisions_total: exactly one series per outcome, with exact counts", () => {
    const http = { enforced: "true", protocol: "http" };
    assert.deepEqual(
      samples(metrics, "portcullis_decisions_total"),
      expected([
        [{ result: "allow", reason: "none", route: "echo", ...http }, N],
        [{ result: "deny", reason: "untrusted_issuer", route: "echo", ...http }, M],
        [{ result: "deny", reason: "device_suspended", route: "echo", ...http }, K],
        // The rate limit runs after the auth decision: every request on the route was allowed by it.
        [{ result: "allow", reason: "none", route: "limited", ...http }, LIMIT + L],
      ]),
    );
  });

  test("portcullis_request_duration_seconds_count by route and status", () => {
    assert.deepEqual(
      samples(metrics, "portcullis_request_duration_seconds_count"),
      expected([
        [{ route: "echo", status: "200" }, N],
        [{ route: "echo", status: "401" }, M],
        [{ route: "echo", status: "403" }, K],
        [{ route: "limited", status: "200" }, LIMIT],
        [{ route: "limited", status: "429" }, L],
        // The 404 matched no route: it is in neither histogram nor decisions (docs/operations.md).
      ]),
    );
  });

  test("portcullis_rate_limit_total: allowed and limited on the route's scope", () => {
    assert.deepEqual(
      samples(metrics, "portcullis_rate_limit_total"),
      expected([
        [{ scope: "route:limited", result: "allowed" }, LIMIT],
        [{ scope: "route:limited", result: "limited" }, L],
      ]),
    );
  });

  test("the registry lookups: every registry route request that passed the engine", () => {
    const lookups = samples(metrics, "portcullis_registry_lookups_total");
    // N + K + LIMIT + L requests reached the registry (the untrusted ones stopped at the engine), each a
    // hit (cached or not): none missed, none failed.
    const total = [...lookups.values()].reduce((a, b) => a + b, 0);
    assert.equal(total, N + K + LIMIT + L);
    assert.equal(lookups.get("result=hit"), N + K + LIMIT + L);
  });

  test("the fleet's certificate expiry counts the one device admitted, not the refused ones", () => {
    const count = metrics
      .split("\n")
      .find((l) => l.startsWith("portcullis_fleet_certificate_days_left_count "));
    assert.equal(count, "portcullis_fleet_certificate_days_left_count 1");
  });
});
