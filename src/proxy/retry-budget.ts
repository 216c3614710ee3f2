// A retry budget: retries may be at most a fraction of the requests of the last few seconds, so that a failing
// upstream sees a bounded extra load instead of every request multiplied by `retries`. A small floor of retries
// per window keeps a quiet service able to retry at all.

/** The window the budget is counted over, as buckets of one second. */
const BUCKETS = 10;
const BUCKET_MS = 1000;
/** Retries always allowed per window (when the ratio is above 0), whatever the traffic. */
export const MIN_RETRIES_PER_WINDOW = 3;

export class RetryBudget {
  readonly #ratio: number;
  readonly #requests = new Array<number>(BUCKETS).fill(0);
  readonly #retries = new Array<number>(BUCKETS).fill(0);
  /** The absolute bucket number (ms / BUCKET_MS) the arrays were last advanced to. */
  #bucket = 0;
  readonly #now: () => number;

  /** `ratio`: retries allowed per request, 0 to 1 (0: none). */
  constructor(ratio: number, now: () => number = () => performance.now()) {
    this.#ratio = ratio;
    this.#now = now;
    this.#bucket = Math.floor(now() / BUCKET_MS);
  }

  /** Clears the buckets that fell out of the window since the last call. */
  #advance(): number {
    const bucket = Math.floor(this.#now() / BUCKET_MS);
    const gap = Math.min(bucket - this.#bucket, BUCKETS);
    for (let i = 1; i <= gap; i++) {
      const slot = (this.#bucket + i) % BUCKETS;
      this.#requests[slot] = 0;
      this.#retries[slot] = 0;
    }
    if (bucket > this.#bucket) this.#bucket = bucket;
    return this.#bucket % BUCKETS;
  }

  /** Counts one request (its first attempt). */
  request(): void {
    const slot = this.#advance();
    this.#requests[slot] = (this.#requests[slot] ?? 0) + 1;
  }

  /** Whether the budget has room for one more retry (taking none). */
  canRetry(): boolean {
    if (this.#ratio <= 0) return false;
    this.#advance();
    const requests = this.#requests.reduce((a, b) => a + b, 0);
    const retries = this.#retries.reduce((a, b) => a + b, 0);
    return retries + 1 <= Math.max(MIN_RETRIES_PER_WINDOW, this.#ratio * requests);
  }

  /** Counts one retry made. */
  retried(): void {
    const slot = this.#advance();
    this.#retries[slot] = (this.#retries[slot] ?? 0) + 1;
  }

  /** Takes one retry from the budget: false (and nothing taken) when it is spent. */
  tryRetry(): boolean {
    if (!this.canRetry()) return false;
    this.retried();
    return true;
  }
}
