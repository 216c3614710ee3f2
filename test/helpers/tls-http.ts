// A bare TLS client for end-to-end tests: one `tls.connect`, one raw HTTP/1.1 request written as soon as
// the handshake completes, the bytes read until the server closes. It reports what TLS did (session
// reuse, version, ALPN, the server certificate, the sessions received) along with the HTTP answer, so
// a test can prove a resumption really happened and that a denied connection never got an HTTP byte.
import { connect, type PeerCertificate, type SecureVersion, type TLSSocket } from "node:tls";

export interface TlsHttpOptions {
  readonly port: number;
  /** SNI to send; undefined sends none. */
  readonly servername?: string;
  /** Host header; default the servername (or 127.0.0.1). */
  readonly host?: string;
  readonly path?: string;
  /** Client certificate chain and key, PEM. */
  readonly cert?: string;
  readonly key?: string;
  /** A session from an earlier exchange, offered for resumption. */
  readonly session?: Buffer;
  readonly minVersion?: SecureVersion;
  readonly maxVersion?: SecureVersion;
  readonly alpn?: readonly string[];
  readonly ciphers?: string;
  /** Write no request: only do the handshake, then close. */
  readonly noRequest?: boolean;
  readonly timeoutMs?: number;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface TlsHttpResult {
  /** The handshake completed on the client side. */
  readonly secureConnected: boolean;
  readonly reused: boolean;
  readonly protocol: string | null;
  readonly alpn: string | false | null;
  readonly serverCert: PeerCertificate | undefined;
  /** Every session (ticket) the server sent; the last is the one to resume with. */
  readonly sessions: readonly Buffer[];
  /** Every byte read after the handshake. */
  readonly raw: Buffer;
  /** The parsed HTTP answer, undefined when no complete status line arrived. */
  readonly http: HttpAnswer | undefined;
  readonly error: Error | undefined;
  /** True when the client gave up waiting for the server to close. */
  readonly timedOut: boolean;
}

export function lastSession(result: TlsHttpResult): Buffer {
  const session = result.sessions.at(-1);
  if (!session) throw new Error("the server sent no session");
  return session;
}

function decodeChunked(body: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  while (at < body.length) {
    const eol = body.indexOf("\r\n", at);
    if (eol < 0) break;
    const size = Number.parseInt(body.subarray(at, eol).toString("latin1"), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

export function parseHttp(raw: Buffer): HttpAnswer | undefined {
  const split = raw.indexOf("\r\n\r\n");
  if (split < 0) return undefined;
  const [statusLine = "", ...lines] = raw.subarray(0, split).toString("latin1").split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
  if (!status) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  const rest = raw.subarray(split + 4);
  const body = headers["transfer-encoding"]?.toLowerCase() === "chunked" ? decodeChunked(rest) : rest;
  return { status: Number(status), headers, body: body.toString("utf8") };
}

/** Connects, sends `GET path` with `Connection: close` right after the handshake, reads until close. */
export function tlsHttp(options: TlsHttpOptions): Promise<TlsHttpResult> {
  const sessions: Buffer[] = [];
  const chunks: Buffer[] = [];
  let secureConnected = false;
  let reused = false;
  let protocol: string | null = null;
  let alpn: string | false | null = null;
  let serverCert: PeerCertificate | undefined;
  let error: Error | undefined;
  let timedOut = false;
  return new Promise((resolve) => {
    const socket: TLSSocket = connect({
      host: "127.0.0.1",
      port: options.port,
      servername: options.servername,
      cert: options.cert,
      key: options.key,
      session: options.session,
      minVersion: options.minVersion,
      maxVersion: options.maxVersion,
      ciphers: options.ciphers,
      ALPNProtocols: [...(options.alpn ?? ["http/1.1"])],
      // The tests look at the server certificate themselves; trust is not what they exercise here.
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, options.timeoutMs ?? 10_000);
    socket.on("session", (session: Buffer) => sessions.push(session));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", (err: Error) => {
      error = err;
    });
    socket.once("secureConnect", () => {
      secureConnected = true;
      reused = socket.isSessionReused();
      protocol = socket.getProtocol();
      alpn = socket.alpnProtocol;
      serverCert = socket.getPeerCertificate();
      if (options.noRequest) {
        socket.end();
        return;
      }
      const host = options.host ?? options.servername ?? "127.0.0.1";
      socket.write(`GET ${options.path ?? "/echo"} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    });
    socket.once("close", () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      resolve({
        secureConnected,
        reused,
        protocol,
        alpn,
        serverCert,
        sessions,
        raw,
        http: parseHttp(raw),
        error,
        timedOut,
      });
    });
  });
}

/** A TLS connection kept open: for limit and idle-timeout tests. */
export interface OpenTls {
  readonly socket: TLSSocket;
  /** Resolves when the socket closes, with the bytes it read. */
  readonly closed: Promise<Buffer>;
  /** Resolves true once the handshake completes, false when the socket closes first. */
  readonly ready: Promise<boolean>;
}

export function openTls(options: Omit<TlsHttpOptions, "path" | "host" | "noRequest" | "timeoutMs">): OpenTls {
  const socket = connect({
    host: "127.0.0.1",
    port: options.port,
    servername: options.servername,
    cert: options.cert,
    key: options.key,
    minVersion: options.minVersion,
    maxVersion: options.maxVersion,
    ALPNProtocols: [...(options.alpn ?? ["http/1.1"])],
    rejectUnauthorized: false,
  });
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  socket.on("error", () => {});
  const closed = new Promise<Buffer>((resolve) => socket.once("close", () => resolve(Buffer.concat(chunks))));
  const ready = new Promise<boolean>((resolve) => {
    socket.once("secureConnect", () => resolve(true));
    socket.once("close", () => resolve(false));
  });
  return { socket, closed, ready };
}

/** Sends one request on an open connection and resolves with the answer (the server closes after it). */
export function requestOn(conn: OpenTls, host: string, path = "/echo"): Promise<HttpAnswer | undefined> {
  conn.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  return conn.closed.then(parseHttp);
}

/** Resolves with what happened first: the promise, or "timeout" after `ms`. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
