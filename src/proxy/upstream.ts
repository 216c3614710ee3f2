// One upstream service: an undici pool per target, a balancer over the targets that pass health checks and
// outlier detection, retries within a budget, streaming both bodies, mapping failures to 502/503/504.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import { type Dispatcher, Pool } from "undici";
import type { Logger } from "../gateway/log.ts";
import type { GatewayMetrics } from "../gateway/metrics.ts";
import {
  type AnyResponse,
  LATENCY_HEADER,
  msHeader,
  sendDeny,
  sendJson,
  UPSTREAM_MESSAGES,
} from "../gateway/respond.ts";
import { type Balancer, type BalancingStrategy, createBalancer } from "./balancer.ts";
import { HealthChecker, type HealthCheckOptions } from "./health-checks.ts";
import { OutlierDetector, type OutlierOptions } from "./outlier.ts";
import {
  buildUpstreamHeaders,
  type HeaderPatterns,
  hopByHopNames,
  type OutgoingHeaders,
} from "./request-headers.ts";
import { RetryBudget } from "./retry-budget.ts";

/** Milliseconds until the upstream's response headers arrived. */
export const UPSTREAM_LATENCY_HEADER = "x-portcullis-upstream-latency";

export interface UpstreamTlsOptions {
  /** PEM CA certificates the targets' certificates are verified against; absent means the system roots. */
  readonly ca?: string;
  /** PEM client certificate (and chain) the gateway presents to the targets, with its key. */
  readonly cert?: string;
  readonly key?: string;
  /** Name sent as SNI and checked against the targets' certificates; absent means each target's host. */
  readonly serverName?: string;
  /** Verify the targets' certificates (default true). */
  readonly rejectUnauthorized?: boolean;
}

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
  /**
   * Extra attempts on other targets: after a connect failure for requests without a body, and after a 502 or 503
   * answer for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) without a body.
   */
  readonly retries: number;
  /** Retries allowed as a fraction of the service's requests (0 to 1); absent means no budget. */
  readonly retryBudget?: number;
  readonly preserveHost: boolean;
  readonly maxConnectionsPerTarget?: number;
  /** How a request's target is picked; default round-robin. */
  readonly balancing?: BalancingStrategy;
  /** Active health checks; absent means none (every target counts as healthy). */
  readonly healthCheck?: HealthCheckOptions;
  /** Passive outlier detection; absent means none. */
  readonly outlierDetection?: OutlierOptions;
  readonly tls?: UpstreamTlsOptions;
}

/** Where an upstream reports: the log (health transitions, ejections) and the metrics. Both optional. */
export interface UpstreamObservers {
  readonly logger?: Logger;
  readonly metrics?: GatewayMetrics;
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
  /** The authenticated device, when known: the consistent-hash key (else the client address). */
  readonly deviceId?: string;
  /** A limit for this request in place of the service's readTimeoutMs (a route's own timeout). */
  readonly readTimeoutMs?: number;
  /** The peer is one of the listener's trusted proxies: its X-Forwarded-For and Via are extended. Default false. */
  readonly trustedPeer?: boolean;
  /** Client headers never forwarded (the defaults plus the config's stripHeaders); default the defaults. */
  readonly stripHeaders?: HeaderPatterns;
  readonly identityHeaders: Readonly<Record<string, string>>;
  /** W3C trace context for the upstream (the client's own traceparent and tracestate are stripped). */
  readonly trace?: { readonly traceparent: string; readonly tracestate: string | undefined };
  /** Headers the gateway adds to the upstream's answer (plugins: rate-limit state, CORS). */
  readonly responseHeaders?: Readonly<Record<string, string>>;
  /** performance.now() at request start. */
  readonly startedAt: number;
  /** When present, counts the response body bytes passed on to the client (for the access log). */
  bytes?: number;
}

/** A target picked for a WebSocket tunnel (Upstream.tunnelTarget). */
export interface TunnelTarget {
  readonly url: URL;
  readonly connectTimeoutMs: number;
  /** Limit for the target's answer to the upgrade request, once connected. */
  readonly readTimeoutMs: number;
  readonly preserveHost: boolean;
  readonly tls: UpstreamTlsOptions;
  outcome(status: number | undefined): void;
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

/** The gateway's own headers (plugins) over the upstream's; a `Vary` is combined, not replaced. */
function addHeaders(out: OutgoingHeaders, extra: Readonly<Record<string, string>>): void {
  for (const name in extra) {
    const value = extra[name] as string;
    const current = name.toLowerCase() === "vary" ? (out.vary ?? out.Vary) : undefined;
    out[name] =
      current === undefined ? value : `${Array.isArray(current) ? current.join(", ") : current}, ${value}`;
  }
}

function responseClosed(res: AnyResponse): boolean {
  return res.destroyed || res.writableEnded;
}

/** Methods a 502 or 503 may be retried for on another target (RFC 9110 §9.2.2), when they carry no body. */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);
/** Target answers that send an idempotent request on to another target. */
const RETRY_STATUSES = new Set([502, 503]);

/** The abort reason of an attempt given up for a retry on another target. */
const RETRY = new Error("retried on another target");

/**
 * A service's targets and what is known of them: pools, requests in flight, active health, outlier ejections,
 * the retry budget and the balancer. Exchanges report each attempt's outcome here.
 */
class Targets {
  readonly service: string;
  readonly pools: readonly Pool[];
  /** The metrics label of each target: its origin. */
  readonly labels: readonly string[];
  readonly inFlight: number[];
  readonly balancer: Balancer;
  health: HealthChecker | undefined;
  readonly outliers: OutlierDetector | undefined;
  readonly budget: RetryBudget | undefined;
  readonly metrics: GatewayMetrics | undefined;

  constructor(options: UpstreamOptions, pools: readonly Pool[], observers: UpstreamObservers) {
    this.service = options.name;
    this.pools = pools;
    this.labels = options.targets.map((t) => t.origin);
    this.inFlight = options.targets.map(() => 0);
    this.metrics = observers.metrics;
    this.balancer = createBalancer(
      options.balancing ?? "round-robin",
      options.targets.map((t) => t.href),
      (i) => this.inFlight[i] ?? 0,
    );
    this.outliers = options.outlierDetection
      ? new OutlierDetector(options.targets.length, options.outlierDetection, (i, failures) => {
          observers.logger?.warn(
            {
              service: this.service,
              target: this.labels[i],
              failures,
              ejectionTimeMs: options.outlierDetection?.ejectionTimeMs,
            },
            "upstream target ejected",
          );
          this.metrics?.upstreamEjections.inc({ service: this.service, target: this.labels[i] });
        })
      : undefined;
    this.budget = options.retryBudget !== undefined ? new RetryBudget(options.retryBudget) : undefined;
  }

  /** Takes part in balancing: healthy (when checked) and not ejected. */
  available(index: number): boolean {
    return (this.health?.healthy(index) ?? true) && !(this.outliers?.ejected(index) ?? false);
  }

  pick(key: string, tried?: ReadonlySet<number>): number | undefined {
    return this.balancer.pick(key, (i) => !tried?.has(i) && this.available(i), tried !== undefined);
  }

  /**
   * The target for a retry of a request that `tried` these: none when the budget is spent or no untried target
   * is available. A retry picked is counted in the budget and the metrics.
   */
  pickRetry(key: string, tried: ReadonlySet<number>): number | undefined {
    if (this.budget && !this.budget.canRetry()) {
      this.metrics?.upstreamRetries.inc({ service: this.service, result: "budget_exhausted" });
      return undefined;
    }
    const next = this.pick(key, tried);
    if (next === undefined) return undefined;
    this.budget?.retried();
    this.metrics?.upstreamRetries.inc({ service: this.service, result: "retried" });
    return next;
  }

  /** One attempt's answer (its status) or its failure to get one (undefined), for outlier detection. */
  outcome(index: number, status: number | undefined): void {
    if (!this.outliers) return;
    if (status === undefined || status >= 500) this.outliers.failure(index);
    else this.outliers.success(index);
  }

  begin(index: number): void {
    this.inFlight[index] = (this.inFlight[index] ?? 0) + 1;
  }

  end(index: number, status: string, seconds: number): void {
    this.inFlight[index] = Math.max(0, (this.inFlight[index] ?? 0) - 1);
    this.metrics?.observeUpstream(this.service, this.labels[index] ?? "", status, seconds);
  }
}

/**
 * One proxied request, as undici's dispatch handler: no Promise, stream or AbortController per request. The
 * upstream's headers go out with writeHead, its body chunks with write (pausing the upstream while the client
 * is not reading), and a client gone early aborts the upstream exchange. Each attempt goes to a target not
 * tried yet; nothing is retried once the client's response has begun.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly #targets: Targets;
  readonly #key: string;
  readonly #attempts: number;
  /** A 502 or 503 answer may be retried: an idempotent method without a body. */
  readonly #retryOnStatus: boolean;
  readonly #request: ForwardRequest;
  readonly #options: Dispatcher.DispatchOptions;
  readonly #tried = new Set<number>();
  #attempt = 0;
  #target = 0;
  /** The current attempt counts as in flight (until its end or error). */
  #attemptOpen = false;
  /** The current attempt's answer status, once its headers arrived. */
  #status: number | undefined;
  /** The target an attempt given up for a retry moves on to. */
  #retryTo: number | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #dispatchedAt = 0;
  #done = false;
  /** The client response is corked from its head until its first body chunk is out. */
  #corked = false;

  constructor(
    targets: Targets,
    key: string,
    attempts: number,
    retryOnStatus: boolean,
    request: ForwardRequest,
    options: Dispatcher.DispatchOptions,
  ) {
    this.#targets = targets;
    this.#key = key;
    this.#attempts = attempts;
    this.#retryOnStatus = retryOnStatus;
    this.#request = request;
    this.#options = options;
  }

  start(first: number): void {
    // A client gone before our response finished: stop the upstream exchange (and its body streams) too.
    this.#request.res.once("close", this.#onClientClose);
    this.#dispatch(first);
  }

  #dispatch(target: number): void {
    this.#target = target;
    this.#tried.add(target);
    this.#status = undefined;
    this.#controller = undefined;
    this.#attemptOpen = true;
    this.#targets.begin(target);
    this.#dispatchedAt = performance.now();
    (this.#targets.pools[target] as Pool).dispatch(this.#options, this);
  }

  /** The target for one more attempt, when attempts and the budget allow one and an untried target is left. */
  #retryTarget(): number | undefined {
    if (this.#attempt + 1 >= this.#attempts) return undefined;
    return this.#targets.pickRetry(this.#key, this.#tried);
  }

  #retry(target: number): void {
    this.#attempt++;
    this.#dispatch(target);
  }

  #endAttempt(status: string): void {
    if (!this.#attemptOpen) return;
    this.#attemptOpen = false;
    this.#targets.end(this.#target, status, (performance.now() - this.#dispatchedAt) / 1000);
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
    this.#status = statusCode;
    this.#targets.outcome(this.#target, statusCode);
    if (this.#retryOnStatus && RETRY_STATUSES.has(statusCode)) {
      const next = this.#retryTarget();
      if (next !== undefined) {
        this.#retryTo = next;
        controller.abort(RETRY);
        return;
      }
    }
    const headersAt = performance.now();
    const out = responseHeaders(headers);
    const extra = this.#request.responseHeaders;
    if (extra !== undefined) addHeaders(out, extra);
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
      this.#sendError(502);
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
    this.#endAttempt(String(this.#status ?? "error"));
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

  #sendError(status: 502 | 504): void {
    const { res, startedAt } = this.#request;
    const bytes = sendJson(
      res,
      status,
      { message: status === 504 ? UPSTREAM_MESSAGES.timeout : UPSTREAM_MESSAGES.badGateway },
      startedAt,
    );
    if (this.#request.bytes !== undefined) this.#request.bytes += bytes;
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const code = errorCode(err);
    const timeout = code !== undefined && TIMEOUTS.has(code);
    const answered = this.#status;
    this.#endAttempt(answered !== undefined ? String(answered) : timeout ? "timeout" : "error");
    const { res } = this.#request;
    if (this.#done || responseClosed(res)) {
      this.#finish();
      return;
    }
    if (err === RETRY && this.#retryTo !== undefined) {
      const next = this.#retryTo;
      this.#retryTo = undefined;
      this.#retry(next);
      return;
    }
    if (res.headersSent) {
      // Headers are out: a reset is the only truthful signal left.
      res.destroy();
      this.#finish();
      return;
    }
    if (answered === undefined) this.#targets.outcome(this.#target, undefined);
    if (code !== undefined && CONNECT_FAILURES.has(code)) {
      const next = this.#retryTarget();
      if (next !== undefined) {
        this.#retry(next);
        return;
      }
    }
    this.#sendError(timeout ? 504 : 502);
    this.#finish();
  }
}

function uncork(exchange: Exchange): void {
  exchange.uncork();
}

/** undici's connect options for a service's targets: timeout, and TLS verification and client certificate. */
function connectOptions(options: UpstreamOptions): Pool.Options["connect"] {
  const tls = options.tls ?? {};
  return {
    timeout: options.connectTimeoutMs,
    ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
    ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
    ...(tls.key !== undefined ? { key: tls.key } : {}),
    ...(tls.serverName !== undefined ? { servername: tls.serverName } : {}),
    ...(tls.rejectUnauthorized !== undefined ? { rejectUnauthorized: tls.rejectUnauthorized } : {}),
  };
}

export class Upstream {
  readonly name: string;
  readonly #options: UpstreamOptions;
  readonly #targets: Targets;
  readonly #observers: UpstreamObservers;
  #closed: Promise<void> | undefined;

  constructor(options: UpstreamOptions, observers: UpstreamObservers = {}) {
    if (options.targets.length === 0) throw new Error(`upstream ${options.name}: no targets`);
    for (const target of options.targets) {
      if (target.protocol !== "http:" && target.protocol !== "https:") {
        throw new Error(`upstream ${options.name}: target ${target.href} is neither http: nor https:`);
      }
    }
    this.name = options.name;
    this.#options = options;
    this.#observers = observers;
    const pools = options.targets.map(
      (target) =>
        new Pool(target.origin, {
          connections: options.maxConnectionsPerTarget ?? null,
          pipelining: 1, // keep-alive without pipelining: one slow response never holds up another request
          headersTimeout: options.readTimeoutMs,
          bodyTimeout: options.readTimeoutMs,
          connect: connectOptions(options),
        }),
    );
    const targets = new Targets(options, pools, observers);
    this.#targets = targets;
    for (const label of targets.labels)
      observers.metrics?.setUpstreamHealth(this, options.name, label, true, true);
    if (options.healthCheck) {
      targets.health = new HealthChecker(
        options.targets.length,
        options.healthCheck,
        (i, signal) => this.#probe(i, signal),
        (i, healthy, detail) => {
          const target = targets.labels[i] ?? "";
          observers.metrics?.setUpstreamHealth(this, options.name, target, healthy);
          const fields = { service: options.name, target, detail };
          if (healthy) observers.logger?.info(fields, "upstream target healthy");
          else observers.logger?.warn(fields, "upstream target unhealthy");
        },
      );
      targets.health.start();
    }
  }

  /** One active health check: a GET of the check's path on the target's own pool (its TLS settings included). */
  async #probe(index: number, signal: AbortSignal): Promise<number> {
    const check = this.#options.healthCheck as HealthCheckOptions;
    const target = this.#options.targets[index] as URL;
    const res = await (this.#targets.pools[index] as Pool).request({
      method: "GET",
      path: check.path,
      headers: { host: target.host, "user-agent": "portcullis-health-check" },
      signal,
      headersTimeout: check.timeoutMs,
      bodyTimeout: check.timeoutMs,
    });
    await res.body.dump();
    return res.statusCode;
  }

  /**
   * A target for a WebSocket tunnel (websocket.ts), picked as forward() picks one (balancer, health, ejections),
   * with what opening a connection to it needs; undefined when none is available. `outcome` reports the
   * target's answer status (or undefined: no answer) to outlier detection.
   */
  tunnelTarget(key: string): TunnelTarget | undefined {
    const index = this.#targets.pick(key);
    if (index === undefined) return undefined;
    const options = this.#options;
    return {
      url: options.targets[index] as URL,
      connectTimeoutMs: options.connectTimeoutMs,
      readTimeoutMs: options.readTimeoutMs,
      preserveHost: options.preserveHost,
      tls: options.tls ?? {},
      outcome: (status) => this.#targets.outcome(index, status),
    };
  }

  /** Whether a target takes requests now: healthy (when checked) and not ejected. For tests and diagnostics. */
  targetAvailable(index: number): boolean {
    return this.#targets.available(index);
  }

  /**
   * Proxies one request: the exchange streams the upstream's answer straight into `res`, with backpressure.
   * Never throws: every failure becomes a JSON answer or, once headers are out, a reset.
   */
  forward(request: ForwardRequest): void {
    if (responseClosed(request.res)) return;
    const key = request.deviceId ?? request.clientAddress;
    const first = this.#targets.pick(key);
    if (first === undefined) {
      // Every target is down (health checks) or ejected (outlier detection).
      const bytes = sendDeny(request.res, "no_healthy_upstream", request.startedAt);
      if (request.bytes !== undefined) request.bytes += bytes;
      return;
    }
    this.#targets.budget?.request();
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
    const trace = request.trace;
    if (trace !== undefined) {
      headers.traceparent = trace.traceparent;
      if (trace.tracestate !== undefined) headers.tracestate = trace.tracestate;
    }
    const withBody = hasRequestBody(req);
    // A streamed body cannot be replayed, so only bodiless requests move on to another target.
    const attempts = withBody ? 1 : 1 + Math.max(0, this.#options.retries);
    const retryOnStatus = !withBody && IDEMPOTENT.has(request.method);
    new Exchange(this.#targets, key, attempts, retryOnStatus, request, {
      method: request.method as Dispatcher.HttpMethod,
      path: request.path,
      headers,
      body: withBody ? req : null,
      ...(request.readTimeoutMs !== undefined
        ? { headersTimeout: request.readTimeoutMs, bodyTimeout: request.readTimeoutMs }
        : {}),
    }).start(first);
  }

  /** Stops the health checks, lets in-flight requests finish, then closes every connection. */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#targets.health?.stop();
    this.#observers.metrics?.releaseUpstream(this);
    this.#closed = Promise.all(this.#targets.pools.map((pool) => pool.close())).then(() => {});
    return this.#closed;
  }
}
