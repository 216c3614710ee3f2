// Routing and the SNI/Host binding against the real demo (application mode): 421 for a Host that differs from
// the SNI (domain fronting, on HTTP/1.1 and HTTP/2), name normalisation, the no-SNI rule, path normalisation
// that cannot smuggle a request onto the public route, spoofed identity headers stripped, and the headers
// the gateway adds for the upstream and the client.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type CurlOptions, type CurlResult, curl, sClient } from "../helpers/clients.ts";
import { type GatewayProcess, startDemo, tempDir } from "../helpers/gateway-process.ts";

interface Echoed {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

const MISDIRECTED = { message: "Misdirected Request", reason: "sni_host_mismatch" };
const NO_CERTIFICATE = { message: "No required TLS certificate was sent", reason: "no_certificate" };
const HTTP_VERSIONS = ["1.1", "2"] as const;

describe("routing and SNI/Host binding (demo, application mode)", () => {
  const tmp = tempDir();
  let gw: GatewayProcess;
  let port = 0;
  const request = (options: Omit<CurlOptions, "port" | "dir">): Promise<CurlResult> =>
    curl({ port, dir: tmp.dir, ...options });

  before(async () => {
    gw = await startDemo(tmp.dir, ["--mode", "application"]);
    port = gw.ports.demo ?? 0;
    assert.notEqual(port, 0, "the demo reported its port");
  });
  after(async () => {
    assert.equal(await gw.stop(), 0, "graceful stop exits 0");
    tmp.cleanup();
  });

  test("SNI ≠ Host over HTTP/1.1 gets 421 sni_host_mismatch", async () => {
    const r = await request({ device: "device", http: "1.1", args: ["-H", "Host: localhost"] });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.httpVersion, "1.1");
    assert.equal(r.status, 421, r.body);
    assert.deepEqual(r.json(), MISDIRECTED);
    assert.match(r.headers["content-type"] ?? "", /^application\/json/);
  });

  test("SNI ≠ :authority over HTTP/2 gets 421 sni_host_mismatch", async () => {
    const r = await request({ device: "device", http: "2", args: ["-H", `Host: localhost:${port}`] });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.httpVersion, "2");
    assert.equal(r.status, 421, r.body);
    assert.deepEqual(r.json(), MISDIRECTED);
  });

  test("a Host that differs only in case, trailing dot and port is the same name as the SNI: 200", async () => {
    for (const http of HTTP_VERSIONS) {
      const r = await request({ device: "device", http, args: ["-H", `Host: MTLS.Auth.Local.Com.:${port}`] });
      assert.equal(r.status, 200, `HTTP/${http}: ${r.body}`);
      assert.equal(r.json<Echoed>().path, "/echo");
    }
  });

  test("without SNI, a request for the IP literal is served: 200", async () => {
    for (const http of HTTP_VERSIONS) {
      const r = await request({ host: "127.0.0.1", device: "device", http });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.status, 200, `HTTP/${http}: ${r.body}`);
      assert.equal(r.json<Echoed>().headers["x-device-id"], "device-001");
    }
  });

  test("without SNI, a request naming a host name gets 421: only IP-literal hosts are served", async () => {
    for (const http of HTTP_VERSIONS) {
      const r = await request({
        host: "127.0.0.1",
        device: "device",
        http,
        args: ["-H", "Host: mtls.auth.local.com"],
      });
      assert.equal(r.status, 421, `HTTP/${http}: ${r.body}`);
      assert.deepEqual(r.json(), MISDIRECTED);
    }
  });

  test("domain fronting onto a public route gets 421 as well", async () => {
    for (const http of HTTP_VERSIONS) {
      const r = await request({ path: "/public/echo", http, args: ["-H", `Host: localhost:${port}`] });
      assert.equal(r.status, 421, `HTTP/${http}: ${r.body}`);
      assert.deepEqual(r.json(), MISDIRECTED);
    }
  });

  test("an unknown path gets 404 JSON, with or without a certificate", async () => {
    for (const device of ["device", undefined]) {
      const r = await request({ device, path: "/no/such/route" });
      assert.equal(r.status, 404, r.body);
      assert.match(r.headers["content-type"] ?? "", /^application\/json/);
      const body = r.json<{ message?: unknown; reason?: unknown }>();
      assert.equal(typeof body.message, "string");
      assert.ok(String(body.message).length > 0);
    }
  });

  test("a path prefix matches only at a segment boundary: /echoes is not /echo", async () => {
    const r = await request({ device: "device", path: "/echoes" });
    assert.equal(r.status, 404, r.body);
  });

  for (const raw of ["/public/../echo", "/public/echo/%2e%2e/%2e%2e/echo", "/public/%2E%2E/echo"]) {
    test(`dot segments cannot reach the private route through the public one: ${raw}`, async () => {
      for (const http of HTTP_VERSIONS) {
        const anonymous = await request({ path: raw, http, args: ["--path-as-is"] });
        assert.equal(anonymous.status, 401, `HTTP/${http} without a certificate: ${anonymous.body}`);
        assert.deepEqual(anonymous.json(), NO_CERTIFICATE);
        const device = await request({ path: raw, http, device: "device", args: ["--path-as-is"] });
        assert.equal(device.status, 200, `HTTP/${http} with the device: ${device.body}`);
        assert.equal(device.json<Echoed>().path, "/echo", "the upstream gets the normalised path");
      }
    });
  }

  test("two Host headers (HTTP/1.1) get 400, in either order: no hop may read another host", async () => {
    for (const hosts of [
      ["mtls.auth.local.com", "localhost"],
      ["localhost", "mtls.auth.local.com"],
    ]) {
      const raw = `GET /echo HTTP/1.1\r\n${hosts.map((h) => `Host: ${h}\r\n`).join("")}Connection: close\r\n\r\n`;
      const { output } = await sClient(
        [
          "-quiet",
          "-connect",
          `127.0.0.1:${gw.ports.demo}`,
          "-servername",
          "mtls.auth.local.com",
          "-CAfile",
          join(tmp.dir, "ca-chain.crt"),
          "-cert",
          join(tmp.dir, "device.crt"),
          "-key",
          join(tmp.dir, "device.key"),
        ],
        raw,
      );
      assert.match(output, /^HTTP\/1\.1 400 /m, `${hosts.join(", ")}: ${output}`);
    }
  });

  test("an encoded slash in the path gets 400", async () => {
    for (const http of HTTP_VERSIONS) {
      for (const path of ["/public%2fecho", "/public%2Fecho"]) {
        const r = await request({ path, http, device: "device", args: ["--path-as-is"] });
        assert.equal(r.status, 400, `HTTP/${http} ${path}: ${r.body}`);
        assert.match(r.headers["content-type"] ?? "", /^application\/json/);
      }
    }
  });

  const SPOOFED: readonly [string, string][] = [
    ["X-Forwarded-Client-Cert", "Hash=spoof"],
    ["x_forwarded_client_cert", "spoof-underscore"],
    ["X-Device-Id", "spoofed"],
    ["X-Device-Groups", "spoofed-admins"],
    ["X-Consumer-Username", "spoofed"],
    ["X-Consumer-Id", "spoofed"],
    ["Client-Cert", ":c3Bvb2Y=:"],
    ["Client-Cert-Chain", ":c3Bvb2Y=:"],
    ["X-SSL-Client-Verify", "SUCCESS"],
    ["X_SSL_Client_DN", "CN=spoofed"],
    ["X-Forwarded-Tls-Client-Cert", "spoof-traefik"],
  ];
  // A harmless header spelled with underscores proves the spoofed ones were really sent and underscores survive.
  const spoofArgs = [
    ...SPOOFED.flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
    "-H",
    "X_Control_Header: ctl",
  ];
  const SPOOFED_VALUES = SPOOFED.map(([, value]) => value);

  /** Every header the upstream saw whose value holds one of the spoofed values. */
  function spoofedSeen(headers: Echoed["headers"]): string[] {
    return Object.entries(headers)
      .filter(([, value]) => {
        const text = Array.isArray(value) ? value.join("\n") : String(value);
        return SPOOFED_VALUES.some((spoof) => text.includes(spoof));
      })
      .map(([name, value]) => `${name}: ${String(value)}`);
  }

  test("spoofed identity headers are stripped and the gateway's own are set", async () => {
    for (const http of HTTP_VERSIONS) {
      const r = await request({ device: "device", http, args: spoofArgs });
      assert.equal(r.status, 200, `HTTP/${http}: ${r.body}`);
      const { headers } = r.json<Echoed>();
      assert.equal(
        headers.x_control_header,
        "ctl",
        `HTTP/${http}: the control header must reach the upstream`,
      );
      assert.deepEqual(spoofedSeen(headers), [], `HTTP/${http}: spoofed values reached the upstream`);
      for (const name of ["x_forwarded_client_cert", "x_ssl_client_dn", "client-cert", "client-cert-chain"]) {
        assert.equal(headers[name], undefined, `HTTP/${http}: ${name} reached the upstream`);
      }
      assert.equal(headers["x-ssl-client-verify"], undefined);
      assert.equal(headers["x-forwarded-tls-client-cert"], undefined);
      assert.equal(headers["x-device-groups"], "demo", "the gateway sets the registry groups itself");
      assert.match(
        String(headers["x-forwarded-client-cert"]),
        /^Hash=[0-9a-f]{64};Subject="CN=device-001";URI=urn:device:device-001$/,
      );
      assert.equal(headers["x-device-id"], "device-001");
      assert.equal(headers["x-consumer-username"], "device-001");
      assert.equal(headers["x-consumer-id"], "device-001");
    }
  });

  test("on the public route without a certificate, spoofed identity headers are removed and none is added", async () => {
    for (const http of HTTP_VERSIONS) {
      const r = await request({ path: "/public/echo", http, args: spoofArgs });
      assert.equal(r.status, 200, `HTTP/${http}: ${r.body}`);
      const { headers } = r.json<Echoed>();
      assert.equal(
        headers.x_control_header,
        "ctl",
        `HTTP/${http}: the control header must reach the upstream`,
      );
      assert.deepEqual(spoofedSeen(headers), [], `HTTP/${http}: spoofed values reached the upstream`);
      for (const name of [
        "x-forwarded-client-cert",
        "x_forwarded_client_cert",
        "x-device-id",
        "x-consumer-id",
        "x-consumer-username",
        "client-cert",
      ]) {
        assert.equal(headers[name], undefined, `HTTP/${http}: ${name} reached the upstream`);
      }
    }
  });

  test("x-portcullis-latency is on proxied responses, on 401, on 404 and on 421", async () => {
    const cases: [number, Omit<CurlOptions, "port" | "dir">][] = [
      [200, { device: "device" }],
      [200, { path: "/public/echo" }],
      [401, {}],
      [404, { device: "device", path: "/nowhere" }],
      [421, { device: "device", args: ["-H", "Host: localhost"] }],
    ];
    for (const [status, options] of cases) {
      for (const http of HTTP_VERSIONS) {
        const r = await request({ ...options, http });
        assert.equal(r.status, status, `HTTP/${http} ${JSON.stringify(options)}: ${r.body}`);
        assert.match(
          r.headers["x-portcullis-latency"] ?? "",
          /^\d+$/,
          `HTTP/${http} ${status}: latency header`,
        );
      }
    }
  });

  test("x-forwarded-for, -proto and -host reach the upstream; client-sent -proto and -host are replaced", async () => {
    for (const http of HTTP_VERSIONS) {
      const r = await request({
        device: "device",
        http,
        args: ["-H", "X-Forwarded-Proto: http", "-H", "X-Forwarded-Host: evil.example"],
      });
      assert.equal(r.status, 200, r.body);
      const { headers } = r.json<Echoed>();
      assert.equal(headers["x-forwarded-for"], "127.0.0.1");
      assert.equal(headers["x-forwarded-proto"], "https");
      assert.equal(headers["x-forwarded-host"], `mtls.auth.local.com:${port}`);
    }
  });

  test("hop-by-hop headers named in Connection are not forwarded (HTTP/1.1)", async () => {
    const r = await request({
      device: "device",
      http: "1.1",
      args: [
        "-H",
        "Connection: keep-alive, X-Hop-Secret",
        "-H",
        "X-Hop-Secret: hop",
        "-H",
        "X-End-To-End: kept",
        "-H",
        "Keep-Alive: timeout=5",
      ],
    });
    assert.equal(r.status, 200, r.body);
    const { headers } = r.json<Echoed>();
    assert.equal(headers["x-hop-secret"], undefined, "a header named in Connection reached the upstream");
    assert.equal(headers["keep-alive"], undefined);
    assert.equal(headers["x-end-to-end"], "kept", "an end-to-end header must still be forwarded");
    assert.notEqual(
      headers.connection,
      "keep-alive, X-Hop-Secret",
      "the client's Connection header is this hop's only",
    );
  });
});
