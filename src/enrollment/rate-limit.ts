// Enrollment requests per device: a fixed window per key, in this process's memory, bounded in size so
// that many device ids cannot grow it without limit (the oldest windows go first).

const MAX_KEYS = 100_000;

export class WindowLimiter {
  readonly #requests: number;
  readonly #intervalMs: number;
  readonly #windows = new Map<string, { start: number; count: number }>();

  constructor(requests: number, intervalMs: number) {
    this.#requests = requests;
    this.#intervalMs = intervalMs;
  }

  /** Counts a request of `key`; returns the seconds to wait when it is over the limit, else undefined. */
  take(key: string, now: number): number | undefined {
    let window = this.#windows.get(key);
    if (window === undefined || now - window.start >= this.#intervalMs) {
      this.#windows.delete(key);
      window = { start: now, count: 0 };
      this.#windows.set(key, window);
      this.#trim(now);
    }
    if (window.count >= this.#requests) {
      return Math.max(1, Math.ceil((window.start + this.#intervalMs - now) / 1000));
    }
    window.count++;
    return undefined;
  }

  /** Gives back a request of `key` that did not count after all (a pending answer: the device waits as told). */
  refund(key: string): void {
    const window = this.#windows.get(key);
    if (window && window.count > 0) window.count--;
  }

  #trim(now: number): void {
    if (this.#windows.size <= MAX_KEYS) return;
    for (const [key, window] of this.#windows) {
      if (this.#windows.size <= MAX_KEYS) return;
      // Insertion order is window-start order: the first entries are the oldest.
      if (now - window.start >= this.#intervalMs || this.#windows.size > MAX_KEYS) this.#windows.delete(key);
    }
  }
}
