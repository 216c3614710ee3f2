// Messages between the benchmark and its load-generator child process (bench/lib/loadgen.ts), over IPC.

/** Where and as whom the load generator connects. */
export interface Target {
  readonly port: number;
  /** SNI and Host header. */
  readonly servername: string;
  readonly path: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** CA that signed the server certificate. */
  readonly caFile: string;
}

/**
 * handshake: a new TLS connection per request (no session resumption), `Connection: close`.
 * keepalive: `concurrency` persistent HTTP/1.1 connections, one request at a time on each.
 * h2: `concurrency` persistent HTTP/2 connections (ALPN h2, node:http2), one stream at a time on each.
 */
export type LoadMode = "handshake" | "keepalive" | "h2";

export interface RunRequest {
  readonly kind: "run";
  readonly mode: LoadMode;
  readonly target: Target;
  readonly concurrency: number;
  readonly durationMs: number;
  /** Record per-request latency (keepalive, h2). */
  readonly latency: boolean;
  /**
   * keepalive, h2: leave the connections open at the end (idle) for the next run on the same target to
   * start on, so that its measured time holds no handshakes (a warm-up). Without it, a run closes them.
   */
  readonly keepOpen?: boolean;
}

/** Opens `count` TLS connections (no request sent) and keeps them open until "close". */
export interface OpenRequest {
  readonly kind: "open";
  readonly target: Target;
  readonly count: number;
}

export interface CloseRequest {
  readonly kind: "close";
}

export type LoadgenRequest = RunRequest | OpenRequest | CloseRequest;

export interface RunResult {
  readonly kind: "result";
  readonly elapsedMs: number;
  /** Completed attempts, by outcome: an HTTP status ("200", "401") or "tls:<error code>". */
  readonly outcomes: Record<string, number>;
  readonly completed: number;
  /** Latency percentiles in ms (keepalive and h2 with latency on). */
  readonly p50Ms?: number;
  readonly p99Ms?: number;
}

export interface OpenResult {
  readonly kind: "opened";
  readonly open: number;
  readonly failed: number;
  readonly elapsedMs: number;
}

export interface Closed {
  readonly kind: "closed";
  /** Connections of the last "open" that the server had not closed by then. */
  readonly stillOpen: number;
}

export interface LoadgenError {
  readonly kind: "error";
  readonly message: string;
}

export type LoadgenReply = RunResult | OpenResult | Closed | LoadgenError;
