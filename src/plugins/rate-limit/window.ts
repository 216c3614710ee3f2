// The counting the rate-limit plugin does, store aside: a fixed window per key that starts at the key's first
// request, the key a request is counted under, and the headers of draft-ietf-httpapi-ratelimit-headers.

/** What a store answers for one counted request: the count in the current window and the time it has left. */
export interface Hit {
  readonly count: number;
  readonly resetMs: number;
}

export interface Verdict {
  readonly allowed: boolean;
  readonly headers: Record<string, string>;
}

/**
 * The key of a request: `d:<deviceId>` per device, `a:<address>` per client address (also for `by: device`
 * when the request has no device).
 */
export function keyFor(by: "device" | "address", deviceId: string | undefined, address: string): string {
  if (by === "device" && deviceId !== undefined && deviceId !== "") return `d:${deviceId}`;
  return `a:${address}`;
}

/**
 * The verdict for a hit: allowed while the count is within the limit. Every answer carries `RateLimit-Policy:
 * <limit>;w=<window s>` and `RateLimit: limit=<limit>, remaining=<n>, reset=<s>`; a refusal `Retry-After` too.
 */
export function judge(hit: Hit, limit: number, windowMs: number): Verdict {
  const remaining = Math.max(0, limit - hit.count);
  const reset = Math.max(0, Math.ceil(hit.resetMs / 1000));
  const headers: Record<string, string> = {
    "ratelimit-policy": `${limit};w=${Math.ceil(windowMs / 1000)}`,
    ratelimit: `limit=${limit}, remaining=${remaining}, reset=${reset}`,
  };
  const allowed = hit.count <= limit;
  if (!allowed) headers["retry-after"] = String(Math.max(1, reset));
  return { allowed, headers };
}

/**
 * Fixed windows in this process, at most `maxKeys` of them: a Map in order of window start, so the entry
 * dropped to make room is the oldest window (most likely expired or about to be).
 */
export class MemoryWindows {
  readonly #windows = new Map<string, { count: number; endsAt: number }>();
  readonly #maxKeys: number;
  readonly #windowMs: number;

  constructor(windowMs: number, maxKeys: number) {
    this.#windowMs = windowMs;
    this.#maxKeys = maxKeys;
  }

  get size(): number {
    return this.#windows.size;
  }

  hit(key: string, now: number): Hit {
    const current = this.#windows.get(key);
    if (current !== undefined && current.endsAt > now) {
      current.count++;
      return { count: current.count, resetMs: current.endsAt - now };
    }
    // A new window goes to the end of the order.
    if (current !== undefined) this.#windows.delete(key);
    const fresh = { count: 1, endsAt: now + this.#windowMs };
    this.#windows.set(key, fresh);
    this.#evict(now);
    return { count: 1, resetMs: this.#windowMs };
  }

  /** Drops expired windows from the front, then the oldest ones while over the cap. */
  #evict(now: number): void {
    for (const [key, w] of this.#windows) {
      if (this.#windows.size <= this.#maxKeys && w.endsAt > now) break;
      this.#windows.delete(key);
    }
  }
}
