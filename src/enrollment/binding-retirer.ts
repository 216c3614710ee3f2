// Removes superseded certificates' bindings when their overlap ends: a timer set to the earliest pending
// retirement (moved earlier by this node's issuances), and a periodic look for retirements other nodes set.
// Removing a binding is a device change, so every node refuses the old certificate from then on.
import type { Logger } from "../gateway/log.ts";
import type { EnrollmentStore } from "../registry/enrollment-types.ts";

/** How often the store is asked for retirements another node scheduled. */
const POLL_MS = 30_000;
/** setTimeout's largest delay. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class BindingRetirer {
  readonly #store: EnrollmentStore;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #due: number | undefined;
  #closed = false;
  #running: Promise<void> = Promise.resolve();

  constructor(store: EnrollmentStore, logger: Logger) {
    this.#store = store;
    this.#logger = logger;
  }

  /** Retires what is due now and schedules the next; call once at start. */
  start(): void {
    this.#run();
  }

  /** A retirement was scheduled at `at` (by this node). */
  retiring(at: Date): void {
    if (this.#due === undefined || at.getTime() < this.#due) this.#schedule(at.getTime());
  }

  close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    return this.#running;
  }

  #schedule(due: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    const delay = Math.min(Math.max(0, due - Date.now()), POLL_MS, MAX_DELAY_MS);
    this.#due = due;
    this.#timer = setTimeout(() => this.#run(), delay);
    this.#timer.unref();
  }

  #run(): void {
    this.#running = this.#running.then(async () => {
      if (this.#closed) return;
      let next: Date | undefined;
      try {
        const removed = await this.#store.retireBindings(new Date());
        if (removed > 0) this.#logger.info({ removed }, "superseded certificate bindings retired");
        next = await this.#store.nextBindingRetirement();
      } catch (err) {
        this.#logger.warn({ err: (err as Error).message }, "retiring certificate bindings failed; retrying");
      }
      this.#due = undefined;
      this.#schedule(next?.getTime() ?? Date.now() + POLL_MS);
    });
  }
}
