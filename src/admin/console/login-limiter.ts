// Failed console logins per source address: at most `limit` in a fixed window (10 a minute by default);
// past it every attempt from that address is answered 429 until the window ends. Memory is bounded: the
// table holds at most `maxAddresses` (expired entries first, then the oldest, are dropped).

export interface LoginLimits {
  readonly limit: number;
  readonly windowMs: number;
  readonly maxAddresses: number;
}

export const DEFAULT_LOGIN_LIMITS: LoginLimits = { limit: 10, windowMs: 60_000, maxAddresses: 10_000 };

interface Window {
  readonly start: number;
  failures: number;
}

export class LoginLimiter {
  readonly #limits: LoginLimits;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();

  constructor(limits: LoginLimits = DEFAULT_LOGIN_LIMITS, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  /** Seconds until `address` may try again; undefined when it may now. */
  retryAfter(address: string): number | undefined {
    const window = this.#current(address);
    if (window === undefined || window.failures < this.#limits.limit) return undefined;
    return Math.max(1, Math.ceil((window.start + this.#limits.windowMs - this.#now()) / 1000));
  }

  fail(address: string): void {
    const window = this.#current(address);
    if (window !== undefined) {
      window.failures++;
      return;
    }
    if (this.#windows.size >= this.#limits.maxAddresses) this.#makeRoom();
    this.#windows.set(address, { start: this.#now(), failures: 1 });
  }

  #current(address: string): Window | undefined {
    const window = this.#windows.get(address);
    if (window === undefined) return undefined;
    if (this.#now() - window.start >= this.#limits.windowMs) {
      this.#windows.delete(address);
      return undefined;
    }
    return window;
  }

  #makeRoom(): void {
    const now = this.#now();
    for (const [address, window] of this.#windows) {
      if (now - window.start >= this.#limits.windowMs) this.#windows.delete(address);
    }
    if (this.#windows.size < this.#limits.maxAddresses) return;
    const oldest = this.#windows.keys().next().value;
    if (oldest !== undefined) this.#windows.delete(oldest);
  }
}
