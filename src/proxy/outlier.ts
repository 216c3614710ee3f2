// Passive outlier detection: a target that fails this many times in a row (a 5xx answer, or no answer at all:
// refused, reset, timed out) is ejected for a cool-down, then gets requests again. One success resets its count.

export interface OutlierOptions {
  /** Failures in a row that eject a target. */
  readonly consecutiveFailures: number;
  /** How long an ejected target gets no requests. */
  readonly ejectionTimeMs: number;
}

export class OutlierDetector {
  readonly #options: OutlierOptions;
  readonly #failures: number[];
  /** performance.now() until which a target is ejected; 0 when it is not. */
  readonly #ejectedUntil: number[];
  readonly #onEject: (index: number, failures: number) => void;
  readonly #now: () => number;

  constructor(
    count: number,
    options: OutlierOptions,
    onEject: (index: number, failures: number) => void = () => {},
    now: () => number = () => performance.now(),
  ) {
    this.#options = options;
    this.#failures = new Array<number>(count).fill(0);
    this.#ejectedUntil = new Array<number>(count).fill(0);
    this.#onEject = onEject;
    this.#now = now;
  }

  /** The target answered without a 5xx. */
  success(index: number): void {
    this.#failures[index] = 0;
  }

  /** The target answered a 5xx or not at all. */
  failure(index: number): void {
    if (this.ejected(index)) return; // a request that was already under way when it was ejected
    const failures = (this.#failures[index] ?? 0) + 1;
    this.#failures[index] = failures;
    if (failures < this.#options.consecutiveFailures) return;
    this.#failures[index] = 0;
    this.#ejectedUntil[index] = this.#now() + this.#options.ejectionTimeMs;
    this.#onEject(index, failures);
  }

  /** Whether the target is in its cool-down. */
  ejected(index: number): boolean {
    const until = this.#ejectedUntil[index] ?? 0;
    if (until === 0) return false;
    if (this.#now() < until) return true;
    this.#ejectedUntil[index] = 0;
    return false;
  }
}
