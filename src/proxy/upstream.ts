// One upstream service: an undici pool per target, round-robin, streaming both bodies, mapping failures to 502/504.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import type { Readable } from "node:stream";
import { Pool } from "undici";
import {
  type AnyResponse,
  LATENCY_HEADER,
  msHeader,
  sendJson,
  UPSTREAM_MESSAGES,
} from "../gateway/respond.ts";
import {
  buildUpstreamHeaders,
  type HeaderPatterns,
  hopByHopNames,
  type OutgoingHeaders,
} from "./request-headers.ts";

/** Milliseconds until the upstream's response headers arrived. */
export const UPSTREAM_LATENCY_HEADER = "x-portcullis-upstream-latency";

export interface UpstreamOptions {
  readonly name: string;
  /** Base URLs (http: or https:); only their origin is used, the request path is sent as given. */
  readonly targets: readonly URL[];
  readonly connectTimeoutMs: number;
  /**
   * Limit for the response headers (counted once the request is on the wire), then for each gap between body chunks.
   * undici checks both on a ~0.5 s clock, so a timeout fires up to about half a second late.
   */
  readonly readTimeoutMs: number;
  /** Extra attempts on other targets after a connect failure, for requests without a body. */
  readonly retries: number;
  readonly preserveHost: boolean;
  readonly maxConnectionsPerTarget?: number;
  readonly tls?: { readonly ca?: string; readonly rejectUnauthorized?: boolean };
}

export interface ForwardRequest {
  readonly req: IncomingMessage | Http2ServerRequest;
  readonly res: AnyResponse;
  readonly method: string;
  /** Already normalised path + query. */
  readonly path: string;
  /** The request's host as received, normalised (no port). */
  readonly host: string;
  /** The direct peer's address (x-forwarded-for). */
  readonly clientAddress: string;
  /** The peer is one of the listener's trusted proxies: its X-Forwarded-For and Via are extended. Default false. */
  readonly trustedPeer?: boolean;
  /** Client headers never forwarded (the defaults plus the config's stripHeaders); default the defaults. */
  readonly stripHeaders?: HeaderPatterns;
  readonly identityHeaders: Readonly<Record<string, string>>;
  /** performance.now() at request start. */
  readonly startedAt: number;
}

/** Failures where the upstream never saw the request, so another target may safely get it. */
const CONNECT_FAILURES = new Set(["ECONNREFUSED", "UND_ERR_CONNECT_TIMEOUT"]);
const TIMEOUTS = new Set(["UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

function errorCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string") return code;
  // undici wraps some socket errors; the system code then sits on the cause.
  return errorCode((err as { cause?: unknown }).cause);
}

/**
 * Whether the client sends a body. HTTP/1.1 says so in its framing headers; HTTP/2 may stream DATA without any
 * content-length, so the stream's END_STREAM-on-headers flag is the answer there.
 */
function hasRequestBody(req: IncomingMessage | Http2ServerRequest): boolean {
  const length = req.headers["content-length"];
  if (length !== undefined) return length.trim() !== "0";
  if ("stream" in req) return !req.stream.endAfterHeaders;
  return req.headers["transfer-encoding"] !== undefined;
}

/**
 * Streams the upstream body to the client with backpressure (pipe) and settles when either side is done:
 * resolves when the response finished, rejects when the body failed; a client gone early stops the body.
 * Lighter than stream.pipeline, which allocates an AbortController (and aborts it) for every response.
 */
function relay(body: Readable, res: AnyResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onFinish = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      body.destroy();
      resolve();
    };
    const cleanup = () => {
      body.off("error", onError);
      res.off("finish", onFinish);
      res.off("close", onClose);
    };
    body.once("error", onError);
    res.once("finish", onFinish);
    res.once("close", onClose);
    body.pipe(res as NodeJS.WritableStream);
  });
}

/** Upstream response headers minus this hop's framing (which Node's HTTP/2 layer would also throw on). */
function responseHeaders(headers: Record<string, string | string[] | undefined>): OutgoingHeaders {
  const hopByHop = hopByHopNames(headers.connection);
  const out: OutgoingHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !hopByHop.has(name.toLowerCase())) out[name] = value;
  }
  return out;
}

function responseClosed(res: AnyResponse): boolean {
  return res.destroyed || res.writableEnded;
}

export class Upstream {
  readonly name: string;
  #pools: Pool[];
  #options: UpstreamOptions;
  #next = 0;

  constructor(options: UpstreamOptions) {
    if (options.targets.length === 0) throw new Error(`upstream ${options.name}: no targets`);
    for (const target of options.targets) {
      if (target.protocol !== "http:" && target.protocol !== "https:") {
        throw new Error(`upstream ${options.name}: target ${target.href} is neither http: nor https:`);
      }
    }
    this.name = options.name;
    this.#options = options;
    this.#pools = options.targets.map(
      (target) =>
        new Pool(target.origin, {
          connections: options.maxConnectionsPerTarget ?? null,
          pipelining: 1, // keep-alive without pipelining: one slow response never holds up another request
          headersTimeout: options.readTimeoutMs,
          bodyTimeout: options.readTimeoutMs,
          connect: {
            timeout: options.connectTimeoutMs,
            ...(options.tls?.ca !== undefined ? { ca: options.tls.ca } : {}),
            ...(options.tls?.rejectUnauthorized !== undefined
              ? { rejectUnauthorized: options.tls.rejectUnauthorized }
              : {}),
          },
        }),
    );
  }

  /** Proxies one request. Never rejects: every failure becomes a JSON answer or, once headers are out, a reset. */
  async forward(request: ForwardRequest): Promise<void> {
    const { res } = request;
    if (responseClosed(res)) return;
    const abort = new AbortController();
    // A client gone before our response finished: stop the upstream exchange (and its body streams) too.
    const onClose = () => {
      if (!res.writableFinished) abort.abort();
    };
    res.once("close", onClose);
    try {
      await this.#forward(request, abort.signal);
    } finally {
      res.off("close", onClose);
    }
  }

  async #forward(request: ForwardRequest, signal: AbortSignal): Promise<void> {
    const { req, res, startedAt } = request;
    const headers: OutgoingHeaders = {
      ...buildUpstreamHeaders(req.headers, {
        clientAddress: request.clientAddress,
        host: request.host,
        listenerPort: req.socket?.localPort,
        preserveHost: this.#options.preserveHost,
        trustedPeer: request.trustedPeer ?? false,
        strip: request.stripHeaders,
        httpVersion: req.httpVersion,
      }),
      ...request.identityHeaders,
    };
    const withBody = hasRequestBody(req);
    // A streamed body cannot be replayed, so only bodiless requests move on to another target.
    const attempts = withBody ? 1 : 1 + Math.max(0, this.#options.retries);
    const first = this.#next;
    this.#next = (this.#next + 1) % this.#pools.length;

    for (let attempt = 0; attempt < attempts; attempt++) {
      const pool = this.#pools[(first + attempt) % this.#pools.length];
      if (pool === undefined) break;
      const dispatchedAt = performance.now();
      let upstream: Awaited<ReturnType<Pool["request"]>>;
      try {
        upstream = await pool.request({
          method: request.method as Parameters<Pool["request"]>[0]["method"],
          path: request.path,
          headers,
          body: withBody ? req : null,
          signal,
        });
      } catch (err) {
        if (signal.aborted || responseClosed(res)) return;
        const code = errorCode(err);
        if (code !== undefined && CONNECT_FAILURES.has(code) && attempt + 1 < attempts) continue;
        const timeout = code !== undefined && TIMEOUTS.has(code);
        sendJson(
          res,
          timeout ? 504 : 502,
          { message: timeout ? UPSTREAM_MESSAGES.timeout : UPSTREAM_MESSAGES.badGateway },
          startedAt,
        );
        return;
      }
      await this.#respond(res, upstream, startedAt, dispatchedAt);
      return;
    }
  }

  async #respond(
    res: AnyResponse,
    upstream: Awaited<ReturnType<Pool["request"]>>,
    startedAt: number,
    dispatchedAt: number,
  ): Promise<void> {
    const headersAt = performance.now();
    const body = upstream.body;
    if (responseClosed(res)) {
      body.destroy();
      return;
    }
    try {
      const ownMs = dispatchedAt - startedAt + (performance.now() - headersAt);
      const out = responseHeaders(upstream.headers);
      out[LATENCY_HEADER] = msHeader(ownMs);
      out[UPSTREAM_LATENCY_HEADER] = msHeader(headersAt - dispatchedAt);
      // Both response classes take (status, headers); the union of their overloads does not type-check as one call.
      (res as ServerResponse).writeHead(upstream.statusCode, out);
      await relay(body, res);
    } catch {
      // Headers are out (or the upstream's were unusable): a reset is the only truthful signal left.
      body.destroy();
      if (!res.headersSent) {
        sendJson(res, 502, { message: UPSTREAM_MESSAGES.badGateway }, startedAt);
      } else {
        res.destroy();
      }
    }
  }

  /** Lets in-flight requests finish, then closes every connection. */
  async close(): Promise<void> {
    await Promise.all(this.#pools.map((pool) => pool.close()));
  }
}
