// Fixed windows in Redis, shared by every gateway using the same Redis and prefix: one Lua script counts and
// starts the window atomically (INCR, then PEXPIRE on the first request), so concurrent gateways never
// both see a count under the limit for the same slot. Every command is bounded by the store's `timeout`;
// while Redis is away commands fail fast instead of queueing.
import { Redis } from "ioredis";
import type { Hit } from "./window.ts";

const SCRIPT = `
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
`;

export type RedisHealth = "ok" | "down";

export interface RedisWindowsOptions {
  readonly url: string;
  readonly timeoutMs: number;
  readonly windowMs: number;
  /** Called when Redis goes down or comes back. */
  readonly onHealth?: (health: RedisHealth, err?: unknown) => void;
}

type Counter = Redis & { portcullisHit(key: string, windowMs: number): Promise<[number, number]> };

export class RedisWindows {
  readonly #redis: Counter;
  readonly #timeoutMs: number;
  readonly #windowMs: number;
  readonly #onHealth: RedisWindowsOptions["onHealth"];
  #health: RedisHealth = "ok";
  #closed = false;

  constructor(options: RedisWindowsOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#windowMs = options.windowMs;
    this.#onHealth = options.onHealth;
    this.#redis = new Redis(options.url, {
      commandTimeout: options.timeoutMs,
      connectTimeout: Math.max(1000, options.timeoutMs),
      maxRetriesPerRequest: 0,
      // Reconnect forever, backing off to 2 s: a Redis back from an outage is used again.
      retryStrategy: (times) => Math.min(times * 100, 2000),
      lazyConnect: false,
    }) as Counter;
    this.#redis.defineCommand("portcullisHit", { numberOfKeys: 1, lua: SCRIPT });
    // Without a listener an unreachable Redis would be an uncaught 'error'.
    this.#redis.on("error", (err: unknown) => this.#set("down", err));
    this.#redis.on("ready", () => this.#set("ok"));
  }

  get health(): RedisHealth {
    return this.#health;
  }

  async hit(key: string): Promise<Hit> {
    // Known down and not reconnected: fail at once rather than queue commands for a Redis that may never
    // answer (a hung peer would otherwise grow the offline queue with every request).
    if (this.#health === "down" && this.#redis.status !== "ready") {
      throw new Error(`redis is ${this.#redis.status}`);
    }
    // The command's own timeout covers a queued command; this one also covers a connect that never ends.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`redis did not answer within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
    });
    try {
      const [count, ttl] = await Promise.race([this.#redis.portcullisHit(key, this.#windowMs), timeout]);
      this.#set("ok");
      return { count: Number(count), resetMs: Number(ttl) };
    } catch (err) {
      this.#set("down", err);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  #set(health: RedisHealth, err?: unknown): void {
    if (this.#closed || health === this.#health) return;
    this.#health = health;
    this.#onHealth?.(health, err);
  }

  async close(): Promise<void> {
    this.#closed = true;
    try {
      await Promise.race([this.#redis.quit(), new Promise((r) => setTimeout(r, 1000).unref())]);
    } catch {
      // Already gone.
    }
    this.#redis.disconnect();
  }
}
