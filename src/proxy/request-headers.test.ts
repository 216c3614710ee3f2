// Upstream request headers: spoofed identity headers in every spelling, hop-by-hop removal, x-forwarded-* values.
import assert from "node:assert/strict";
import type { IncomingHttpHeaders } from "node:http";
import { test } from "node:test";
import {
  buildUpstreamHeaders,
  DEFAULT_STRIPPED,
  HEADER_PATTERN,
  hopByHopNames,
  IDENTITY_HEADER_PATTERNS,
  isIdentityHeader,
  stripList,
} from "./request-headers.ts";
import { normalizePeerAddress, parseCidr, TrustedProxies } from "./trusted-proxies.ts";

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
    "via",
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
  assert.equal(out["x-forwarded-host"], "api.example.com", "the bound host, never a port the client wrote");
  assert.equal(out["x-forwarded-port"], "443");
});

// Issue 8, item 6: identity-like, override and forwarding headers under names other proxies and frameworks use.
const LISTED = [
  "x-original-url",
  "x-rewrite-url",
  "x-http-method-override",
  "x-envoy-original-path",
  "x-forwarded-user",
  "x-remote-user",
  "remote-user",
  "x-spiffe-id",
  "x-client-verify",
  "x-client-dn",
  "x-client-s-dn",
  "x-tls-client-cert",
  "x-mtls-client-cert",
  "cf-client-cert-der-base64",
  "cf-client-cert-sha256",
];
const FAMILIES = [
  "x-method-override",
  "x-http-method",
  "x-original-method",
  "x-original-uri",
  "x-original-path",
  "x-original-host",
  "x-host",
  "x-forwarded-uri",
  "x-forwarded-prefix",
  "x-forwarded-path",
  "x-forwarded-method",
  "x-forwarded-server",
  "x-envoy-original-url",
  "x-envoy-external-address",
  "x-envoy-internal",
  "x-remote-group",
  "x-remote-extra-scopes",
  "x-auth-request-user",
  "x-auth-request-email",
  "x-forwarded-email",
  "x-forwarded-preferred-username",
  "x-forwarded-groups",
  "x-forwarded-access-token",
  "x-ms-client-principal",
  "x-ms-client-principal-name",
  "x-ms-client-principal-id",
  "x-ms-token-aad-id-token",
  "x-goog-authenticated-user-email",
  "x-goog-authenticated-user-id",
  "x-goog-iap-jwt-assertion",
  "x-amzn-oidc-identity",
  "x-amzn-oidc-data",
  "x-jwt-payload",
  "x-jwt-claim-sub",
  "x-userinfo",
  "x-webauth-user",
  "impersonate-user",
  "impersonate-group",
  "cf-access-authenticated-user-email",
  "x-client-i-dn",
  "x-client-subject-dn",
  "x-client-serial",
  "x-client-fingerprint",
  "x-tls-client-verify",
  "x-spiffe-trust-domain",
  "x-real-ip",
  "x-client-ip",
  "true-client-ip",
  "cf-connecting-ip",
  "fastly-client-ip",
  "x-cluster-client-ip",
  "forwarded-for",
  "x-forwarded",
  "x-originating-ip",
  "forwarded",
  "via",
];

test("the default strip list covers every listed header and its family, in any case and with _ for -", () => {
  for (const name of [...LISTED, ...FAMILIES]) {
    const spellings = [name, name.toUpperCase(), name.replaceAll("-", "_")];
    for (const spelling of spellings) assert.equal(DEFAULT_STRIPPED.matches(spelling), true, spelling);
  }
  // The identity-like ones are also identity headers (the rest are overrides, dropped all the same).
  for (const name of LISTED.slice(LISTED.indexOf("x-forwarded-user"))) {
    assert.equal(isIdentityHeader(name), true, `${name} is an identity header`);
  }
  const kept = [
    "content-type",
    "authorization",
    "x-request-id",
    "x-client-id",
    "x-client-version",
    "user-agent",
  ];
  for (const name of kept) assert.equal(DEFAULT_STRIPPED.matches(name), false, name);
});

test("none of them reaches the upstream; a header the config adds is stripped too", () => {
  const incoming: IncomingHttpHeaders = { "x-kept": "yes", "x-tenant-id": "42" };
  for (const name of [...LISTED, ...FAMILIES]) incoming[name] = `spoof-${name}`;
  incoming[LISTED[0]?.replaceAll("-", "_") ?? ""] = "spoof-underscore";
  incoming["x-internal-route"] = "spoof-internal";
  incoming.x_internal_other = "spoof-internal-underscore";
  const strip = stripList(["X-Internal-*", "x-tenant-id"]);
  const out = buildUpstreamHeaders(incoming, { ...context, strip });
  const leaked = Object.entries(out).filter(([, v]) => String(v).includes("spoof"));
  assert.deepEqual(leaked, []);
  assert.equal(out["x-kept"], "yes");
  assert.equal(out["x-tenant-id"], undefined);
  assert.equal(buildUpstreamHeaders(incoming, context)["x-tenant-id"], "42", "not stripped by default");
  assert.ok(strip.matches("x-forwarded-client-cert"), "the configured list adds to the defaults");
});

test("stripHeaders entries are header names or prefixes", () => {
  for (const ok of ["x-internal", "X_Internal-*", "x-a.b", "a*"]) assert.match(ok, HEADER_PATTERN, ok);
  for (const bad of ["", "*", "x internal", "x-a:b", "x-*-y", "x-é", "x-a\r\nb"]) {
    assert.doesNotMatch(bad, HEADER_PATTERN, JSON.stringify(bad));
  }
});

test("x-forwarded-* and Via are replaced: the client's values never reach the upstream", () => {
  const out = buildUpstreamHeaders(
    {
      host: "evil.example:9999",
      "x-forwarded-for": "6.6.6.6",
      x_forwarded_for: "7.7.7.7",
      "x-forwarded-proto": "http",
      "x-forwarded-host": "evil.example",
      "x-forwarded-port": "80",
      forwarded: "for=6.6.6.6",
      via: "1.1 evil",
      "x-real-ip": "6.6.6.6",
    },
    { ...context, listenerPort: 8443 },
  );
  assert.equal(out["x-forwarded-for"], "192.0.2.7");
  assert.equal(out.x_forwarded_for, undefined);
  assert.equal(out["x-forwarded-proto"], "https");
  assert.equal(out["x-forwarded-host"], "api.example.com:8443");
  assert.equal(out["x-forwarded-port"], "8443", "the listener's port, not the Host header's");
  assert.equal(out.forwarded, undefined);
  assert.equal(out["x-real-ip"], undefined);
  assert.equal(out.via, "1.1 portcullis");
  assert.equal(out.host, undefined);
});

test("from a trusted proxy, X-Forwarded-For and Via are extended; the rest is still the gateway's own", () => {
  const incoming: IncomingHttpHeaders = {
    "x-forwarded-for": "203.0.113.9, 10.1.1.1",
    x_forwarded_for: "7.7.7.7",
    "x-forwarded-proto": "http",
    "x-forwarded-host": "evil.example",
    "x-forwarded-port": "80",
    via: "1.0 fred, 1.1 edge",
    "x-real-ip": "6.6.6.6",
  };
  const out = buildUpstreamHeaders(incoming, { ...context, trustedPeer: true, listenerPort: 9443 });
  assert.equal(out["x-forwarded-for"], "203.0.113.9, 10.1.1.1, 192.0.2.7");
  assert.equal(out.via, "1.0 fred, 1.1 edge, 1.1 portcullis");
  assert.equal(out["x-forwarded-proto"], "https");
  assert.equal(out["x-forwarded-host"], "api.example.com:9443");
  assert.equal(out["x-forwarded-port"], "9443");
  assert.equal(out["x-real-ip"], undefined);
  assert.equal(out.x_forwarded_for, undefined);

  const several = buildUpstreamHeaders(
    { "x-forwarded-for": ["1.1.1.1", "2.2.2.2"] },
    { ...context, trustedPeer: true },
  );
  assert.equal(several["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 192.0.2.7");
  const hop = buildUpstreamHeaders(
    { connection: "X-Forwarded-For, via", "x-forwarded-for": "1.1.1.1", via: "1.1 edge" },
    { ...context, trustedPeer: true },
  );
  assert.equal(hop["x-forwarded-for"], "192.0.2.7", "named in Connection: for the proxy's hop only");
  assert.equal(hop.via, "1.1 portcullis");
  const none = buildUpstreamHeaders({ "x-forwarded-for": "  " }, { ...context, trustedPeer: true });
  assert.equal(none["x-forwarded-for"], "192.0.2.7");
  assert.equal(none.via, "1.1 portcullis");
});

test("Via names the protocol version received", () => {
  assert.equal(buildUpstreamHeaders({}, { ...context, httpVersion: "2.0" }).via, "2 portcullis");
  assert.equal(buildUpstreamHeaders({}, { ...context, httpVersion: "1.0" }).via, "1.0 portcullis");
  assert.equal(buildUpstreamHeaders({}, { ...context, httpVersion: "1.1" }).via, "1.1 portcullis");
});

test("x-forwarded-host carries a non-default listener port; preserveHost sets the upstream Host", () => {
  const out = buildUpstreamHeaders(
    { host: "api.example.com:1234" },
    { ...context, listenerPort: 8443, preserveHost: true },
  );
  assert.equal(out["x-forwarded-host"], "api.example.com:8443");
  assert.equal(out["x-forwarded-port"], "8443");
  assert.equal(out.host, "api.example.com:8443");

  const noPort = buildUpstreamHeaders({ host: "api.example.com" }, context);
  assert.equal(noPort["x-forwarded-host"], "api.example.com");
  assert.equal(noPort["x-forwarded-port"], "443");

  const v6 = buildUpstreamHeaders({ host: "[::1]:8443" }, { ...context, host: "::1", listenerPort: 8443 });
  assert.equal(v6["x-forwarded-host"], "[::1]:8443");
  const v6default = buildUpstreamHeaders({ host: "[::1]" }, { ...context, host: "::1", listenerPort: 443 });
  assert.equal(v6default["x-forwarded-host"], "[::1]");
});

test("trusted proxies: IPv4 and IPv6 CIDR ranges and bare addresses; IPv4-mapped peers read as IPv4", () => {
  const proxies = new TrustedProxies(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"]);
  for (const peer of ["10.1.2.3", "10.255.255.255", "192.0.2.7", "2001:db8::1", "2001:db8:ffff::", "::1"]) {
    assert.equal(proxies.has(peer), true, peer);
  }
  for (const peer of ["11.0.0.1", "192.0.2.8", "2001:db9::1", "::2", "", "not-an-ip"]) {
    assert.equal(proxies.has(peer), false, peer);
  }
  assert.equal(proxies.has(normalizePeerAddress("::ffff:10.9.9.9")), true);
  assert.equal(normalizePeerAddress("::ffff:10.9.9.9"), "10.9.9.9");
  assert.equal(normalizePeerAddress("::FFFF:192.0.2.1"), "192.0.2.1");
  assert.equal(normalizePeerAddress("2001:db8::1"), "2001:db8::1");
  assert.equal(normalizePeerAddress(undefined), "");
  assert.equal(new TrustedProxies().has("127.0.0.1"), false, "none by default");
  assert.equal(new TrustedProxies(["0.0.0.0/0"]).has("203.0.113.1"), true);
  assert.equal(
    new TrustedProxies(["0.0.0.0/0"]).has("2001:db8::1"),
    false,
    "an IPv4 range holds no IPv6 peer",
  );

  for (const ok of ["10.0.0.0/8", "10.0.0.1", "::/0", "fd00::/8", "2001:db8::1/128", "0.0.0.0/0"]) {
    assert.ok(parseCidr(ok), ok);
  }
  for (const bad of [
    "10.0.0.0/33",
    "::/129",
    "10.0.0/8",
    "10.0.0.0/",
    "10.0.0.0/8/8",
    "example.com",
    "10.0.0.0/-1",
    "",
  ]) {
    assert.equal(parseCidr(bad), undefined, bad);
  }
  assert.throws(() => new TrustedProxies(["10.0.0.0/33"]), /not an IP address or CIDR range/);
});
