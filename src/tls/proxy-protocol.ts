// The PROXY protocol (HAProxy, versions 1 and 2) in front of a listener's TLS: a load balancer that passes TCP
// through writes a header with the client's address before the ClientHello. Only peers in the listener's
// trustedSources may send one, and on such a listener every connection must: a header from anyone else is
// never believed. The parser is pure and incremental; acceptProxyProtocol reads the header off each new
// connection of a TLS (or HTTP/2) server before Node's TLS layer sees a byte.
import { isIPv4, isIPv6, type Socket } from "node:net";
import type { Server } from "node:tls";
import type { CompiledListener } from "../config/compiled.ts";
import { normalizePeerAddress } from "../proxy/trusted-proxies.ts";

/** The v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from("PROXY ", "latin1");
/** The longest v1 line, CRLF included (the spec's 107 bytes). */
const V1_MAX = 107;
/** Bytes of a v2 header before its address block and TLVs. */
const V2_FIXED = 16;
/**
 * Default cap of a whole header: v2's fixed part, the largest address block (AF_UNIX, 216 bytes) and room for
 * TLVs (authority, ALPN, unique id, SSL info …). A longer header is refused.
 */
export const MAX_HEADER_BYTES = 536;

export interface ProxyAddress {
  readonly address: string;
  readonly port: number;
  readonly family: "IPv4" | "IPv6";
}

export interface ProxyTlv {
  readonly type: number;
  readonly value: Buffer;
}

export type ProxyHeader = {
  readonly version: 1 | 2;
  /** Bytes the header took: what follows is the client's first byte (its ClientHello). */
  readonly length: number;
} & (
  | {
      /** A forwarded connection: `source` is the client, `destination` the address it connected to. */
      readonly command: "proxy";
      readonly source: ProxyAddress;
      readonly destination: ProxyAddress;
      readonly tlvs: readonly ProxyTlv[];
    }
  | {
      /**
       * The connection's own addresses stand: v2 LOCAL (the balancer's health check), v1 UNKNOWN, or a v2 PROXY
       * of an unspecified or AF_UNIX family.
       */
      readonly command: "local";
      readonly tlvs: readonly ProxyTlv[];
    }
);

export type ParseResult =
  | { readonly kind: "header"; readonly header: ProxyHeader }
  /** Too few bytes yet to tell; nothing so far rules a header out. */
  | { readonly kind: "incomplete" }
  | { readonly kind: "invalid"; readonly reason: string };

const INCOMPLETE: ParseResult = Object.freeze({ kind: "incomplete" });

function invalid(reason: string): ParseResult {
  return { kind: "invalid", reason };
}

/** Whether `data` starts with `prefix`, or with a part of it when shorter. */
function startsLike(data: Buffer, prefix: Buffer): boolean {
  const n = Math.min(data.length, prefix.length);
  return data.subarray(0, n).equals(prefix.subarray(0, n));
}

/**
 * Parses a PROXY header at the start of `data` (v1 or v2). Incremental: call again with more bytes while it says
 * incomplete. A header longer than `maxBytes` is invalid, as is anything that cannot become a header (such as a
 * ClientHello sent without one), as soon as its first bytes show it.
 */
export function parseProxyHeader(data: Buffer, maxBytes = MAX_HEADER_BYTES): ParseResult {
  if (data.length === 0) return INCOMPLETE;
  if (startsLike(data, V2_SIGNATURE)) return parseV2(data, maxBytes);
  if (startsLike(data, V1_PREFIX)) return parseV1(data);
  return invalid("no PROXY protocol header");
}

function parseV1(data: Buffer): ParseResult {
  const limit = Math.min(data.length, V1_MAX);
  let end = -1;
  for (let i = V1_PREFIX.length; i < limit; i++) {
    const byte = data[i];
    if (byte === 0x0d) {
      end = i;
      break;
    }
    // Printable US-ASCII only: a v1 line is text.
    if (byte === undefined || byte < 0x20 || byte > 0x7e) return invalid("v1: not a text line");
  }
  if (end < 0) return data.length >= V1_MAX ? invalid("v1: line longer than 107 bytes") : INCOMPLETE;
  if (end + 1 >= data.length) return INCOMPLETE;
  if (data[end + 1] !== 0x0a) return invalid("v1: line not ended by CRLF");
  const length = end + 2;
  const fields = data.toString("latin1", V1_PREFIX.length, end).split(" ");
  const [protocol] = fields;
  // UNKNOWN: the balancer could not tell (or proxies another protocol); whatever follows is ignored.
  if (protocol === "UNKNOWN")
    return { kind: "header", header: { version: 1, length, command: "local", tlvs: [] } };
  if (protocol !== "TCP4" && protocol !== "TCP6") return invalid(`v1: unknown protocol "${protocol}"`);
  if (fields.length !== 5) return invalid("v1: expected source and destination addresses and ports");
  const [, srcAddress = "", dstAddress = "", srcPort = "", dstPort = ""] = fields;
  const family = protocol === "TCP4" ? "IPv4" : "IPv6";
  const isFamily = family === "IPv4" ? isIPv4 : isIPv6;
  // Bare addresses only (no zone index): what a socket's remoteAddress would hold.
  if (!isFamily(srcAddress) || srcAddress.includes("%")) return invalid(`v1: not an ${family} address`);
  if (!isFamily(dstAddress) || dstAddress.includes("%")) return invalid(`v1: not an ${family} address`);
  const sport = v1Port(srcPort);
  const dport = v1Port(dstPort);
  if (sport === undefined || dport === undefined) return invalid("v1: not a port number");
  return {
    kind: "header",
    header: {
      version: 1,
      length,
      command: "proxy",
      source: { address: family === "IPv6" ? canonicalIPv6(srcAddress) : srcAddress, port: sport, family },
      destination: {
        address: family === "IPv6" ? canonicalIPv6(dstAddress) : dstAddress,
        port: dport,
        family,
      },
      tlvs: [],
    },
  };
}

/** A decimal port 0–65535 without leading zeroes (the spec's form). */
function v1Port(text: string): number | undefined {
  if (!/^(?:0|[1-9]\d{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

function parseV2(data: Buffer, maxBytes: number): ParseResult {
  if (data.length < V2_FIXED) return INCOMPLETE;
  const versionCommand = data[12] ?? 0;
  if (versionCommand >> 4 !== 2) return invalid("v2: unsupported version");
  const command = versionCommand & 0x0f;
  if (command > 1) return invalid("v2: unknown command");
  const familyProtocol = data[13] ?? 0;
  const addressLength = data.readUInt16BE(14);
  const length = V2_FIXED + addressLength;
  if (length > maxBytes) return invalid(`v2: header of ${length} bytes, more than ${maxBytes}`);
  if (data.length < length) return INCOMPLETE;
  const body = data.subarray(V2_FIXED, length);
  const family = familyProtocol >> 4;
  const transport = familyProtocol & 0x0f;
  // 0 unspecified, 1 AF_INET, 2 AF_INET6, 3 AF_UNIX; transport 0 unspecified, 1 stream, 2 datagram.
  if (family > 3 || transport > 2) return invalid("v2: unknown address family or transport");
  const blockLength = [0, 12, 36, 216][family] ?? 0;
  if (body.length < blockLength) return invalid("v2: address block shorter than its family's");
  const tlvs = parseTlvs(body.subarray(blockLength));
  if (!tlvs) return invalid("v2: malformed TLVs");
  // LOCAL: the balancer's own connection (health checks); the address block, if any, is ignored.
  if (command === 0) return { kind: "header", header: { version: 2, length, command: "local", tlvs } };
  if (family === 0 || family === 3)
    return { kind: "header", header: { version: 2, length, command: "local", tlvs } };
  if (transport !== 1) return invalid("v2: not a stream (TCP) connection");
  const ipv4 = family === 1;
  const size = ipv4 ? 4 : 16;
  const address = (offset: number) => (ipv4 ? ipv4Text(body, offset) : ipv6Text(body, offset));
  const fam = ipv4 ? "IPv4" : "IPv6";
  return {
    kind: "header",
    header: {
      version: 2,
      length,
      command: "proxy",
      source: { address: address(0), port: body.readUInt16BE(2 * size), family: fam },
      destination: { address: address(size), port: body.readUInt16BE(2 * size + 2), family: fam },
      tlvs,
    },
  };
}

/** Type-length-value records filling `data` exactly; undefined when one runs past the end. */
function parseTlvs(data: Buffer): ProxyTlv[] | undefined {
  const tlvs: ProxyTlv[] = [];
  let offset = 0;
  while (offset < data.length) {
    if (offset + 3 > data.length) return undefined;
    const type = data[offset] ?? 0;
    const length = data.readUInt16BE(offset + 1);
    const end = offset + 3 + length;
    if (end > data.length) return undefined;
    tlvs.push({ type, value: data.subarray(offset + 3, end) });
    offset = end;
  }
  return tlvs;
}

function ipv4Text(data: Buffer, offset: number): string {
  return `${data[offset]}.${data[offset + 1]}.${data[offset + 2]}.${data[offset + 3]}`;
}

function ipv6Text(data: Buffer, offset: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(data.readUInt16BE(offset + 2 * i).toString(16));
  return canonicalIPv6(groups.join(":"));
}

/**
 * An IPv6 address in the text Node gives a peer's: RFC 5952 (lower case, the longest run of zeroes as `::`), an
 * IPv4-mapped one as `::ffff:192.0.2.7`.
 */
function canonicalIPv6(text: string): string {
  const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!mapped) return host;
  const high = Number.parseInt(mapped[1] ?? "0", 16);
  const low = Number.parseInt(mapped[2] ?? "0", 16);
  return `::ffff:${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

// --- On a server --------------------------------------------------------------------------------------------

export type ProxyProtocolResult = "accepted" | "untrusted_source" | "malformed";

/** What acceptProxyProtocol reports of each connection it judged (metrics and refusal log lines). */
export interface ProxyProtocolDetails {
  /** The connection's own address: the balancer's (or, refused, whoever connected). */
  readonly peer: string;
  /** Why a header was refused. */
  readonly detail?: string;
  /** The client's address from an accepted PROXY header. */
  readonly client?: string;
}

export type ProxyProtocolReport = (
  listener: CompiledListener,
  result: ProxyProtocolResult,
  details: ProxyProtocolDetails,
) => void;

type ConnectionHandler = (this: Server, socket: Socket) => void;

/**
 * Puts the PROXY protocol in front of `server`'s TLS: while the current listener has `proxyProtocol`, each
 * new TCP connection must come from a trusted source and start with a header, read (at most `maxBytes`, within
 * the listener's handshakeTimeout) before Node's TLS layer gets the socket. The header's source address then is
 * the connection's `remoteAddress` / `remotePort` for every reader (admission, logs, X-Forwarded-For).
 * Read per connection: a reload may turn it on or off or change the sources.
 */
export function acceptProxyProtocol(
  server: Server,
  current: () => CompiledListener,
  report: ProxyProtocolReport,
  maxBytes = MAX_HEADER_BYTES,
): void {
  // Node's own handler (tlsConnectionListener) wraps the socket in a TLSSocket: it runs once a header is read.
  const handlers = server.listeners("connection") as ConnectionHandler[];
  server.removeAllListeners("connection");
  const handOver = (socket: Socket) => {
    for (const handler of handlers) handler.call(server, socket);
  };
  server.on("connection", (socket: Socket) => {
    const listener = current();
    const options = listener.proxyProtocol;
    if (!options) {
      handOver(socket);
      return;
    }
    const peer = normalizePeerAddress(socket.remoteAddress);
    if (!options.trustedSources.has(peer)) {
      report(listener, "untrusted_source", { peer });
      socket.destroy();
      return;
    }
    readHeader(socket, maxBytes, listener.limits.handshakeTimeout, (outcome) => {
      if (outcome.kind !== "header") {
        report(current(), "malformed", {
          peer,
          detail: outcome.kind === "invalid" ? outcome.reason : "timed out",
        });
        socket.destroy();
        return;
      }
      const { header } = outcome;
      if (header.command === "proxy" && !presentPeerAs(socket, header.source)) {
        report(current(), "malformed", { peer, detail: "cannot set the connection's address" });
        socket.destroy();
        return;
      }
      report(current(), "accepted", {
        peer,
        client: header.command === "proxy" ? header.source.address : undefined,
      });
      handOver(socket);
    });
  });
}

type ReadOutcome = ParseResult | { readonly kind: "timeout" };

/**
 * Reads until a header is complete or ruled out, then puts back whatever came after it (the ClientHello's first
 * bytes) for the TLS layer. Paused mode: nothing is read past what is asked for.
 */
function readHeader(
  socket: Socket,
  maxBytes: number,
  timeoutMs: number,
  done: (o: ReadOutcome) => void,
): void {
  let buffered: Buffer = Buffer.alloc(0);
  let finished = false;
  const finish = (outcome: ReadOutcome) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.off("readable", onReadable);
    socket.off("end", onEnd);
    socket.off("close", onEnd);
    socket.off("error", onError);
    if (outcome.kind === "header") {
      const rest = buffered.subarray(outcome.header.length);
      if (rest.length > 0) socket.unshift(rest);
    }
    done(outcome);
  };
  const onReadable = () => {
    for (let chunk = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const result = parseProxyHeader(buffered, maxBytes);
      if (result.kind !== "incomplete") {
        finish(result);
        return;
      }
    }
  };
  const onEnd = () => finish(invalid("closed before a complete header"));
  // Until Node's TLS layer owns the socket (it listens for errors itself), a reset must not go unhandled.
  const onError = () => finish(invalid("connection error"));
  const timer = setTimeout(() => finish({ kind: "timeout" }), timeoutMs > 0 ? timeoutMs : 10_000);
  timer.unref();
  socket.on("readable", onReadable);
  socket.once("end", onEnd);
  socket.once("close", onEnd);
  socket.once("error", onError);
}

/**
 * Makes `address` the socket's peer for every reader of `remoteAddress`, `remotePort` and `remoteFamily`: those
 * of the TLSSocket Node builds on it too, whose handle asks the TCP handle underneath. Node has no public way
 * to set a peer address, so the TCP handle's getpeername answers with the header's; false when the socket has
 * no such handle (then the connection is refused: never served under the balancer's address).
 */
function presentPeerAs(socket: Socket, address: ProxyAddress): boolean {
  const handle = (socket as unknown as { _handle?: { getpeername?: unknown } })._handle;
  if (!handle || typeof handle.getpeername !== "function") return false;
  handle.getpeername = (out: Record<string, unknown>) => {
    out.address = address.address;
    out.port = address.port;
    out.family = address.family;
    return 0;
  };
  // A value read already (the trust check above) is cached on the socket itself.
  (socket as unknown as { _peername?: unknown })._peername = undefined;
  return true;
}
