// GET /decisions/stream: the decisions as Server-Sent Events, as they are made. Each client gets
// `retry: 3000`, then `event: decision` frames matching its filter and a `: ping` comment every heartbeat.
// A client that does not keep up is never buffered for: while its socket refuses more (write() returned
// false) decisions are dropped and counted, and once it drains it gets `event: dropped` with the count.
// At most `maxStreams` are open (one more is answered 429); a disconnect ends the subscription.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { DecisionLog, DecisionRecord } from "../../gateway/decision-log.ts";
import { HttpError } from "../errors.ts";
import type { AdminMetrics } from "./admin-metrics.ts";
import { type DecisionFilter, matchesDecision } from "./decision-filter.ts";

export const RETRY_MS = 3000;
export const HEARTBEAT_MS = 15_000;
export const DEFAULT_MAX_STREAMS = 16;

export interface DecisionStreamsOptions {
  readonly decisions: Pick<DecisionLog, "onRecord">;
  readonly maxStreams?: number;
  readonly heartbeatMs?: number;
  readonly metrics?: AdminMetrics;
}

class Stream {
  readonly #res: ServerResponse;
  readonly #filter: DecisionFilter;
  readonly #metrics: AdminMetrics | undefined;
  /** For a stream opened with a console session: whether the session still lives. */
  readonly authorized: () => boolean;
  #blocked = false;
  #dropped = 0;

  constructor(
    res: ServerResponse,
    filter: DecisionFilter,
    metrics: AdminMetrics | undefined,
    authorized: () => boolean,
  ) {
    this.#res = res;
    this.#filter = filter;
    this.#metrics = metrics;
    this.authorized = authorized;
  }

  get open(): boolean {
    return !this.#res.destroyed && !this.#res.writableEnded;
  }

  /** `frame()` is called only when this stream takes the record, so a record is serialised at most once. */
  offer(record: DecisionRecord, frame: () => string): void {
    if (!this.open || !matchesDecision(this.#filter, record)) return;
    if (this.#blocked) {
      this.#dropped++;
      this.#metrics?.eventsDropped.inc();
      return;
    }
    this.write(frame());
  }

  ping(): void {
    if (!this.#blocked) this.write(": ping\n\n");
  }

  write(text: string): void {
    if (!this.open) return;
    if (this.#res.write(text)) return;
    this.#blocked = true;
    this.#res.once("drain", () => this.#drained());
  }

  #drained(): void {
    this.#blocked = false;
    if (this.#dropped === 0) return;
    const count = this.#dropped;
    this.#dropped = 0;
    this.write(`event: dropped\ndata: ${JSON.stringify({ count })}\n\n`);
  }

  end(): void {
    if (this.open) this.#res.end();
  }
}

export class DecisionStreams {
  readonly #decisions: Pick<DecisionLog, "onRecord">;
  readonly #maxStreams: number;
  readonly #heartbeatMs: number;
  readonly #metrics: AdminMetrics | undefined;
  readonly #streams = new Set<Stream>();
  #unsubscribe: (() => void) | undefined;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(options: DecisionStreamsOptions) {
    this.#decisions = options.decisions;
    this.#maxStreams = options.maxStreams ?? DEFAULT_MAX_STREAMS;
    this.#heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
    this.#metrics = options.metrics;
  }

  get size(): number {
    return this.#streams.size;
  }

  /**
   * Answers the request with a stream; 429 (thrown) when `maxStreams` are open already. `authorized` (a
   * stream opened with a console session) is asked at every heartbeat and by `endUnauthorized`: once the
   * session has ended (logout, expiry, eviction) the stream ends too.
   */
  open(
    req: IncomingMessage,
    res: ServerResponse,
    filter: DecisionFilter,
    authorized: () => boolean = () => true,
  ): void {
    if (this.#streams.size >= this.#maxStreams) {
      throw new HttpError(429, "Too many event streams", { headers: { "retry-after": "5" } });
    }
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      "x-accel-buffering": "no",
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    req.socket.setNoDelay(true);
    req.socket.setKeepAlive(true, 30_000);
    const stream = new Stream(res, filter, this.#metrics, authorized);
    this.#streams.add(stream);
    this.#metrics?.eventStreams.inc();
    res.once("close", () => this.#remove(stream));
    stream.write(`retry: ${RETRY_MS}\n\n`);
    this.#start();
  }

  /** Ends the streams whose session has ended (a logout). */
  endUnauthorized(): void {
    for (const stream of [...this.#streams]) {
      if (stream.authorized()) continue;
      stream.end();
      this.#remove(stream);
    }
  }

  /** Ends every stream (the admin listener closes). */
  closeAll(): void {
    for (const stream of [...this.#streams]) {
      stream.end();
      this.#remove(stream);
    }
  }

  #remove(stream: Stream): void {
    if (!this.#streams.delete(stream)) return;
    this.#metrics?.eventStreams.dec();
    if (this.#streams.size === 0) this.#stop();
  }

  #start(): void {
    this.#unsubscribe ??= this.#decisions.onRecord((record) => this.#publish(record));
    if (this.#heartbeat === undefined) {
      this.#heartbeat = setInterval(() => {
        this.endUnauthorized();
        for (const stream of this.#streams) stream.ping();
      }, this.#heartbeatMs);
      this.#heartbeat.unref();
    }
  }

  #stop(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
  }

  #publish(record: DecisionRecord): void {
    let frame: string | undefined;
    const make = () => {
      frame ??= `event: decision\ndata: ${JSON.stringify(record)}\n\n`;
      return frame;
    };
    for (const stream of this.#streams) stream.offer(record, make);
  }
}

export const MAX_EVENT_STREAMS_TEXT =
  "At most admin.console.maxEventStreams streams (default 16) are open at once; one more is answered 429.";
