// The headers a proxied request carries upstream: hop-by-hop and client-sent identity headers removed, x-forwarded-* set.
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
];

const IDENTITY_EXACT = new Set(IDENTITY_HEADER_PATTERNS.filter((p) => !p.endsWith("*")));
const IDENTITY_PREFIXES = IDENTITY_HEADER_PATTERNS.filter((p) => p.endsWith("*")).map((p) => p.slice(0, -1));

/** Lower case, `_` read as `-`: the spelling every comparison here uses. */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replaceAll("_", "-");
}

/** True for a header that claims a client identity: never accepted from a client. */
export function isIdentityHeader(name: string): boolean {
  const canonical = canonicalHeaderName(name);
  return IDENTITY_EXACT.has(canonical) || IDENTITY_PREFIXES.some((prefix) => canonical.startsWith(prefix));
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

/** The hop-by-hop names for one message: the fixed list plus every option named in its Connection header. */
export function hopByHopNames(connection: string | string[] | undefined): Set<string> {
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

/** Headers the gateway always sets itself; a client's copy (in any spelling) must not reach the upstream. */
const GATEWAY_SET = new Set([
  "host",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "x-forwarded-port",
]);

/**
 * Dropped for a reason other than hop-by-hop: `expect` because Node answered any 100-continue already and undici
 * refuses the header; `forwarded` because the gateway speaks x-forwarded-* only, and an unchecked client-written
 * Forwarded next to it would contradict what the gateway asserts.
 */
const ALSO_DROPPED = new Set(["expect", "forwarded"]);

export interface UpstreamHeaderContext {
  /** The client's IP address, appended to x-forwarded-for. */
  readonly clientAddress: string;
  /** The request's host as received, normalised (lower case, no trailing dot, no port). */
  readonly host: string;
  /** The port the client connected to; used when the Host header carries none. Defaults to the scheme's port. */
  readonly listenerPort?: number;
  /** Defaults to "https": Portcullis listeners are TLS. */
  readonly proto?: "https" | "http";
  /** Keep the client's Host for the upstream instead of the target's own. */
  readonly preserveHost: boolean;
}

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The port written in a Host / :authority value, if any (`[v6]:port` or `name:port`). */
function portOf(authority: string | undefined): number | undefined {
  if (authority === undefined) return undefined;
  const afterBracket = authority.slice(authority.lastIndexOf("]") + 1);
  const match = /:(\d{1,5})$/.exec(afterBracket);
  if (!match) return undefined;
  const port = Number(match[1]);
  return port > 0 && port <= 65535 ? port : undefined;
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
  const hopByHop = hopByHopNames(incoming.connection);
  const out: OutgoingHeaders = {};
  for (const [rawName, value] of Object.entries(incoming)) {
    if (value === undefined || rawName.startsWith(":")) continue; // HTTP/2 pseudo-headers are not fields
    const name = rawName.toLowerCase();
    const canonical = canonicalHeaderName(name);
    if (hopByHop.has(name) || hopByHop.has(canonical)) continue;
    if (GATEWAY_SET.has(canonical) || ALSO_DROPPED.has(canonical) || isIdentityHeader(canonical)) continue;
    out[name] = value;
  }

  const received = firstValue(incoming[":authority"]) ?? firstValue(incoming.host);
  const port = portOf(received) ?? context.listenerPort ?? (proto === "https" ? 443 : 80);
  const authority = formatAuthority(context.host, port, proto);

  const priorFor = incoming["x-forwarded-for"];
  const prior = (Array.isArray(priorFor) ? priorFor.join(", ") : (priorFor ?? "")).trim();
  out["x-forwarded-for"] = prior === "" ? context.clientAddress : `${prior}, ${context.clientAddress}`;
  out["x-forwarded-proto"] = proto;
  out["x-forwarded-host"] = authority;
  out["x-forwarded-port"] = String(port);
  if (context.preserveHost) out.host = authority;
  return out;
}
