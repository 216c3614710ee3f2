// Upstream request headers: spoofed identity headers in every spelling, hop-by-hop removal, x-forwarded-* values.
import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { test } from "node:test";
import {
  buildUpstreamHeaders,
  hopByHopNames,
  IDENTITY_HEADER_PATTERNS,
  isIdentityHeader,
} from "./request-headers.ts";

const context = { clientAddress: "192.0.2.7", host: "api.example.com", preserveHost: false } as const;

test("identity headers are recognised in any case and with _ for -", () => {
  const spoofed = [
    "X-Forwarded-Client-Cert",
    "x-forwarded-client-cert",
    "x_forwarded_client_cert",
    "X_FORWARDED_CLIENT_CERT",
    "X-SSL-Client-Verify",
    "x_ssl_client_s_dn",
    "X-SSL-Cert",
    "ssl-client-cert",
    "SSL_CLIENT_S_DN",
    "client-cert",
    "Client-Cert-Chain",
    "client_cert_chain",
    "x-client-cert",
    "X-Client-Cert-Info",
    "X-Forwarded-Tls-Client-Cert",
    "x-forwarded-tls-client-cert-info",
    "X-Device-Id",
    "x_device_groups",
    "x-consumer-username",
    "X-Consumer-ID",
    "x-consumer-custom-id",
    "x-credential-identifier",
    "X-Anonymous-Consumer",
    "x-authenticated-userid",
    "X-Portcullis-Latency",
    "X-ARR-ClientCert",
    "x-amzn-mtls-clientcert-leaf",
  ];
  for (const name of spoofed) assert.equal(isIdentityHeader(name), true, name);
  const benign = [
    "content-type",
    "authorization",
    "x-request-id",
    "x-client-id",
    "x-forwarded-for",
    "x-devices",
  ];
  for (const name of benign) assert.equal(isIdentityHeader(name), false, name);
  assert.ok(IDENTITY_HEADER_PATTERNS.includes("x-forwarded-client-cert"));
});

test("client-sent identity headers never reach the upstream", () => {
  const incoming: IncomingHttpHeaders = {
    "x-forwarded-client-cert": 'Hash=abc;Subject="CN=admin"',
    x_forwarded_client_cert: "Hash=abc",
    "x-ssl-client-verify": "SUCCESS",
    "client-cert": ":AAAA:",
    "client-cert-chain": ":AAAA:",
    "x-device-id": "device-admin",
    "x-consumer-username": "admin",
    "x-portcullis-latency": "0",
    "content-type": "application/json",
    accept: "*/*",
  };
  const out = buildUpstreamHeaders(incoming, context);
  assert.deepEqual(Object.keys(out).sort(), [
    "accept",
    "content-type",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
  ]);
});

test("hop-by-hop headers go, including every header named in Connection", () => {
  const incoming: IncomingHttpHeaders = {
    connection: "keep-alive, X-Secret-Hop, ,x-other",
    "keep-alive": "timeout=5",
    "proxy-connection": "keep-alive",
    te: "trailers",
    "transfer-encoding": "chunked",
    upgrade: "h2c",
    trailer: "x-checksum",
    "x-secret-hop": "1",
    "x-other": "2",
    "proxy-authorization": "Basic Zm9vOmJhcg==",
    "x-kept": "yes",
  };
  const out = buildUpstreamHeaders(incoming, context);
  for (const name of ["connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade"]) {
    assert.equal(out[name], undefined, name);
  }
  assert.equal(out.trailer, undefined);
  assert.equal(out["x-secret-hop"], undefined);
  assert.equal(out["x-other"], undefined);
  assert.equal(out["x-kept"], "yes");
  assert.equal(out["proxy-authorization"], "Basic Zm9vOmJhcg==", "not hop-by-hop in RFC 9110");
  assert.deepEqual(hopByHopNames(["a, b", "C"]).has("c"), true);
});

test("HTTP/2 pseudo-headers, host and expect are not forwarded", () => {
  const incoming: IncomingHttpHeaders = {
    ":method": "GET",
    ":path": "/x",
    ":scheme": "https",
    ":authority": "api.example.com:8443",
    host: "evil.example",
    expect: "100-continue",
    forwarded: "for=10.0.0.1;proto=http",
    "x-a": "1",
  };
  const out = buildUpstreamHeaders(incoming, context);
  assert.equal(
    Object.keys(out).some((name) => name.startsWith(":")),
    false,
  );
  assert.equal(out.host, undefined);
  assert.equal(out.expect, undefined);
  assert.equal(out.forwarded, undefined);
  assert.equal(out["x-a"], "1");
  assert.equal(out["x-forwarded-host"], "api.example.com:8443", ":authority wins over host");
  assert.equal(out["x-forwarded-port"], "8443");
});

test("x-forwarded-for appends the client address; the rest of x-forwarded-* is the gateway's own", () => {
  const out = buildUpstreamHeaders(
    {
      host: "API.example.com",
      "x-forwarded-for": "203.0.113.9, 10.1.1.1",
      "x-forwarded-proto": "http",
      "x-forwarded-host": "evil.example",
      x_forwarded_for: "6.6.6.6",
      "x-forwarded-port": "80",
    },
    context,
  );
  assert.equal(out["x-forwarded-for"], "203.0.113.9, 10.1.1.1, 192.0.2.7");
  assert.equal(out.x_forwarded_for, undefined);
  assert.equal(out["x-forwarded-proto"], "https");
  assert.equal(out["x-forwarded-host"], "api.example.com");
  assert.equal(out["x-forwarded-port"], "443");

  const first = buildUpstreamHeaders({ host: "api.example.com" }, context);
  assert.equal(first["x-forwarded-for"], "192.0.2.7");
});

test("x-forwarded-host carries a non-default port; preserveHost sets the upstream Host", () => {
  const out = buildUpstreamHeaders({ host: "api.example.com:8443" }, { ...context, preserveHost: true });
  assert.equal(out["x-forwarded-host"], "api.example.com:8443");
  assert.equal(out["x-forwarded-port"], "8443");
  assert.equal(out.host, "api.example.com:8443");

  const noPort = buildUpstreamHeaders({ host: "api.example.com" }, { ...context, listenerPort: 9443 });
  assert.equal(noPort["x-forwarded-host"], "api.example.com:9443");
  assert.equal(noPort["x-forwarded-port"], "9443");

  const v6 = buildUpstreamHeaders({ host: "[::1]:8443" }, { ...context, host: "::1" });
  assert.equal(v6["x-forwarded-host"], "[::1]:8443");
  const v6default = buildUpstreamHeaders({ host: "[::1]" }, { ...context, host: "::1" });
  assert.equal(v6default["x-forwarded-host"], "[::1]");
});
