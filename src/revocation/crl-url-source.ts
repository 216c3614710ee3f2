// One CRL URL (from config or a certificate's CRL Distribution Points): fetched with bounded time and size,
// refreshed on the configured interval and before the CRL's nextUpdate.
import type { Dispatcher } from "undici";
import type { Certificate } from "../identity/certificate.ts";
import type { ParsedCrl } from "../identity/revocation/crl.ts";
import { checkCrls } from "./crl-loader.ts";
import { fetchBytes } from "./http-fetch.ts";
import type { RevocationLogger } from "./logger.ts";

export interface CrlUrlSourceOptions {
  readonly url: string;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly refreshIntervalMs: number;
  readonly logger: RevocationLogger;
  readonly now: () => Date;
  readonly dispatcher?: Dispatcher;
  /** Called with the CRLs of each good fetch. */
  readonly onLoad: (crls: readonly ParsedCrl[]) => void;
}

/** After a failure (or a CRL already stale when fetched), ask again after this long at most. */
export const RETRY_MS = 60_000;
/** Never fetch the same URL more often than this, whatever requests come in. */
export const MIN_INTERVAL_MS = 10_000;
/** setTimeout's largest delay. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * When to fetch again after a fetch at `now`: on the refresh interval, and ahead of the CRL's nextUpdate by
 * a tenth of its validity (at most 5 minutes) so that a fresh CRL is in place before the old one lapses.
 */
export function nextRefreshDelay(
  crls: readonly ParsedCrl[] | undefined,
  refreshIntervalMs: number,
  now: Date,
): number {
  const cap = Math.min(refreshIntervalMs, MAX_DELAY_MS);
  if (crls === undefined || crls.length === 0) return Math.min(cap, RETRY_MS);
  let delay = cap;
  for (const crl of crls) {
    if (crl.nextUpdate === undefined) continue;
    const lifetime = crl.nextUpdate.getTime() - crl.thisUpdate.getTime();
    const margin = Math.min(5 * 60_000, lifetime / 10);
    const until = crl.nextUpdate.getTime() - margin - now.getTime();
    delay = Math.min(delay, until > 0 ? until : RETRY_MS);
  }
  return Math.max(delay, Math.min(cap, MIN_INTERVAL_MS));
}

export class CrlUrlSource {
  readonly url: string;
  readonly #options: CrlUrlSourceOptions;
  /** CAs the CRLs may come from: the trust stores' CAs, plus issuers whose certificates name this URL. */
  readonly #cas = new Map<string, Certificate>();
  #crls: readonly ParsedCrl[] | undefined;
  #lastAttempt = Number.NEGATIVE_INFINITY;
  #failed = false;
  #inFlight: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: CrlUrlSourceOptions, cas: readonly Certificate[]) {
    this.url = options.url;
    this.#options = options;
    for (const ca of cas) this.addIssuer(ca);
  }

  addIssuer(ca: Certificate): void {
    this.#cas.set(ca.fingerprint, ca);
  }

  /**
   * Fetches now unless a fetch is running (then waits for it) or, for a request-driven refresh, one was
   * tried under MIN_INTERVAL_MS ago. The schedule itself (`scheduled`) always fetches: it honours the
   * configured refreshInterval even when that is shorter, and it must never stop rescheduling.
   */
  refresh(scheduled = false): Promise<void> {
    if (this.#inFlight) return this.#inFlight;
    if (this.#closed) return Promise.resolve();
    if (!scheduled && Date.now() - this.#lastAttempt < MIN_INTERVAL_MS) return Promise.resolve();
    this.#inFlight = this.#fetch().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #fetch(): Promise<void> {
    const { logger, now } = this.#options;
    this.#lastAttempt = Date.now();
    clearTimeout(this.#timer);
    try {
      const body = await fetchBytes(this.url, {
        timeoutMs: this.#options.timeoutMs,
        maxBytes: this.#options.maxBytes,
        dispatcher: this.#options.dispatcher,
        headers: { accept: "application/pkix-crl, application/x-pkcs7-crl, */*" },
      });
      const { crls, warnings } = checkCrls(body, `CRL URL ${this.url}`, [...this.#cas.values()], now());
      if (this.#closed) return;
      for (const warning of warnings) logger.warn({ crlUrl: this.url }, warning);
      this.#crls = crls;
      this.#failed = false;
      this.#options.onLoad(crls);
    } catch (err) {
      this.#failed = true;
      if (this.#closed) return;
      logger.error(
        { crlUrl: this.url, err: (err as Error).message },
        "CRL fetch failed; keeping the CRLs last fetched from it",
      );
    } finally {
      this.#schedule();
    }
  }

  #schedule(): void {
    if (this.#closed) return;
    const delay = nextRefreshDelay(
      this.#failed ? undefined : this.#crls,
      this.#options.refreshIntervalMs,
      this.#options.now(),
    );
    this.#timer = setTimeout(() => void this.refresh(true), delay);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
