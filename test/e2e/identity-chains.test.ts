// The identity engine's path validation end to end, through the real gateway process and real clients (curl
// over HTTP/1.1 and HTTP/2, Node's tls): expired, wrong purpose, missing and client-sent intermediates, name
// constraints, weak keys, notBefore grace, a chain of another route's trust store, and the handshake mode.
// One gateway serves every case: an application listener and a handshake listener, one route per trust store.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { seq, tagged } from "../../src/identity/testing/der-encode.ts";
import { type Minted, mintCa, mintDevice, nameConstraints } from "../../src/identity/testing/mint.ts";
import {
  deviceExtensions,
  mintRaw,
  rawCertificateDer,
  rawKeys,
  signerOf,
} from "../../src/identity/testing/mint-raw.ts";
import { x509 } from "../../src/identity/x509.ts";
import { type CurlResult, curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { type DenyBody, keepAliveClient, writeBundle, writeDevice } from "../helpers/identity-e2e.ts";
import { createTlsFixtures, HOST_A, pem, type TlsFixtures } from "../helpers/tls-fixtures.ts";
import { type TlsHttpResult, tlsHttp } from "../helpers/tls-http.ts";

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const FAILED = "TLS certificate failed verification";
const FORBIDDEN = "You cannot consume this service";
const DIAGNOSTICS = "/_portcullis/diagnostics";

function show(r: TlsHttpResult): string {
  return `secureConnected=${r.secureConnected} raw=${JSON.stringify(r.raw.toString("latin1").slice(0, 300))} error=${r.error?.message} timedOut=${r.timedOut}`;
}

function assertDenied(r: CurlResult, status: number, message: string, reason: string): void {
  assert.equal(r.status, status, `${r.status} ${r.body} ${r.stderr}`);
  assert.deepEqual(r.json<DenyBody>(), { message, reason });
}

describe("identity engine: certificate chains end to end", () => {
  const tmp = tempDir();
  let fx: TlsFixtures;
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  /** The device CA of store d-cas, for certificates minted by a test itself. */
  let deviceCaD: Minted;
  const port = (listener: string): number => {
    const p = gw.ports[listener];
    assert.ok(p, `listener ${listener} is bound`);
    return p;
  };
  const get = (device: string, path: string, http: "1.1" | "2" = "2") =>
    curl({ port: port("app"), dir: tmp.dir, device, path, http });
  const creds = (name: string) => ({ cert: pem(tmp.dir, `${name}.crt`), key: pem(tmp.dir, `${name}.key`) });

  before(async () => {
    fx = await createTlsFixtures(tmp.dir);
    const now = Date.now();
    // A second private PKI, root → device CA, whose intermediate no trust store holds.
    const rootC = await mintCa("O=Chains, CN=Chains Root C");
    const intC = await mintCa("O=Chains, CN=Chains Device CA", rootC, { pathLength: 0 });
    const deviceC = await mintDevice("device-c", intC);
    await writeDevice(tmp.dir, "c-leaf-only", deviceC);
    await writeDevice(tmp.dir, "c-with-int", deviceC, [intC]);
    // Certificates OpenSSL reads but the engine refuses to parse: malformed is a verdict (bad_certificate).
    const cValid = { notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 30 * DAY) };
    const san = (value: Uint8Array) => new x509.Extension("2.5.29.17", false, seq(tagged(2, false, value)));
    const malformed = {
      "c-duplicate-extension": {
        extensions: [...deviceExtensions("c-dup"), san(Buffer.from("dup.example"))],
      },
      "c-bad-san": {
        extensions: [...deviceExtensions("c-bad-san").slice(0, 2), san(Buffer.from([0x61, 0xff, 0x62]))],
      },
      "c-algorithm-mismatch": { extensions: deviceExtensions("c-mismatch"), outerSignature: "ecdsaSha384" },
    } as const;
    for (const [name, extra] of Object.entries(malformed)) {
      // Written as raw DER: the engine's own parser (which mintRaw runs) refuses these.
      const keys = rawKeys();
      const der = rawCertificateDer(
        { subject: `CN=${name}`, issuer: signerOf(intC), ...cValid, ...extra },
        keys,
      );
      const leafPem = `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE-----\n`;
      writeFileSync(join(tmp.dir, `${name}.crt`), leafPem + intC.pem);
      writeFileSync(
        join(tmp.dir, `${name}.key`),
        String(keys.privateKey.export({ type: "pkcs8", format: "pem" })),
      );
    }
    // A third PKI whose store holds root and intermediates (so that these cases do not depend on the client's
    // intermediates reaching the engine): a device CA, and an intermediate constrained to the fleet's DNS
    // names (fleet.example and every name below it).
    const rootD = await mintCa("O=Chains, CN=Chains Root D");
    const intD = await mintCa("O=Chains, CN=Chains Device CA D", rootD, { pathLength: 0 });
    deviceCaD = intD;
    const fleetCa = await mintCa("O=Chains, CN=Fleet CA", rootD, {
      extensions: [nameConstraints({ permitted: [{ dns: "fleet.example" }] })],
    });
    writeBundle(tmp.dir, "d-cas.pem", [rootD, intD, fleetCa]);
    await writeDevice(
      tmp.dir,
      "nc-inside",
      await mintDevice("nc-inside", fleetCa, { sanDns: ["gw-1.fleet.example"] }),
      [fleetCa],
    );
    await writeDevice(
      tmp.dir,
      "nc-outside",
      await mintDevice("nc-outside", fleetCa, { sanDns: ["other.example"] }),
      [fleetCa],
    );
    // RSA keys of 1024 and 2048 bits under the device CA (signed with its ECDSA key).
    for (const bits of [1024, 2048]) {
      const leaf = mintRaw({
        subject: `CN=rsa-${bits}`,
        issuer: signerOf(intD),
        keys: rawKeys({ type: "rsa", bits }),
        notBefore: new Date(now - DAY),
        notAfter: new Date(now + 30 * DAY),
        extensions: deviceExtensions(`rsa-${bits}`),
      });
      await writeDevice(tmp.dir, `rsa-${bits}`, leaf, [intD]);
    }
    // Factory-fresh devices whose notBefore is 2 minutes ahead, under two roots: one store without grace,
    // one with notBeforeGrace 5m (distinct roots, so that neither store can vouch for the other's device).
    const early = { notBefore: new Date(now + 2 * MINUTE), notAfter: new Date(now + 30 * DAY) };
    const rootE1 = await mintCa("O=Chains, CN=Early Root 1");
    const rootE2 = await mintCa("O=Chains, CN=Early Root 2");
    await writeDevice(tmp.dir, "early-1", await mintDevice("early-1", rootE1, early));
    await writeDevice(tmp.dir, "early-2", await mintDevice("early-2", rootE2, early));
    // The demo device sending its leaf alone (its trust store holds the intermediate).
    const deviceLeaf = pem(tmp.dir, "device.crt").split(/(?<=-----END CERTIFICATE-----\n)/)[0] ?? "";
    assert.match(deviceLeaf, /^-----BEGIN CERTIFICATE-----\n[^-]+-----END CERTIFICATE-----\n$/);
    writeFileSync(join(tmp.dir, "device-leaf-only.crt"), deviceLeaf);
    writeFileSync(join(tmp.dir, "device-leaf-only.key"), readFileSync(join(tmp.dir, "device.key")));

    echo = await startEchoUpstream();
    const server = { cert: "server.crt", key: "server.key" };
    const route = (name: string, store: string) => ({
      name,
      hosts: [HOST_A],
      paths: [`/${name}`],
      service: "echo",
      auth: { trustStores: [store] },
    });
    const config: ConfigInput = {
      listeners: [
        {
          name: "app",
          port: 0,
          clientAuth: "application",
          certificates: [server],
          diagnostics: { path: DIAGNOSTICS },
        },
        { name: "hs", port: 0, clientAuth: "handshake", certificates: [server], trustStores: ["demo"] },
      ],
      trustStores: [
        { name: "demo", ca: "ca-chain.crt" },
        { name: "tenant-b", ca: fx.caB },
        { name: "c-root", ca: writeBundle(tmp.dir, "c-root.pem", [rootC]) },
        { name: "d-cas", ca: "d-cas.pem" },
        { name: "early", ca: writeBundle(tmp.dir, "early-1-root.pem", [rootE1]) },
        {
          name: "early-grace",
          ca: writeBundle(tmp.dir, "early-2-root.pem", [rootE2]),
          notBeforeGrace: "5m",
        },
        // The same root without grace: a route on it judges early-2 itself (never "another route's CA").
        { name: "early-2-strict", ca: "early-2-root.pem" },
      ],
      services: [{ name: "echo", targets: [echo.url] }],
      routes: [
        route("demo", "demo"),
        route("b", "tenant-b"),
        route("c", "c-root"),
        route("d", "d-cas"),
        route("early", "early"),
        route("early-grace", "early-grace"),
        route("early-2-strict", "early-2-strict"),
      ],
    };
    gw = await startGateway(tmp.dir, config);
  });

  after(async () => {
    const code = await gw?.stop();
    await echo?.close();
    tmp.cleanup();
    assert.equal(code, 0, "the gateway stops gracefully");
  });

  test("a valid demo device is let through (the control for every case below)", async () => {
    for (const http of ["1.1", "2"] as const) {
      const r = await get("device", "/demo/echo", http);
      assert.equal(r.status, 200, r.body);
      assert.equal(r.httpVersion, http === "2" ? "2" : "1.1");
      assert.equal(r.json<{ headers: Record<string, string> }>().headers["x-device-id"], "device-001");
    }
  });

  test("expired leaf: 401 certificate_expired over HTTP/1.1 and HTTP/2", async () => {
    for (const http of ["1.1", "2"] as const) {
      const r = await get("expired-device", "/demo/echo", http);
      assert.equal(r.httpVersion, http === "2" ? "2" : "1.1", r.stderr);
      assertDenied(r, 401, FAILED, "certificate_expired");
    }
  });

  test("a device certificate whose EKU is serverAuth only: 401 wrong_purpose", async () => {
    assertDenied(await get("serverauth-device", "/demo/echo"), 401, FAILED, "wrong_purpose");
  });

  test("missing intermediate: the leaf alone, the store holding only the root: 401 untrusted_issuer", async () => {
    assertDenied(await get("c-leaf-only", "/c/echo"), 401, FAILED, "untrusted_issuer");
  });

  test("client-sent intermediate: leaf + intermediate, the store holding only the root: 200", async () => {
    // What the gateway saw on that connection (diagnostics endpoint): the leaf and the intermediate sent.
    const seen = await get("c-with-int", DIAGNOSTICS);
    const chain = seen.json<{ certificate: { chain: { subject: string }[] } }>().certificate.chain;
    // The leaf and the intermediate the client sent (OpenSSL may complete the chain with the store's root).
    assert.deepEqual(
      chain.slice(0, 2).map((c) => c.subject),
      ["CN=device-c", "CN=Chains Device CA,O=Chains"],
      "the gateway reads the whole chain the client sent",
    );
    const r = await get("c-with-int", "/c/echo");
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json<{ headers: Record<string, string> }>().headers["x-device-id"], "device-c");
  });

  test("malformed is a verdict: a duplicate extension, a bad SAN encoding, mismatched signature algorithms: 401 bad_certificate", async () => {
    for (const name of ["c-duplicate-extension", "c-bad-san", "c-algorithm-mismatch"]) {
      const r = await tlsHttp({ port: port("app"), servername: HOST_A, path: "/c/echo", ...creds(name) });
      assert.equal(r.http?.status, 401, `${name}: ${show(r)}`);
      assert.deepEqual(
        JSON.parse(r.http?.body ?? "{}"),
        { message: FAILED, reason: "bad_certificate" },
        name,
      );
    }
  });

  test("the store holds the intermediate, the client sends only its leaf: 200", async () => {
    const r = await get("device-leaf-only", "/demo/echo");
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json<{ headers: Record<string, string> }>().headers["x-device-id"], "device-001");
  });

  test("a leaf outside its intermediate's name constraints: 401 name_constraints_violation", async () => {
    const inside = await get("nc-inside", "/d/echo");
    assert.equal(inside.status, 200, `a name inside the constraint passes: ${inside.body}`);
    assertDenied(await get("nc-outside", "/d/echo"), 401, FAILED, "name_constraints_violation");
  });

  test("an RSA 1024 leaf: 401 weak_algorithm (RSA 2048 under the same CA: 200)", async () => {
    // Node's tls client at security level 0, so that it agrees to present a 1024-bit key at all.
    const ciphers = "DEFAULT:@SECLEVEL=0";
    const ok = await tlsHttp({
      port: port("app"),
      servername: HOST_A,
      path: "/d/echo",
      ciphers,
      ...creds("rsa-2048"),
    });
    assert.equal(ok.http?.status, 200, show(ok));
    const weak = await tlsHttp({
      port: port("app"),
      servername: HOST_A,
      path: "/d/echo",
      ciphers,
      ...creds("rsa-1024"),
    });
    assert.equal(weak.http?.status, 401, show(weak));
    assert.deepEqual(JSON.parse(weak.http?.body ?? "{}"), { message: FAILED, reason: "weak_algorithm" });
  });

  test("notBefore 2 minutes ahead: 401 certificate_not_yet_valid without grace, 200 with notBeforeGrace 5m", async () => {
    assertDenied(await get("early-1", "/early/echo"), 401, FAILED, "certificate_not_yet_valid");
    const r = await get("early-2", "/early-grace/echo");
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json<{ headers: Record<string, string> }>().headers["x-device-id"], "early-2");
  });

  test("one CA in two stores, with and without grace: the route without grace answers 401 certificate_not_yet_valid, not 403", async () => {
    assertDenied(await get("early-2", "/early-2-strict/echo"), 401, FAILED, "certificate_not_yet_valid");
  });

  test("a certificate that expires while its keep-alive connection is open: the next request on it gets 401 certificate_expired", async () => {
    // Valid for a few seconds from now (whole seconds, as X.509 has them): the wait is the feature.
    const notAfter = new Date((Math.floor(Date.now() / 1000) + 4) * 1000);
    const leaf = await mintDevice("short-lived", deviceCaD, {
      notBefore: new Date(Date.now() - MINUTE),
      notAfter,
    });
    await writeDevice(tmp.dir, "short-lived", leaf, [deviceCaD]);
    const client = keepAliveClient({
      port: port("app"),
      host: HOST_A,
      ca: pem(tmp.dir, "ca-chain.crt"),
      certPem: pem(tmp.dir, "short-lived.crt"),
      keyPem: pem(tmp.dir, "short-lived.key"),
    });
    try {
      const first = await client.get("/d/echo");
      assert.equal(first.status, 200, `served while valid: ${JSON.stringify(first.body)}`);
      // Past notAfter on the server's whole-second clock.
      await new Promise((resolve) => setTimeout(resolve, notAfter.getTime() + 1_100 - Date.now()));
      const last = await client.get("/d/echo");
      assert.equal(last.status, 401, JSON.stringify(last.body));
      assert.deepEqual(last.body, { message: FAILED, reason: "certificate_expired" });
      assert.equal(client.connects(), 1, "both requests went over the same connection");
    } finally {
      await client.close();
    }
  });

  test("a route accepting only trust store B, a valid store-A device: 403 ca_not_allowed_for_route", async () => {
    assertDenied(await get("device", "/b/echo"), 403, FORBIDDEN, "ca_not_allowed_for_route");
    const b = await curl({ port: port("app"), dir: tmp.dir, device: "device-b", path: "/b/echo" });
    assert.equal(b.status, 200, `store B's own device passes: ${b.body}`);
  });

  test("handshake mode: the expired leaf fails the handshake (no HTTP byte), the valid one passes", async () => {
    const expired = await tlsHttp({
      port: port("hs"),
      servername: HOST_A,
      path: "/demo/echo",
      ...creds("expired-device"),
    });
    assert.equal(expired.http, undefined, show(expired));
    assert.equal(expired.raw.length, 0, show(expired));
    assert.equal(expired.timedOut, false, show(expired));
    const good = await tlsHttp({
      port: port("hs"),
      servername: HOST_A,
      path: "/demo/echo",
      ...creds("device"),
    });
    assert.equal(good.http?.status, 200, show(good));
    const c = await curl({ port: port("hs"), dir: tmp.dir, device: "expired-device", path: "/demo/echo" });
    assert.notEqual(c.exitCode, 0, "curl gets no HTTP answer");
    assert.equal(c.status, 0, c.body);
  });
});
