// GET /decisions/summary: decisions per minute (allow, deny, deny reasons) over the last hour, from a ring of
// 60 one-minute buckets fed by DecisionLog.onRecord. Memory is bounded: 60 buckets, each with at most one
// counter per reason code (unknown reasons count as "other").
import type { DecisionLog, DecisionRecord } from "../../gateway/decision-log.ts";
import { isReasonCode } from "../../identity/reasons.ts";

export const SUMMARY_MINUTES = 60;
const MINUTE_MS = 60_000;

interface Bucket {
  minute: number;
  allow: number;
  deny: number;
  reasons: Map<string, number>;
}

export interface MinuteSummary {
  /** ISO start of the minute. */
  readonly at: string;
  readonly allow: number;
  readonly deny: number;
  /** Denials by reason code (report-only ones included). */
  readonly reasons: Record<string, number>;
}

export class DecisionSummary {
  readonly #buckets: Bucket[] = Array.from({ length: SUMMARY_MINUTES }, () => ({
    minute: -1,
    allow: 0,
    deny: 0,
    reasons: new Map(),
  }));
  readonly #now: () => number;
  readonly #unsubscribe: () => void;

  constructor(decisions: Pick<DecisionLog, "onRecord">, now: () => number = Date.now) {
    this.#now = now;
    this.#unsubscribe = decisions.onRecord((r) => this.add(r));
  }

  add(r: DecisionRecord): void {
    const minute = Math.floor(this.#now() / MINUTE_MS);
    const bucket = this.#buckets[minute % SUMMARY_MINUTES] as Bucket;
    if (bucket.minute !== minute) {
      bucket.minute = minute;
      bucket.allow = 0;
      bucket.deny = 0;
      bucket.reasons.clear();
    }
    if (r.allow) {
      bucket.allow++;
      return;
    }
    bucket.deny++;
    const reason = r.reason !== undefined && isReasonCode(r.reason) ? r.reason : "other";
    bucket.reasons.set(reason, (bucket.reasons.get(reason) ?? 0) + 1);
  }

  /** The last `count` minutes (this one included), oldest first, zeros for minutes without decisions. */
  minutes(count: number): MinuteSummary[] {
    const current = Math.floor(this.#now() / MINUTE_MS);
    const out: MinuteSummary[] = [];
    for (let minute = current - Math.min(count, SUMMARY_MINUTES) + 1; minute <= current; minute++) {
      const bucket = this.#buckets[minute % SUMMARY_MINUTES] as Bucket;
      const live = bucket.minute === minute;
      out.push({
        at: new Date(minute * MINUTE_MS).toISOString(),
        allow: live ? bucket.allow : 0,
        deny: live ? bucket.deny : 0,
        reasons: live ? Object.fromEntries(bucket.reasons) : {},
      });
    }
    return out;
  }

  close(): void {
    this.#unsubscribe();
  }
}
