// Messages between a fleet benchmark and its device-simulating children (bench/lib/fleet-client.ts), over IPC.

/** Where and as whom the simulated devices connect. */
export interface FleetTarget {
  readonly port: number;
  /** SNI and Host / :authority. */
  readonly servername: string;
  readonly path: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** CA that signed the server certificate. */
  readonly caFile: string;
  readonly protocol: "http/1.1" | "h2";
  /** False: connect only (handshake, and the HTTP/2 preface), no request. */
  readonly request?: boolean;
}

/**
 * Opens `count` devices: each makes a full mTLS handshake and one request, then stays connected and idle
 * (on top of those already held). At most `concurrency` are connecting at any time.
 */
export interface OpenDevices {
  readonly kind: "open";
  readonly target: FleetTarget;
  readonly count: number;
  readonly concurrency: number;
  /** Loopback source addresses the devices bind to in turn (each has its own ephemeral port range). */
  readonly localAddresses: readonly string[];
  /** Per-device deadline for handshake + request. */
  readonly timeoutMs: number;
}

/**
 * The first `count` held devices drop their connection, then all reconnect at once (no concurrency cap),
 * each with a new handshake and one request: full handshakes, or offering the TLS session each got last.
 */
export interface StormDevices {
  readonly kind: "storm";
  readonly count: number;
  readonly resume: boolean;
  readonly timeoutMs: number;
}

export interface StatusRequest {
  readonly kind: "status";
}

export interface CloseDevices {
  readonly kind: "close";
}

export type FleetRequest = OpenDevices | StormDevices | StatusRequest | CloseDevices;

/** What a batch of connection attempts came to. */
export interface Attempts {
  readonly ok: number;
  readonly failed: number;
  /** Failures by cause: an HTTP status other than 200, "tls:<code>", "timeout", "closed". */
  readonly failures: Record<string, number>;
  /** Connections on which the server resumed the offered session. */
  readonly resumed: number;
  readonly elapsedMs: number;
  /** Per-device time from connect to the answer, in ms (0.1 ms steps), in no particular order. */
  readonly times: number[];
}

export interface Opened extends Attempts {
  readonly kind: "opened";
}

export interface Stormed extends Attempts {
  readonly kind: "stormed";
}

export interface FleetStatus {
  readonly kind: "status";
  /** Devices connected right now. */
  readonly connected: number;
  /** Connections the server closed after they were established. */
  readonly dropped: number;
  readonly rssKiB: number;
}

export interface FleetClosed {
  readonly kind: "closed";
}

export interface FleetError {
  readonly kind: "error";
  readonly message: string;
}

export type FleetReply = Opened | Stormed | FleetStatus | FleetClosed | FleetError;
