// Active health checks: each target is probed every `interval`; `unhealthyThreshold` failed probes in a row
// take it out of balancing, `healthyThreshold` good ones in a row bring it back. Targets start healthy, so that
// a start or a reload never waits for the first round of probes.

export interface HealthCheckOptions {
  /** Path (and query) probed with a GET. */
  readonly path: string;
  readonly intervalMs: number;
  /** Limit for one probe's answer, headers and body. */
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  /** Statuses that count as healthy; absent means any 2xx or 3xx. */
  readonly expectStatus?: readonly number[];
}

/** One probe: resolves to the answer's status; rejects (or times out) when there was no answer. */
export type Probe = (index: number, signal: AbortSignal) => Promise<number>;

interface TargetHealth {
  healthy: boolean;
  /** Probes in a row that disagree with `healthy`. */
  streak: number;
  timer: NodeJS.Timeout | undefined;
  abort: AbortController | undefined;
}

export class HealthChecker {
  readonly #options: HealthCheckOptions;
  readonly #probe: Probe;
  readonly #onChange: (index: number, healthy: boolean, detail: string) => void;
  readonly #targets: TargetHealth[];
  #stopped = false;

  constructor(
    count: number,
    options: HealthCheckOptions,
    probe: Probe,
    onChange: (index: number, healthy: boolean, detail: string) => void,
  ) {
    this.#options = options;
    this.#probe = probe;
    this.#onChange = onChange;
    this.#targets = Array.from({ length: count }, () => ({
      healthy: true,
      streak: 0,
      timer: undefined,
      abort: undefined,
    }));
  }

  healthy(index: number): boolean {
    return this.#targets[index]?.healthy ?? false;
  }

  /** Probes every target now, then every interval. */
  start(): void {
    this.#targets.forEach((_, index) => {
      this.#schedule(index, 0);
    });
  }

  stop(): void {
    this.#stopped = true;
    for (const target of this.#targets) {
      clearTimeout(target.timer);
      target.abort?.abort();
    }
  }

  #schedule(index: number, delayMs: number): void {
    const target = this.#targets[index];
    if (this.#stopped || !target) return;
    target.timer = setTimeout(() => {
      target.timer = undefined;
      void this.#run(index);
    }, delayMs);
    target.timer.unref();
  }

  #passes(status: number): boolean {
    const expected = this.#options.expectStatus;
    return expected ? expected.includes(status) : status >= 200 && status < 400;
  }

  async #run(index: number): Promise<void> {
    const target = this.#targets[index] as TargetHealth;
    const abort = new AbortController();
    target.abort = abort;
    const timer = setTimeout(() => abort.abort(new Error("health check timed out")), this.#options.timeoutMs);
    let ok: boolean;
    let detail: string;
    try {
      const status = await this.#probe(index, abort.signal);
      ok = this.#passes(status);
      detail = `status ${status}`;
    } catch (err) {
      ok = false;
      detail = abort.signal.aborted ? "timed out" : err instanceof Error ? err.message : String(err);
    } finally {
      clearTimeout(timer);
      target.abort = undefined;
    }
    if (this.#stopped) return;
    this.#record(index, ok, detail);
    this.#schedule(index, this.#options.intervalMs);
  }

  /** Counts one probe's outcome: the target changes sides after a threshold of outcomes in a row. */
  #record(index: number, ok: boolean, detail: string): void {
    const target = this.#targets[index] as TargetHealth;
    if (ok === target.healthy) {
      target.streak = 0;
      return;
    }
    target.streak++;
    const needed = ok ? this.#options.healthyThreshold : this.#options.unhealthyThreshold;
    if (target.streak < needed) return;
    target.healthy = ok;
    target.streak = 0;
    this.#onChange(index, ok, detail);
  }
}
