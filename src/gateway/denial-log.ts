// Log lines for refusals (denied requests, refused connections, failed handshakes), sampled per source: a
// client refused a thousand times a second must not write a thousand lines a second. Each source (the
// certificate's fingerprint, else the client's address) logs at most `perInterval` lines per `interval`;
// the rest are counted, and the source's next logged line says how many were held back.
import { Lru } from "../identity/lru.ts";
import type { Logger } from "./log.ts";

/** Sources remembered at once; beyond it the least recently refused one is forgotten (its count with it). */
const MAX_SOURCES = 10_000;

export type DenialEvent =
  | "request denied"
  | "request would be denied (report-only)"
  | "connection refused"
  | "handshake failed";

export interface DenialSampling {
  readonly intervalMs: number;
  /** Lines one source may log per interval; 0 logs none (they are still counted in metrics). */
  readonly perInterval: number;
}

interface Window {
  start: number;
  logged: number;
  suppressed: number;
}

export class DenialLog {
  readonly #logger: Logger;
  readonly #windows = new Lru<Window>(MAX_SOURCES);
  readonly #onSuppressed: (event: DenialEvent) => void;
  #sampling: DenialSampling;

  constructor(logger: Logger, sampling: DenialSampling, onSuppressed: (event: DenialEvent) => void) {
    this.#logger = logger;
    this.#sampling = sampling;
    this.#onSuppressed = onSuppressed;
  }

  /** A reload may change the sampling; counts so far are kept. */
  configure(sampling: DenialSampling): void {
    this.#sampling = sampling;
  }

  /** Logs `fields` at info unless `source` has used up its lines for this interval. */
  log(source: string, event: DenialEvent, fields: object, now = Date.now()): void {
    if (!this.#logger.isLevelEnabled("info")) return;
    let window = this.#windows.get(source);
    let heldBack = 0;
    if (window === undefined || now - window.start >= this.#sampling.intervalMs) {
      heldBack = window?.suppressed ?? 0;
      window = { start: now, logged: 0, suppressed: 0 };
      this.#windows.set(source, window);
    }
    if (window.logged >= this.#sampling.perInterval) {
      window.suppressed++;
      this.#onSuppressed(event);
      return;
    }
    window.logged++;
    this.#logger.info(heldBack > 0 ? { ...fields, suppressed: heldBack } : fields, event);
  }
}
