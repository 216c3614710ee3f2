// The identity headers the gateway sets for the upstream: Envoy XFCC, RFC 9440 Client-Cert(-Chain), device and Kong-style consumer.
import type { Certificate } from "../identity/certificate.ts";
import { toPem } from "../identity/certificate.ts";
import type { DeviceIdentity } from "../identity/types.ts";

export interface IdentityHeaderOptions {
  /** x-forwarded-client-cert; `cert`/`chain` add the URL-encoded PEM of the leaf / of leaf + path. */
  readonly xfcc: { readonly enabled: boolean; readonly cert: boolean; readonly chain: boolean };
  /** client-cert and client-cert-chain (RFC 9440). */
  readonly rfc9440: boolean;
  /** x-device-id, and x-device-groups when the registry was consulted. */
  readonly device: boolean;
  /** x-consumer-id and x-consumer-username (Kong). */
  readonly consumer: boolean;
}

export const DEFAULT_IDENTITY_HEADER_OPTIONS: IdentityHeaderOptions = {
  xfcc: { enabled: true, cert: false, chain: false },
  rfc9440: false,
  device: true,
  consumer: true,
};

/** Bytes outside printable ASCII, as UTF-8, each through `encode`: keeps CR/LF out and fits Node's header charset. */
function escapeUnprintable(value: string, encode: (byte: number) => string): string {
  return value.replace(/[^\x20-\x7e]+/g, (run) =>
    Array.from(Buffer.from(run, "utf8"), (byte) => encode(byte)).join(""),
  );
}

const hex = (byte: number) => byte.toString(16).toUpperCase().padStart(2, "0");

/** RFC 4514 §2.4 allows any character of a DN string as `\` + hex pairs of its UTF-8 bytes. */
function safeDn(dn: string): string {
  return escapeUnprintable(dn, (byte) => `\\${hex(byte)}`);
}

/** URIs and DNS names take percent-encoding. */
function safeName(name: string): string {
  return escapeUnprintable(name, (byte) => `%${hex(byte)}`);
}

/**
 * One XFCC value: quoted when it holds a character XFCC uses as syntax. Inside quotes `"` and `\` are escaped
 * (RFC 9110 quoted-pair): an RFC 4514 subject already contains `\"`, which must not read as the closing quote.
 */
function xfccValue(value: string, alwaysQuote = false): string {
  if (!alwaysQuote && !/[,;="\\]/.test(value)) return value;
  return `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Envoy's XFCC element for the presenting client (no `By=`: Portcullis has no SPIFFE identity of its own). */
export function formatXfcc(identity: DeviceIdentity, withCert: boolean, withChain: boolean): string {
  const { leaf } = identity;
  const parts = [`Hash=${leaf.fingerprint}`];
  // encodeURIComponent leaves none of , ; = " \ in the PEM, but Envoy quotes Cert and Chain, so do we.
  if (withCert) parts.push(`Cert=${xfccValue(encodeURIComponent(toPem(leaf)), true)}`);
  if (withChain) {
    const pem = [leaf, ...identity.path].map(toPem).join("");
    parts.push(`Chain=${xfccValue(encodeURIComponent(pem), true)}`);
  }
  parts.push(`Subject=${xfccValue(safeDn(leaf.subject), true)}`);
  for (const uri of leaf.sanUris) parts.push(`URI=${xfccValue(safeName(uri))}`);
  for (const dns of leaf.sanDns) parts.push(`DNS=${xfccValue(safeName(dns))}`);
  return parts.join(";");
}

/** An RFC 8941 byte sequence: `:base64:`. */
function byteSequence(cert: Certificate): string {
  return `:${cert.der.toString("base64")}:`;
}

/**
 * RFC 9440 Client-Cert-Chain: certificates after the leaf in TLS order (issuer first), never the leaf itself. TLS 1.3
 * §4.4.2, whose order RFC 9440 adopts, lets the self-signed trust anchor be left out, and devices rarely send it:
 * leaving it out keeps the header to what the device's chain would carry.
 */
export function formatClientCertChain(identity: DeviceIdentity): string | undefined {
  const last = identity.path.at(-1);
  const chain = last?.selfIssued ? identity.path.slice(0, -1) : identity.path;
  return chain.length === 0 ? undefined : chain.map(byteSequence).join(", ");
}

/** Refuses a value that could split a header: every path above escapes, so this only guards future edits. */
function assertHeaderValue(name: string, value: string): string {
  if (/[^\t\x20-\x7e]/.test(value))
    throw new Error(`identity header ${name} would carry an unsafe character`);
  return value;
}

const built = new WeakMap<
  DeviceIdentity,
  { readonly options: IdentityHeaderOptions; readonly headers: Readonly<Record<string, string>> }
>();

/**
 * buildIdentityHeaders, once per identity object and options: a connection's verdict, and so its identity,
 * is the same object request after request (until the verdict is recomputed), so its headers are too.
 */
export function identityHeadersFor(
  identity: DeviceIdentity,
  options: IdentityHeaderOptions,
): Readonly<Record<string, string>> {
  const known = built.get(identity);
  if (known !== undefined && known.options === options) return known.headers;
  const headers = Object.freeze(buildIdentityHeaders(identity, options));
  built.set(identity, { options, headers });
  return headers;
}

/** The headers describing an authenticated device, lower-case names, ready to merge into the upstream request. */
export function buildIdentityHeaders(
  identity: DeviceIdentity,
  options: IdentityHeaderOptions = DEFAULT_IDENTITY_HEADER_OPTIONS,
): Record<string, string> {
  const headers: Record<string, string> = {};
  const { leaf, deviceId } = identity;
  if (options.xfcc.enabled) {
    headers["x-forwarded-client-cert"] = formatXfcc(identity, options.xfcc.cert, options.xfcc.chain);
  }
  if (options.rfc9440) {
    headers["client-cert"] = byteSequence(leaf);
    const chain = formatClientCertChain(identity);
    if (chain !== undefined) headers["client-cert-chain"] = chain;
  }
  if (options.device && deviceId !== undefined) headers["x-device-id"] = safeName(deviceId);
  if (options.device && identity.groups !== undefined && identity.groups.length > 0) {
    // Comma-separated, so a comma inside a group name is percent-encoded.
    headers["x-device-groups"] = identity.groups.map((g) => safeName(g).replaceAll(",", "%2C")).join(",");
  }
  if (options.consumer) {
    headers["x-consumer-id"] = safeName(deviceId ?? leaf.fingerprint);
    headers["x-consumer-username"] = safeName(deviceId ?? leaf.commonName ?? leaf.subject);
  }
  for (const [name, value] of Object.entries(headers)) assertHeaderValue(name, value);
  return headers;
}
