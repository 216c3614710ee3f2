// The dedicated LISTEN connection of a PostgreSQL store: reconnects by itself with backoff, then says "resync".
//
// A notification sent while this connection is down is lost for good (PostgreSQL queues them only for
// connected listeners), so every reconnect after a drop is announced as a resync: caches flush and
// live connections are re-checked. A ping every pingIntervalMs catches half-open connections that
// never report an error (a cut network path), within pingIntervalMs + query_timeout.
import pg from "pg";
import { RESYNC } from "./change-hub.ts";
import { decodeChange, NOTIFY_CHANNEL } from "./postgres-rows.ts";
import type { DeviceChange } from "./types.ts";

export interface ListenerOptions {
  readonly pingIntervalMs: number;
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
}

export class PgChangeListener {
  readonly #config: pg.ClientConfig;
  readonly #schema: string;
  readonly #origin: string;
  readonly #emit: (change: DeviceChange) => void;
  readonly #state: (up: boolean, error?: unknown) => void;
  readonly #options: ListenerOptions;
  #client: pg.Client | undefined;
  #backoff: number;
  #timer: NodeJS.Timeout | undefined;
  #ping: NodeJS.Timeout | undefined;
  #stopped = false;
  /** Until the first attempt ends: its success is no reconnect, so no resync. */
  #first = true;

  constructor(
    config: pg.ClientConfig,
    schema: string,
    origin: string,
    emit: (change: DeviceChange) => void,
    state: (up: boolean, error?: unknown) => void,
    options: ListenerOptions,
  ) {
    this.#config = config;
    this.#schema = schema;
    this.#origin = origin;
    this.#emit = emit;
    this.#state = state;
    this.#options = options;
    this.#backoff = options.minBackoffMs;
  }

  get connected(): boolean {
    return this.#client !== undefined;
  }

  /** First connection; when it fails, retries continue in the background and this still resolves. */
  async start(): Promise<void> {
    if (this.#stopped || this.#client !== undefined || this.#timer !== undefined) return;
    await this.#connect();
    this.#ping ??= setInterval(() => this.#checkAlive(), this.#options.pingIntervalMs);
    this.#ping.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#ping);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    this.#timer = undefined;
    const client = new pg.Client(this.#config);
    client.on("error", (error) => this.#lost(client, error));
    client.on("end", () => this.#lost(client, new Error("LISTEN connection ended")));
    client.on("notification", (message) => {
      if (message.channel !== NOTIFY_CHANNEL) return;
      const change = decodeChange(this.#schema, this.#origin, message.payload);
      if (change === "resync") this.#emit(RESYNC);
      else if (change !== undefined) this.#emit(change);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (error) {
      this.#first = false;
      client.end().catch(() => undefined);
      this.#state(false, error);
      this.#schedule();
      return;
    }
    if (this.#stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#backoff = this.#options.minBackoffMs;
    this.#state(true);
    // Anything may have changed while no connection listened (nothing did before the first one).
    if (!this.#first) this.#emit(RESYNC);
    this.#first = false;
  }

  #lost(client: pg.Client, error: unknown): void {
    // Events of a client already given up on (or ended by stop) change nothing.
    if (client !== this.#client || this.#stopped) return;
    this.#client = undefined;
    client.end().catch(() => undefined);
    this.#state(false, error);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    // Full jitter, so that many nodes cut off together do not reconnect in lock step.
    const delay = Math.round(this.#backoff / 2 + (Math.random() * this.#backoff) / 2);
    this.#backoff = Math.min(this.#backoff * 2, this.#options.maxBackoffMs);
    this.#timer = setTimeout(() => void this.#connect(), delay);
    this.#timer.unref();
  }

  #checkAlive(): void {
    const client = this.#client;
    if (client === undefined) return;
    // query_timeout in the config bounds the wait on a half-open socket.
    client.query("SELECT 1").catch((error: unknown) => this.#lost(client, error));
  }
}
