// The headers a proxied request carries upstream: hop-by-hop headers and the strip list (identity, override and
// forwarding headers, plus the config's stripHeaders) removed; x-forwarded-* and Via set by the gateway.
import type { IncomingHttpHeaders } from "node:http";

export type OutgoingHeaders = Record<string, string | string[]>;

/**
 * Header names only the gateway may set (DESIGN.md, "upstreams trust identity headers"). A trailing `*` is a prefix.
 * Names are compared lower-cased with `_` read as `-`, because many upstream stacks (CGI, WSGI, Rack, nginx with
 * underscores_in_headers) fold both spellings into the same variable.
 */
export const IDENTITY_HEADER_PATTERNS: readonly string[] = [
  "x-forwarded-client-cert", // Envoy XFCC
  "client-cert*", // RFC 9440 client-cert, client-cert-chain
  "x-client-cert*",
  "x-forwarded-tls-client-cert*", // Traefik
  "x-ssl-*", // HAProxy / nginx conventions: x-ssl-client-verify, x-ssl-client-dn, x-ssl-cert …
  "ssl-client-*", // Apache mod_ssl variables exported as headers
  "x-arr-clientcert", // Azure App Service / APIM
  "x-amzn-mtls-clientcert*", // AWS ALB mTLS passthrough
  "x-device-*",
  "x-consumer-*", // Kong
  "x-credential-*", // Kong
  "x-anonymous-consumer", // Kong
  "x-authenticated-*",
  "x-portcullis-*",
  // Client-certificate details under other proxies' names (nginx `$ssl_client_*` set as headers, F5, Citrix …).
  // Not `x-client-*` as a whole: device firmware sends x-client-id / x-client-version; stripHeaders can add it.
  "x-client-verify*",
  "x-client-dn*",
  "x-client-s-dn*",
  "x-client-i-dn*",
  "x-client-subject*",
  "x-client-issuer*",
  "x-client-serial*",
  "x-client-fingerprint*",
  "x-client-san*",
  "x-client-ssl-*",
  "x-client-tls-*",
  "x-client-principal*",
  "x-client-identity*",
  "x-tls-*", // x-tls-client-cert, x-tls-client-verify, x-tls-cipher …
  "x-mtls-*",
  "cf-client-cert*", // Cloudflare mTLS: cf-client-cert-der-base64, cf-client-cert-sha256 …
  "cf-access-*", // Cloudflare Access: cf-access-authenticated-user-email, cf-access-jwt-assertion
  "x-spiffe-*",
  // Authenticated users as front proxies assert them.
  "x-forwarded-user", // oauth2-proxy, Traefik forward auth …
  "x-forwarded-email",
  "x-forwarded-preferred-username",
  "x-forwarded-groups",
  "x-forwarded-access-token",
  "x-auth-request-*", // oauth2-proxy behind nginx auth_request
  "x-remote-*", // x-remote-user, x-remote-group, x-remote-extra-* (Kubernetes authenticating proxy)
  "remote-user", // CGI REMOTE_USER
  "impersonate-*", // Kubernetes impersonation
  "x-webauth-*", // Grafana auth proxy
  "x-ms-client-principal*", // Azure App Service authentication
  "x-ms-token-*",
  "x-goog-authenticated-user-*", // Google IAP
  "x-goog-iap-jwt-assertion",
  "x-amzn-oidc-*", // AWS ALB OIDC
  "x-jwt-*", // JWT claims copied into headers (Istio, WSO2 …)
  "x-userinfo", // Kong OIDC
];

/**
 * Headers that rewrite the path, method or host an upstream acts on (IIS URL Rewrite, Symfony, Laravel, Spring,
 * Envoy, ASP.NET): routing and method restrictions are decided on the request line, so a client's override must
 * not reach the upstream. Envoy itself drops every `x-envoy-*` of an untrusted client.
 */
export const OVERRIDE_HEADER_PATTERNS: readonly string[] = [
  "x-original-url",
  "x-rewrite-url",
  "x-original-uri",
  "x-original-path",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
  "x-original-method",
  "x-original-host",
  "x-host",
  "x-envoy-*", // x-envoy-original-path, x-envoy-original-url, x-envoy-external-address, x-envoy-internal …
];

/**
 * Where the request came from, as proxies write it. A client's copy is never forwarded: the gateway writes
 * x-forwarded-for/-proto/-host/-port and Via itself (extending X-Forwarded-For and Via only for a trusted proxy).
 */
export const FORWARDING_HEADER_PATTERNS: readonly string[] = [
  "x-forwarded-*", // -for, -proto, -host, -port, and -prefix, -uri, -path, -method, -server, -ssl …
  "x-forwarded",
  "forwarded", // RFC 7239: the gateway speaks x-forwarded-* only
  "forwarded-for",
  "via",
  "x-real-ip",
  "x-client-ip",
  "true-client-ip",
  "cf-connecting-ip*",
  "cf-pseudo-ipv4",
  "fastly-client-ip",
  "x-cluster-client-ip",
  "x-originating-ip",
  "x-original-forwarded-for",
  "x-azure-clientip",
  "x-azure-socketip",
  "x-appengine-user-ip",
  "x-proxyuser-ip",
];

/**
 * W3C trace context: the gateway writes its own (trace-context.ts), continuing the client's trace when its
 * traceparent is valid, so the client's copies never go on as they are.
 */
export const TRACE_CONTEXT_HEADERS: readonly string[] = ["traceparent", "tracestate"];

/** Every client header the gateway drops by default (stripHeaders adds to it). */
export const DEFAULT_STRIP_PATTERNS: readonly string[] = [
  ...IDENTITY_HEADER_PATTERNS,
  ...OVERRIDE_HEADER_PATTERNS,
  ...FORWARDING_HEADER_PATTERNS,
  ...TRACE_CONTEXT_HEADERS,
];

/** Lower case, `_` read as `-`: the spelling every comparison here uses. */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replaceAll("_", "-");
}

/** A config entry of stripHeaders: a header name (RFC 9110 token), optionally ending in `*` for a prefix. */
export const HEADER_PATTERN = /^[!#$%&'+.^_`|~0-9a-z-]+\*?$/i;

/** A set of header names and `prefix*` patterns, compared in canonical spelling. */
export class HeaderPatterns {
  readonly patterns: readonly string[];
  readonly #exact: ReadonlySet<string>;
  readonly #prefix: RegExp | undefined;

  constructor(patterns: readonly string[]) {
    this.patterns = [...new Set(patterns.map(canonicalHeaderName))];
    this.#exact = new Set(this.patterns.filter((p) => !p.endsWith("*")));
    const prefixes = this.patterns.filter((p) => p.endsWith("*")).map((p) => p.slice(0, -1));
    const escaped = prefixes.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    this.#prefix = prefixes.length === 0 ? undefined : new RegExp(`^(?:${escaped.join("|")})`);
  }

  /** `name` in any case and with `_` for `-`. */
  matches(name: string): boolean {
    return this.matchesCanonical(canonicalHeaderName(name));
  }

  /** A name already in canonical spelling (canonicalHeaderName). */
  matchesCanonical(canonical: string): boolean {
    return this.#exact.has(canonical) || (this.#prefix?.test(canonical) ?? false);
  }
}

const IDENTITY = new HeaderPatterns(IDENTITY_HEADER_PATTERNS);
export const DEFAULT_STRIPPED = new HeaderPatterns(DEFAULT_STRIP_PATTERNS);

/** The default strip list plus a config's stripHeaders. */
export function stripList(extra: readonly string[] = []): HeaderPatterns {
  return extra.length === 0 ? DEFAULT_STRIPPED : new HeaderPatterns([...DEFAULT_STRIP_PATTERNS, ...extra]);
}

/** True for a header that claims a client identity: never accepted from a client. */
export function isIdentityHeader(name: string): boolean {
  return IDENTITY.matches(name);
}

/**
 * Hop-by-hop headers of RFC 9110 §7.6.1 (plus `trailer`, which only describes this hop's framing). Node's HTTP/2 layer
 * also refuses every one of them in a response.
 */
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "transfer-encoding",
  "upgrade",
  "trailer",
];

const HOP_BY_HOP: ReadonlySet<string> = new Set([...HOP_BY_HOP_HEADERS, "keep-alive", "close"]);

/** The hop-by-hop names for one message: the fixed list plus every option named in its Connection header. */
export function hopByHopNames(connection: string | string[] | undefined): ReadonlySet<string> {
  // Most messages name no option (or only keep-alive / close): the fixed set, not a new one each time.
  if (connection === undefined || connection === "keep-alive" || connection === "close") return HOP_BY_HOP;
  const names = new Set(HOP_BY_HOP_HEADERS);
  const values = connection === undefined ? [] : Array.isArray(connection) ? connection : [connection];
  for (const value of values) {
    for (const token of value.split(",")) {
      const name = token.trim().toLowerCase();
      if (name !== "") names.add(name);
    }
  }
  return names;
}

/**
 * Dropped for a reason other than hop-by-hop or the strip list: `host` because the gateway sets the upstream's own
 * (or, with preserveHost, the request's bound host); `expect` because Node answered any 100-continue already and
 * undici refuses the header.
 */
const ALSO_DROPPED = new Set(["host", "expect"]);

export interface UpstreamHeaderContext {
  /** The direct peer's IP address (IPv4-mapped IPv6 as IPv4): x-forwarded-for. */
  readonly clientAddress: string;
  /** The request's bound host: normalised (lower case, no trailing dot, no port) and checked against the SNI. */
  readonly host: string;
  /** The port the connection arrived on (x-forwarded-port). Defaults to the scheme's port. */
  readonly listenerPort?: number;
  /** Defaults to "https": Portcullis listeners are TLS. */
  readonly proto?: "https" | "http";
  /** Keep the client's Host (as bound: host and listener port) for the upstream instead of the target's own. */
  readonly preserveHost: boolean;
  /**
   * The direct peer is one of the listener's trustedProxies: its X-Forwarded-For and Via are extended. Otherwise
   * both are replaced, so that nothing a client wrote about where the request came from reaches the upstream.
   */
  readonly trustedPeer?: boolean;
  /** Client headers never forwarded; default DEFAULT_STRIPPED (the config adds its stripHeaders). */
  readonly strip?: HeaderPatterns;
  /** HTTP version of the client's request as Node reports it ("1.1", "2.0"), for Via. Default "1.1". */
  readonly httpVersion?: string;
  /**
   * A WebSocket tunnel (websocket.ts): the upgrade is asked of the upstream again, as `Upgrade: <this>` with
   * `Connection: upgrade`; the client's own Connection and Upgrade are dropped as hop-by-hop all the same.
   */
  readonly upgrade?: string;
}

/** The pseudonym the gateway writes in Via (RFC 9110 §7.6.3). */
export const VIA_PSEUDONYM = "portcullis";

/** Via's received-protocol: HTTP/2 is "2", HTTP/1.x keeps its minor version. */
function receivedProtocol(httpVersion: string | undefined): string {
  if (httpVersion === undefined) return "1.1";
  return httpVersion.startsWith("2") ? "2" : httpVersion;
}

/** Several field lines of one list-valued header as one comma-separated value, "" when absent or blank. */
function listValue(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value.join(", ") : (value ?? "")).trim();
}

/** `host[:port]` with the port only when it is not the scheme's default; IPv6 literals bracketed. */
export function formatAuthority(host: string, port: number, proto: "https" | "http"): string {
  const name = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  const defaultPort = proto === "https" ? 443 : 80;
  return port === defaultPort ? name : `${name}:${port}`;
}

/** The header object for the upstream request, built from a client's HTTP/1.1 or HTTP/2 (compat) headers. */
export function buildUpstreamHeaders(
  incoming: IncomingHttpHeaders,
  context: UpstreamHeaderContext,
): OutgoingHeaders {
  const proto = context.proto ?? "https";
  const strip = context.strip ?? DEFAULT_STRIPPED;
  const hopByHop = hopByHopNames(incoming.connection);
  const out: OutgoingHeaders = {};
  for (const [rawName, value] of Object.entries(incoming)) {
    if (value === undefined || rawName.startsWith(":")) continue; // HTTP/2 pseudo-headers are not fields
    const name = rawName.toLowerCase();
    const canonical = canonicalHeaderName(name);
    if (hopByHop.has(name) || hopByHop.has(canonical)) continue;
    if (ALSO_DROPPED.has(canonical) || strip.matchesCanonical(canonical)) continue;
    out[name] = value;
  }

  // Never the Host header's port: the connection's own, so a client cannot choose what the upstream is told.
  const port = context.listenerPort ?? (proto === "https" ? 443 : 80);
  const authority = formatAuthority(context.host, port, proto);
  const via = `${receivedProtocol(context.httpVersion)} ${VIA_PSEUDONYM}`;

  // Only the exact spelling from a trusted proxy is extended (`x_forwarded_for` and the like were dropped above),
  // and not when its Connection header says it is for this hop only.
  const extend = (name: "x-forwarded-for" | "via") =>
    context.trustedPeer && !hopByHop.has(name) ? listValue(incoming[name]) : "";
  const priorFor = extend("x-forwarded-for");
  const priorVia = extend("via");
  out["x-forwarded-for"] = priorFor === "" ? context.clientAddress : `${priorFor}, ${context.clientAddress}`;
  out["x-forwarded-proto"] = proto;
  out["x-forwarded-host"] = authority;
  out["x-forwarded-port"] = String(port);
  out.via = priorVia === "" ? via : `${priorVia}, ${via}`;
  if (context.preserveHost) out.host = authority;
  if (context.upgrade !== undefined) {
    out.connection = "upgrade";
    out.upgrade = context.upgrade;
  }
  return out;
}
