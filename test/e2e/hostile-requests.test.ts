// Requests written to be read differently by the upstream than by the gateway (issue 8, items 5–7), through
// `portcullis start` and the echo upstream, over HTTP/1.1 and HTTP/2:
// * paths with `;` parameters on dot segments (`..;`, `..%3b`) or double-encoded dots and slashes (`%252e`)
//   get 400 — unless the route opts in (`allowAmbiguousPaths`), which still cannot lead onto another route;
// * identity-like, path/method override and forwarding headers under other proxies' names never reach the
//   upstream, nor does one that the config's stripHeaders adds;
// * x-forwarded-for is the peer's address alone (extended only from a trusted proxy), x-forwarded-port the
//   port the connection arrived on, Via the gateway's own.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { type CurlOptions, type CurlResult, curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";

interface Echoed {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

const HTTP_VERSIONS = ["1.1", "2"] as const;
const HOST = "mtls.auth.local.com";

describe("hostile requests (portcullis start)", () => {
  const tmp = tempDir();
  let gw: GatewayProcess;
  let upstream: EchoUpstream;
  /** The listener without trusted proxies, and the one that trusts 127.0.0.1. */
  let direct = 0;
  let behindProxy = 0;
  const request = (port: number, options: Omit<CurlOptions, "port" | "dir">): Promise<CurlResult> =>
    curl({ port, dir: tmp.dir, ...options });

  before(async () => {
    await ensureDemoPki(tmp.dir);
    upstream = await startEchoUpstream();
    const listener = {
      port: 0,
      clientAuth: "application" as const,
      certificates: [{ cert: "server.crt", key: "server.key" }],
      trustStores: ["devices"],
    };
    const config: ConfigInput = {
      listeners: [
        { name: "direct", ...listener },
        { name: "behind-proxy", ...listener, trustedProxies: ["127.0.0.1/32", "::1"] },
      ],
      trustStores: [{ name: "devices", ca: "ca-chain.crt" }],
      services: [{ name: "echo", targets: [upstream.url] }],
      stripHeaders: ["x-tenant-override", "X_Internal-*"],
      routes: [
        { name: "echo", paths: ["/echo"], service: "echo", auth: { trustStores: ["devices"] } },
        { name: "public-echo", paths: ["/public/echo"], service: "echo", public: true },
        { name: "legacy", paths: ["/legacy"], service: "echo", public: true, allowAmbiguousPaths: true },
      ],
    };
    gw = await startGateway(tmp.dir, config);
    direct = gw.ports.direct ?? 0;
    behindProxy = gw.ports["behind-proxy"] ?? 0;
    assert.ok(direct > 0 && behindProxy > 0, "both listeners reported their ports");
  });

  after(async () => {
    const code = await gw?.stop();
    await upstream?.close();
    tmp.cleanup();
    assert.equal(code, 0, "graceful stop exits 0");
  });

  // Item 5: paths that Tomcat/Jetty-style upstreams (`;` parameters) or double-decoding ones read otherwise.
  const AMBIGUOUS = [
    "/public/echo/..;/..;/echo",
    "/public/echo/..;x/..;jsessionid=1/echo",
    "/public/echo/.;/..;/..;/echo",
    "/public/echo/..%3b/..%3B/echo",
    "/public/echo/%2e%2e;/%2e%2e%3b/echo",
    "/public/echo/%252e%252e/%252e%252e/echo",
    "/public/echo/%252E%252E%252Fecho",
    "/public/echo/x%255c..%255c..%255cecho",
  ];

  test("`..;`, `..%3b` and `%252e%252e` paths get 400 with a detail, with or without a certificate", async () => {
    for (const http of HTTP_VERSIONS) {
      for (const path of AMBIGUOUS) {
        for (const device of [undefined, "device"]) {
          const r = await request(direct, { path, http, device, args: ["--path-as-is"] });
          const what = `HTTP/${http} ${path} ${device ?? "anonymous"}`;
          assert.equal(r.exitCode, 0, `${what}: ${r.stderr}`);
          assert.equal(r.status, 400, `${what}: ${r.body}`);
          assert.match(r.headers["content-type"] ?? "", /^application\/json/, what);
          const body = r.json<{ message: string; detail: string }>();
          assert.equal(body.message, "Bad request", what);
          assert.match(body.detail, /^ambiguous request path: /, what);
        }
      }
      // `;` parameters elsewhere are ordinary characters of a segment.
      const plain = await request(direct, { path: "/public/echo/a;v=1/b", http, args: ["--path-as-is"] });
      assert.equal(plain.status, 200, `HTTP/${http}: ${plain.body}`);
      assert.equal(plain.json<Echoed>().path, "/public/echo/a;v=1/b");
    }
  });

  test("a route with allowAmbiguousPaths forwards them as received, but never onto another route", async () => {
    for (const http of HTTP_VERSIONS) {
      for (const path of ["/legacy/a/..;/b", "/legacy/a/..%3bx/b", "/legacy/a/b/%252e%252e/c"]) {
        const r = await request(direct, { path, http, args: ["--path-as-is"] });
        assert.equal(r.status, 200, `HTTP/${http} ${path}: ${r.body}`);
        assert.equal(r.json<Echoed>().path, path, "forwarded exactly as routed");
      }
      for (const [path, reading] of [
        ["/legacy/..;/echo", "/echo"],
        ["/legacy/x/..%3b/..%3b/public/echo", "/public/echo"],
        ["/legacy/%252e%252e/echo", "/echo"],
        ["/legacy/..;/nowhere", "/nowhere"],
      ] as const) {
        const r = await request(direct, { path, http, device: "device", args: ["--path-as-is"] });
        assert.equal(r.status, 400, `HTTP/${http} ${path}: ${r.body}`);
        assert.equal(
          r.json<{ detail: string }>().detail,
          `ambiguous request path: an upstream could read it as ${reading}, which is not on the same route`,
        );
      }
    }
  });

  // Item 6: every header of the finding, more of their families, and one the config adds.
  const SPOOFED: readonly [string, string][] = [
    ["X-Original-URL", "/admin"],
    ["X-Rewrite-URL", "/admin"],
    ["X-HTTP-Method-Override", "DELETE"],
    ["X-Method-Override", "DELETE"],
    ["X-HTTP-Method", "DELETE"],
    ["X-Envoy-Original-Path", "/admin"],
    ["X-Forwarded-User", "admin"],
    ["X-Forwarded-Email", "admin@example.com"],
    ["X-Remote-User", "admin"],
    ["Remote-User", "admin"],
    ["X-SPIFFE-ID", "spiffe://evil/admin"],
    ["X-Client-Verify", "SUCCESS"],
    ["X-Client-DN", "CN=admin"],
    ["X-Client-S-DN", "CN=admin"],
    ["X-TLS-Client-Cert", "spoofed-pem"],
    ["X-mTLS-Client-Cert", "spoofed-pem"],
    ["Cf-Client-Cert-Sha256", "spoofed-hash"],
    ["Cf-Client-Cert-Der-Base64", "c3Bvb2Y="],
    ["X-Auth-Request-User", "admin"],
    ["X-MS-Client-Principal-Name", "admin"],
    ["X-Goog-Authenticated-User-Email", "accounts.google.com:admin@example.com"],
    ["X-Amzn-Oidc-Identity", "admin"],
    ["X-JWT-Payload", "eyJzdWIiOiJhZG1pbiJ9"],
    ["X-Userinfo", "eyJzdWIiOiJhZG1pbiJ9"],
    ["X_Original_URL", "/admin-underscore"],
    ["X-Tenant-Override", "tenant-0"],
    ["X-Internal-Role", "root"],
    ["x_internal_debug", "on"],
  ];
  const spoofArgs = [
    ...SPOOFED.flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
    "-H",
    "X-Client-Version: 1.2.3",
  ];

  test("identity-like, override and configured headers never reach the upstream", async () => {
    for (const http of HTTP_VERSIONS) {
      for (const [path, device] of [
        ["/echo", "device"],
        ["/public/echo", undefined],
      ] as const) {
        const r = await request(direct, { path, http, device, args: spoofArgs });
        assert.equal(r.status, 200, `HTTP/${http} ${path}: ${r.body}`);
        const { headers, method } = r.json<Echoed>();
        assert.equal(method, "GET", "the method override did not apply");
        assert.equal(headers["x-client-version"], "1.2.3", `HTTP/${http}: an ordinary header still arrives`);
        for (const [name, value] of SPOOFED) {
          const canonical = name.toLowerCase();
          assert.equal(headers[canonical], undefined, `HTTP/${http} ${path}: ${name} reached the upstream`);
          const carrying = Object.entries(headers).filter(([, v]) => String(v) === value);
          assert.deepEqual(carrying, [], `HTTP/${http} ${path}: the value of ${name} reached the upstream`);
        }
      }
    }
  });

  // Item 7: forwarding headers are the gateway's own, from the connection.
  const forwardingArgs = (port: number) => [
    "-H",
    `Host: ${HOST}:${port + 1}`,
    "-H",
    "X-Forwarded-For: 6.6.6.6",
    "-H",
    "X-Forwarded-Port: 1",
    "-H",
    "X-Forwarded-Host: evil.example",
    "-H",
    "X-Forwarded-Proto: http",
    "-H",
    "Forwarded: for=6.6.6.6;proto=http",
    "-H",
    "Via: 1.1 edge",
    "-H",
    "X-Real-IP: 6.6.6.6",
  ];

  test("x-forwarded-for is the peer only; x-forwarded-port the listener's even when Host says otherwise", async () => {
    for (const http of HTTP_VERSIONS) {
      const r = await request(direct, { device: "device", http, args: forwardingArgs(direct) });
      assert.equal(r.status, 200, `HTTP/${http}: ${r.body}`);
      const { headers } = r.json<Echoed>();
      assert.equal(headers["x-forwarded-for"], "127.0.0.1", `HTTP/${http}`);
      assert.equal(headers["x-forwarded-port"], String(direct), `HTTP/${http}`);
      assert.equal(headers["x-forwarded-host"], `${HOST}:${direct}`, `HTTP/${http}`);
      assert.equal(headers["x-forwarded-proto"], "https", `HTTP/${http}`);
      assert.equal(headers.via, http === "2" ? "2 portcullis" : "1.1 portcullis", `HTTP/${http}`);
      assert.equal(headers.forwarded, undefined, `HTTP/${http}`);
      assert.equal(headers["x-real-ip"], undefined, `HTTP/${http}`);
    }
  });

  test("from a trusted proxy, X-Forwarded-For and Via are extended; port and host are still the connection's", async () => {
    for (const http of HTTP_VERSIONS) {
      const r = await request(behindProxy, { device: "device", http, args: forwardingArgs(behindProxy) });
      assert.equal(r.status, 200, `HTTP/${http}: ${r.body}`);
      const { headers } = r.json<Echoed>();
      assert.equal(headers["x-forwarded-for"], "6.6.6.6, 127.0.0.1", `HTTP/${http}`);
      assert.equal(headers.via, `1.1 edge, ${http === "2" ? "2" : "1.1"} portcullis`, `HTTP/${http}`);
      assert.equal(headers["x-forwarded-port"], String(behindProxy), `HTTP/${http}`);
      assert.equal(headers["x-forwarded-host"], `${HOST}:${behindProxy}`, `HTTP/${http}`);
      assert.equal(headers["x-forwarded-proto"], "https", `HTTP/${http}`);
      assert.equal(headers.forwarded, undefined, `HTTP/${http}`);
      assert.equal(headers["x-real-ip"], undefined, `HTTP/${http}`);
    }
  });
});
