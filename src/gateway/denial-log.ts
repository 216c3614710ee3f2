// Log lines for refusals (denied requests, refused connections, failed handshakes), sampled per source: a
// client refused a thousand times a second must not write a thousand lines a second. Each source (the
// certificate's fingerprint, else the client's address) logs at most `perInterval` lines per `interval`;
// the rest are counted, and the source's next logged line says how many were held back.
import { isIP } from "node:net";
import { Lru } from "../identity/lru.ts";
import type { Logger } from "./log.ts";

/** Sources remembered at once; beyond it the least recently refused one is forgotten (its count with it). */
const MAX_SOURCES = 10_000;

export type DenialEvent =
  | "request denied"
  | "request would be denied (report-only)"
  | "connection refused"
  | "handshake failed"
  | "enrollment refused";

/**
 * The sampling source of a client known by its address only: the address, or for IPv6 its /64 (one
 * host is commonly given a whole /64, so its addresses would otherwise each get their own lines).
 */
export function addressSource(address: string): string {
  if (!address.includes(":") || isIPv4MappedOrInvalid(address)) return `address ${address}`;
  const [head = "", tail = ""] = address.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = address.includes("::") ? (tail === "" ? [] : tail.split(":")) : [];
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  const prefix = groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(":");
  return `network ${prefix}::/64`;
}

function isIPv4MappedOrInvalid(address: string): boolean {
  return isIP(address) !== 6 || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) || address.includes("%");
}

/**
 * Denials reached after the client's chain verified against a trust store of the route: their subject is
 * one a trusted CA vouched for. Any other denial's subject is only what the certificate claims.
 */
const VERIFIED_CHAIN_REASONS: ReadonlySet<string> = new Set([
  "subject_not_allowed",
  "unknown_device",
  "device_suspended",
  "device_revoked",
  "device_pending",
  "group_not_allowed",
  "registry_unavailable",
  // MQTT: judged after the CONNECT was allowed.
  "topic_not_allowed",
  "client_id_not_allowed",
]);

/**
 * A refusal's fields with the certificate's subject under `claimedSubject` when the chain did not verify
 * (or was never judged), so that a log reader never takes it for a verified identity.
 */
export function withClaimedSubject(fields: object): object {
  const { subject, reason } = fields as { subject?: unknown; reason?: unknown };
  if (subject === undefined || (typeof reason === "string" && VERIFIED_CHAIN_REASONS.has(reason)))
    return fields;
  const { subject: claimedSubject, ...rest } = fields as { subject: unknown };
  return { ...rest, claimedSubject };
}

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
    const logged = withClaimedSubject(fields);
    this.#logger.info(heldBack > 0 ? { ...logged, suppressed: heldBack } : logged, event);
  }
}
