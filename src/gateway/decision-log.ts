// Recent auth decisions for `GET /decisions`: a fixed-size ring buffer, so memory stays bounded however busy
// the gateway is, and recording costs O(1) on the request path.
import type { ReasonCode } from "../identity/reasons.ts";
import type { DeviceIdentity } from "../identity/types.ts";

export interface DecisionRecord {
  /** ISO 8601 time of the decision. */
  at: string;
  listener: string;
  /** Absent for listener-level decisions (the handshake-mode admission of a connection). */
  route?: string;
  host?: string;
  sni?: string;
  /** The policy's verdict. */
  allow: boolean;
  /**
   * Whether the verdict was applied. False only when report-only let a would-be denial pass: then `allow`
   * is false, `reason` says why it would have been denied, and the request went through.
   */
  enforced: boolean;
  reason?: ReasonCode;
  detail?: string;
  fingerprint?: string;
  subject?: string;
  deviceId?: string;
  resumed?: boolean;
  /** The --workers worker that decided (set when the primary collects the workers' decisions). */
  worker?: number;
}

export class DecisionLog {
  readonly #slots: (DecisionRecord | undefined)[];
  /** Index of the slot the next record goes to. */
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) {
      throw new RangeError(`decision log capacity must be a non-negative integer, got ${capacity}`);
    }
    this.#slots = new Array<DecisionRecord | undefined>(capacity).fill(undefined);
  }

  get capacity(): number {
    return this.#slots.length;
  }

  get size(): number {
    return this.#size;
  }

  readonly #listeners = new Set<(r: DecisionRecord) => void>();

  /** Calls `listener` with every record from now on (a --workers worker forwards them to the primary). */
  onRecord(listener: (r: DecisionRecord) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  record(r: DecisionRecord): void {
    for (const listener of this.#listeners) listener(r);
    const capacity = this.#slots.length;
    if (capacity === 0) return;
    this.#slots[this.#next] = r;
    this.#next = (this.#next + 1) % capacity;
    if (this.#size < capacity) this.#size++;
  }

  /** The `limit` most recent records, newest first; `limit` is clamped to what is kept. */
  recent(limit: number): DecisionRecord[] {
    const capacity = this.#slots.length;
    // NaN gives nothing rather than everything: a caller's parsing slip must not dump the whole log.
    const count = Number.isNaN(limit) ? 0 : Math.max(0, Math.min(Math.floor(limit), this.#size));
    const out: DecisionRecord[] = [];
    for (let i = 1; i <= count; i++) {
      const r = this.#slots[(this.#next - i + capacity) % capacity];
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  clear(): void {
    this.#slots.fill(undefined);
    this.#next = 0;
    this.#size = 0;
  }
}

export interface DecisionContext {
  readonly listener: string;
  readonly route?: string;
  readonly host?: string;
  readonly sni?: string;
  readonly resumed?: boolean;
  /** The route policy's enforcement; report-only turns a denial into a non-enforced record. */
  readonly enforce?: "enforce" | "report-only";
  /** The leaf the client presented, for denials (an allow carries its own identity). */
  readonly leaf?: { readonly fingerprint: string; readonly subject: string };
  /** The device a denial concerns, when it was known before the denial (an MQTT topic refused). */
  readonly deviceId?: string;
  readonly now: Date;
}

/** What a record is made from: a Decision, or any verdict shaped like one. */
export type DecisionOutcome =
  | { readonly allow: true; readonly identity: Pick<DeviceIdentity, "leaf" | "deviceId"> }
  | { readonly allow: false; readonly reason: ReasonCode; readonly detail: string };

/** The record of one Decision, so that every caller fills `enforced` and the identity fields alike. */
export function toDecisionRecord(decision: DecisionOutcome, context: DecisionContext): DecisionRecord {
  const base: DecisionRecord = {
    at: context.now.toISOString(),
    listener: context.listener,
    allow: decision.allow,
    enforced: decision.allow || context.enforce !== "report-only",
  };
  if (context.route !== undefined) base.route = context.route;
  if (context.host !== undefined) base.host = context.host;
  if (context.sni !== undefined) base.sni = context.sni;
  if (context.resumed !== undefined) base.resumed = context.resumed;
  if (decision.allow) {
    const { leaf, deviceId } = decision.identity;
    base.fingerprint = leaf.fingerprint;
    base.subject = leaf.subject;
    if (deviceId !== undefined) base.deviceId = deviceId;
    return base;
  }
  base.reason = decision.reason;
  base.detail = decision.detail;
  if (context.deviceId !== undefined) base.deviceId = context.deviceId;
  if (context.leaf !== undefined) {
    base.fingerprint = context.leaf.fingerprint;
    base.subject = context.leaf.subject;
  }
  return base;
}
