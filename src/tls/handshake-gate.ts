// Reconnect storms. When thousands of devices reconnect at once, a process that starts every handshake as
// it arrives works on all of them together: each one then takes as long as the whole storm, they all pass
// handshakeTimeout together and the work is thrown away (the devices retry: the storm never ends). So at
// most `maxConcurrent` handshakes of a listener run at once in a process; the connections beyond wait,
// unread past their first bytes, and start in the order they sent their ClientHello. Nothing is skipped:
// a waiting connection is only delayed, then gets the same handshake and the same checks.
//
// Limits of the waiting room (it must not be a cheaper way to hold the gateway than before):
//   * a connection that has sent nothing is closed `silentMs` after it was accepted (handshakeTimeout, as
//     Node would have done) and never takes a slot;
//   * a connection that has sent its first bytes waits at most `queuedMs`;
//   * a started handshake gives its slot back after `stallMs` even if unfinished (it goes on under Node's
//     handshakeTimeout), so clients that stall mid-handshake cannot hold the slots.
import type { Socket } from "node:net";

export interface HandshakeGateOptions {
  readonly maxConcurrent: number;
  readonly stallMs: number;
  readonly silentMs: number;
  readonly queuedMs: number;
  /** Starts the TLS handshake on an accepted connection (Node's own TLS connection listener). */
  start(socket: Socket): void;
  /** A waiting connection was closed: it sent nothing in time, or waited too long for a slot. */
  closed(why: "silent" | "queued"): void;
  /** How often the waiting room and the running handshakes are looked over, while there are any. */
  readonly sweepMs?: number;
}

interface Waiting {
  readonly socket: Socket;
  readonly since: number;
}

function ignore(): void {}

export class HandshakeGate {
  readonly #o: HandshakeGateOptions;
  /** Started handshakes holding a slot, with when they started. */
  readonly #running = new Map<Socket, number>();
  /** Accepted while every slot was taken, nothing read yet. */
  #silent: Waiting[] = [];
  /** Accepted while every slot was taken, their first bytes read: the next to start, oldest first. */
  #ready: Waiting[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: HandshakeGateOptions) {
    this.#o = options;
  }

  /** Handshakes holding a slot, and connections waiting for one. */
  get running(): number {
    return this.#running.size;
  }

  get waiting(): number {
    return this.#silent.length + this.#ready.length;
  }

  /** A connection was accepted: its handshake starts now, or once a slot is free. */
  offer(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const now = Date.now();
    if (this.#running.size < this.#o.maxConcurrent && this.waiting === 0) {
      this.#start(socket, now);
      return;
    }
    // Until its handshake starts, an error (a reset) on the bare socket is nobody else's to handle.
    socket.on("error", ignore);
    const entry: Waiting = { socket, since: now };
    this.#silent.push(entry);
    // A 'readable' listener reads the first bytes into the socket's buffer (up to its high-water mark, then
    // TCP holds the rest); Node's TLS socket takes them over when the handshake starts.
    socket.once("readable", () => this.#arrived(entry));
    this.#arm();
  }

  /** The handshake finished, failed or its connection closed: its slot goes to the next in line. */
  finished(socket: Socket | undefined): void {
    if (socket !== undefined && this.#running.delete(socket)) this.#startWaiting(Date.now());
  }

  /** Closes every waiting connection; later offers are closed at once. */
  close(): void {
    this.#closed = true;
    for (const { socket } of [...this.#silent, ...this.#ready]) socket.destroy();
    this.#silent = [];
    this.#ready = [];
    this.#running.clear();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #arrived(entry: Waiting): void {
    const at = this.#silent.indexOf(entry);
    if (at < 0) return;
    this.#silent.splice(at, 1);
    this.#ready.push(entry);
    this.#startWaiting(Date.now());
  }

  #start(socket: Socket, now: number): void {
    this.#running.set(socket, now);
    this.#arm();
    this.#o.start(socket);
  }

  #startWaiting(now: number): void {
    while (this.#running.size < this.#o.maxConcurrent) {
      const next = this.#ready.shift();
      if (next === undefined) return;
      if (next.socket.destroyed) continue;
      next.socket.removeAllListeners("readable");
      next.socket.off("error", ignore);
      this.#start(next.socket, now);
    }
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => this.#sweep(), this.#o.sweepMs ?? 250);
    this.#timer.unref();
  }

  #sweep(): void {
    const now = Date.now();
    const { stallMs, silentMs, queuedMs } = this.#o;
    for (const [socket, since] of this.#running)
      if (socket.destroyed || now - since >= stallMs) this.#running.delete(socket);
    this.#silent = this.#expire(this.#silent, now - silentMs, "silent");
    this.#ready = this.#expire(this.#ready, now - queuedMs, "queued");
    this.#startWaiting(now);
    if (this.#running.size === 0 && this.waiting === 0) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  #expire(list: Waiting[], before: number, why: "silent" | "queued"): Waiting[] {
    const kept: Waiting[] = [];
    for (const entry of list) {
      if (entry.socket.destroyed) continue;
      if (entry.since > before) kept.push(entry);
      else {
        entry.socket.destroy();
        this.#o.closed(why);
      }
    }
    return kept;
  }
}
