// One upstream service: an undici pool per target, round-robin, streaming both bodies, mapping failures to 502/504.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { type Dispatcher, Pool } from "undici";
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
  /** When present, counts the response body bytes passed on to the client (for the access log). */
  bytes?: number;
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

/**
 * One proxied request, as undici's dispatch handler: no Promise, stream or AbortController per request. The
 * upstream's headers go out with writeHead, its body chunks with write (pausing the upstream while the client
 * is not reading), and a client gone early aborts the upstream exchange.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly #pools: readonly Pool[];
  readonly #first: number;
  readonly #attempts: number;
  readonly #request: ForwardRequest;
  readonly #options: Dispatcher.DispatchOptions;
  #attempt = 0;
  #controller: Dispatcher.DispatchController | undefined;
  #dispatchedAt = 0;
  #done = false;
  /** The client response is corked from its head until its first body chunk is out. */
  #corked = false;

  constructor(
    pools: readonly Pool[],
    first: number,
    attempts: number,
    request: ForwardRequest,
    options: Dispatcher.DispatchOptions,
  ) {
    this.#pools = pools;
    this.#first = first;
    this.#attempts = attempts;
    this.#request = request;
    this.#options = options;
  }

  start(): void {
    // A client gone before our response finished: stop the upstream exchange (and its body streams) too.
    this.#request.res.once("close", this.#onClientClose);
    this.#dispatch();
  }

  #dispatch(): void {
    const pool = this.#pools[(this.#first + this.#attempt) % this.#pools.length] as Pool;
    this.#dispatchedAt = performance.now();
    pool.dispatch(this.#options, this);
  }

  readonly #onClientClose = (): void => {
    if (!this.#request.res.writableFinished) this.#controller?.abort(new Error("the client went away"));
    this.#finish();
  };

  readonly #onDrain = (): void => {
    this.#controller?.resume();
  };

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.uncork();
    const { res } = this.#request;
    res.off("close", this.#onClientClose);
    res.off("drain", this.#onDrain);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#done) controller.abort(new Error("the client went away"));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    const { res, startedAt } = this.#request;
    if (responseClosed(res)) {
      controller.abort(new Error("the client went away"));
      return;
    }
    const headersAt = performance.now();
    const out = responseHeaders(headers);
    out[LATENCY_HEADER] = msHeader(this.#dispatchedAt - startedAt);
    out[UPSTREAM_LATENCY_HEADER] = msHeader(headersAt - this.#dispatchedAt);
    try {
      // Both response classes take (status, headers); the union of their overloads does not type-check as one call.
      (res as ServerResponse).writeHead(statusCode, out);
      // Node writes a response's head and its first chunk separately (two TLS records, two syscalls): corked
      // until the first chunk, or the end, they leave as one.
      if (typeof (res as ServerResponse).cork === "function") {
        (res as ServerResponse).cork();
        this.#corked = true;
      }
    } catch {
      // The upstream's headers were unusable: nothing is out yet, so an honest 502 still is.
      controller.abort(new Error("unusable upstream response headers"));
      sendJson(res, 502, { message: UPSTREAM_MESSAGES.badGateway }, startedAt);
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    const { res } = this.#request;
    if (responseClosed(res)) return;
    // The rest of a body that arrived in this read (often its end) joins the head and the first chunk.
    if (this.#corked) process.nextTick(uncork, this);
    if (this.#request.bytes !== undefined) this.#request.bytes += chunk.length;
    if (!(res as ServerResponse).write(chunk)) {
      controller.pause();
      res.once("drain", this.#onDrain);
    }
  }

  onResponseEnd(): void {
    const { res } = this.#request;
    if (!responseClosed(res)) res.end();
    this.uncork();
    this.#finish();
  }

  uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    (this.#request.res as ServerResponse).uncork();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const { res, startedAt } = this.#request;
    if (this.#done || responseClosed(res)) {
      this.#finish();
      return;
    }
    if (res.headersSent) {
      // Headers are out: a reset is the only truthful signal left.
      res.destroy();
      this.#finish();
      return;
    }
    const code = errorCode(err);
    if (code !== undefined && CONNECT_FAILURES.has(code) && this.#attempt + 1 < this.#attempts) {
      this.#attempt++;
      this.#dispatch();
      return;
    }
    const timeout = code !== undefined && TIMEOUTS.has(code);
    sendJson(
      res,
      timeout ? 504 : 502,
      { message: timeout ? UPSTREAM_MESSAGES.timeout : UPSTREAM_MESSAGES.badGateway },
      startedAt,
    );
    this.#finish();
  }
}

function uncork(exchange: Exchange): void {
  exchange.uncork();
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

  /**
   * Proxies one request: the exchange streams the upstream's answer straight into `res`, with backpressure.
   * Never throws: every failure becomes a JSON answer or, once headers are out, a reset.
   */
  forward(request: ForwardRequest): void {
    if (responseClosed(request.res)) return;
    const { req } = request;
    const headers = buildUpstreamHeaders(req.headers, {
      clientAddress: request.clientAddress,
      host: request.host,
      listenerPort: req.socket?.localPort,
      preserveHost: this.#options.preserveHost,
      trustedPeer: request.trustedPeer ?? false,
      strip: request.stripHeaders,
      httpVersion: req.httpVersion,
    });
    for (const name in request.identityHeaders) headers[name] = request.identityHeaders[name] as string;
    const withBody = hasRequestBody(req);
    const first = this.#next;
    this.#next = (this.#next + 1) % this.#pools.length;
    // A streamed body cannot be replayed, so only bodiless requests move on to another target.
    const attempts = withBody ? 1 : 1 + Math.max(0, this.#options.retries);
    new Exchange(this.#pools, first, attempts, request, {
      method: request.method as Dispatcher.HttpMethod,
      path: request.path,
      headers,
      body: withBody ? req : null,
    }).start();
  }

  /** Lets in-flight requests finish, then closes every connection. */
  async close(): Promise<void> {
    await Promise.all(this.#pools.map((pool) => pool.close()));
  }
}
