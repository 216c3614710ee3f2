// The TLS handshake deadline, counted in the client's time. Node refuses a handshake that has not finished
// `handshakeTimeout` after the connection arrived. In a reconnect storm the wait is the gateway's own: every
// device's bytes sit unread while this process works through the handshakes that arrived before, so devices
// that did nothing wrong were refused (the storm of 10,000 lost 675). Here, when Node's timer fires, the time
// this process's event loop was busy since the connection arrived does not count against the client: the
// deadline moves on by that much, up to `handshakeTimeoutMax` in all. A client that stalls while the gateway
// idles is refused at `handshakeTimeout`, as before.
import { performance } from "node:perf_hooks";
import { TLSSocket } from "node:tls";

export interface HandshakeDeadlineLimits {
  readonly handshakeTimeout: number;
  readonly handshakeTimeoutMax: number;
}

export interface HandshakeDeadlineHooks {
  /** The listener's limits now (the maximum follows reloads; Node read handshakeTimeout at creation). */
  limits(): HandshakeDeadlineLimits;
  /** A handshake the gateway's own load stretched past handshakeTimeout. */
  extended(): void;
  /** A handshake refused at handshakeTimeoutMax although the client was not the slow side. */
  refusedAtMax(): void;
}

/** The least a deadline moves on by: the busy time is sampled, and a timer every few ms would be a load of its own. */
const MIN_EXTENSION_MS = 250;

/**
 * What happens when a handshake's timer fires: `elapsedMs` since the connection arrived, of which the event
 * loop was busy `busyMs`. A number: wait that much longer; "client": the client had its handshakeTimeout;
 * "max": handshakeTimeoutMax is reached.
 */
export function deadlineVerdict(
  elapsedMs: number,
  busyMs: number,
  limits: HandshakeDeadlineLimits,
): number | "client" | "max" {
  const clientMs = elapsedMs - Math.min(busyMs, elapsedMs);
  // A loop that was busy for less than this (its own timers, a few requests) owes the client nothing.
  if (limits.handshakeTimeout - clientMs < MIN_EXTENSION_MS) return "client";
  if (elapsedMs >= limits.handshakeTimeoutMax) return "max";
  const wait = Math.min(limits.handshakeTimeout - clientMs, limits.handshakeTimeoutMax - elapsedMs);
  return Math.max(wait, MIN_EXTENSION_MS);
}

/**
 * The event loop's busy time, sampled (cumulative, from `eventLoopUtilization`) so that the busy time between
 * any past moment and now can be read. One process-wide sampler, unref'd; samples older than the window
 * count as unknown (not busy): a handshake is then judged on the time known.
 */
export class LoadClock {
  readonly #times: Float64Array;
  readonly #busy: Float64Array;
  #next = 0;
  #count = 0;
  readonly #read: () => { now: number; busy: number };

  constructor(
    capacity = 512,
    read: () => { now: number; busy: number } = () => ({
      now: performance.now(),
      busy: performance.eventLoopUtilization().active,
    }),
  ) {
    this.#times = new Float64Array(capacity);
    this.#busy = new Float64Array(capacity);
    this.#read = read;
  }

  sample(): void {
    const { now, busy } = this.#read();
    this.#times[this.#next] = now;
    this.#busy[this.#next] = busy;
    this.#next = (this.#next + 1) % this.#times.length;
    this.#count = Math.min(this.#count + 1, this.#times.length);
  }

  /** Busy milliseconds between `since` (a performance.now() time) and now; also the time now. */
  busySince(since: number): { now: number; busy: number } {
    const current = this.#read();
    const capacity = this.#times.length;
    // The newest sample at or before `since` (the oldest one when all are later: time before it is unknown).
    let base: number | undefined;
    for (let i = 1; i <= this.#count; i++) {
      const slot = (this.#next - i + capacity) % capacity;
      base = this.#busy[slot] as number;
      if ((this.#times[slot] as number) <= since) break;
    }
    return { now: current.now, busy: base === undefined ? 0 : current.busy - base };
  }
}

const SAMPLE_EVERY_MS = 200;
let clock: LoadClock | undefined;

function processClock(): LoadClock {
  if (!clock) {
    const created = new LoadClock();
    created.sample();
    setInterval(() => created.sample(), SAMPLE_EVERY_MS).unref();
    clock = created;
  }
  return clock;
}

const kHooks = Symbol("portcullis.handshakeDeadline");
const kStartedAt = Symbol("portcullis.handshakeStartedAt");

interface ServerCarrier {
  [kHooks]?: HandshakeDeadlineHooks;
}
interface SocketInternals {
  _tlsOptions?: { server?: ServerCarrier; handshakeTimeout?: number };
  _handleTimeout(): void;
  [kStartedAt]?: number;
}

let installed = false;

/**
 * Node arms a server-side TLSSocket's handshake timer with the prototype's `_handleTimeout` (and removes it by
 * the same function once the handshake is done); wrapping it there reaches every handshake of a server that
 * carries hooks, and leaves every other TLS socket (clients, other servers) to Node's own behaviour.
 */
function install(): void {
  if (installed) return;
  const prototype = TLSSocket.prototype as unknown as SocketInternals;
  const nodeTimeout = prototype._handleTimeout;
  if (typeof nodeTimeout !== "function") {
    throw new Error("this Node.js has no TLSSocket#_handleTimeout: the handshake deadline cannot be applied");
  }
  prototype._handleTimeout = function (this: SocketInternals & TLSSocket) {
    const hooks = this._tlsOptions?.server?.[kHooks];
    if (hooks && !this.destroyed) {
      const limits = hooks.limits();
      // The first firing is handshakeTimeout after the connection arrived (later, if the loop was busy).
      const startedAt = this[kStartedAt] ?? performance.now() - limits.handshakeTimeout;
      const { now, busy } = processClock().busySince(startedAt);
      const verdict = deadlineVerdict(now - startedAt, busy, limits);
      if (typeof verdict === "number") {
        this[kStartedAt] = startedAt;
        hooks.extended();
        this.setTimeout(verdict, this._handleTimeout);
        return;
      }
      if (verdict === "max") hooks.refusedAtMax();
      nodeTimeout.call(this);
      // Node reports the timeout (tlsClientError) but leaves a plain TLS server's socket open.
      this.destroy();
      return;
    }
    nodeTimeout.call(this);
  };
  installed = true;
}

/** Applies the deadline to `server`'s handshakes (created with a handshakeTimeout > 0). */
export function applyHandshakeDeadline(server: object, hooks: HandshakeDeadlineHooks): void {
  install();
  processClock();
  (server as ServerCarrier)[kHooks] = hooks;
}
