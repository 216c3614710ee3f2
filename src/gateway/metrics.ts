// The gateway's Prometheus metrics, on a registry of its own (never prom-client's global one, so that several
// gateways in one process, as in tests, do not clash). Every label value comes from a bounded set — route,
// listener and trust store names from config, reason codes, status codes — never a fingerprint or a host.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { isReasonCode } from "../identity/reasons.ts";
import type { EnrollmentStore } from "../registry/enrollment-types.ts";
import type { DecisionRecord } from "./decision-log.ts";
import { DAY_MS, enrolledCertificates, FleetExpiry } from "./fleet-expiry.ts";

/** Label value of a decision or request that no route was matched for (route names cannot contain "("). */
export const NO_ROUTE = "(none)";
/** Reason label of an allow. */
export const NO_REASON = "none";

/** Request duration buckets in seconds: 1 ms (a cached local answer) to 10 s (a slow upstream). */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Days-left buckets of the fleet's certificates: a day, a week, two weeks, a month … a year. */
const DAYS_LEFT_BUCKETS = [1, 7, 14, 30, 60, 90, 180, 365];
/** The `within` windows of portcullis_fleet_certificates_expiring. */
const EXPIRING_WINDOWS = [
  ["7d", 7 * DAY_MS],
  ["30d", 30 * DAY_MS],
] as const;
/** How long a count of the enrolled certificates (a scan of the store) serves scrapes. */
const ENROLLED_REFRESH_MS = 5 * 60_000;

/** How many of these expiry times fall within each of EXPIRING_WINDOWS of `now` (expired ones included). */
function countExpiring(notAfters: Iterable<number>, now: number): number[] {
  const out = EXPIRING_WINDOWS.map(() => 0);
  for (const notAfter of notAfters) {
    for (const [i, [, ms]] of EXPIRING_WINDOWS.entries())
      if (notAfter - now <= ms) out[i] = (out[i] ?? 0) + 1;
  }
  return out;
}

export interface GatewayMetricsOptions {
  /** Process metrics (CPU, memory, event loop lag, GC); on by default. */
  readonly defaultMetrics?: boolean;
  /** The fleet expiry tracker (tests pass a small one); a default one otherwise. */
  readonly fleet?: FleetExpiry;
}

/** A reason label: a known reason code, else "other", so a stray string cannot grow the series. */
function reasonLabel(reason: string | undefined): string {
  if (reason === undefined) return NO_REASON;
  return isReasonCode(reason) ? reason : "other";
}

function statusLabel(status: number): string {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : "other";
}

/** One open connection in the `portcullis_connections` gauge. */
export interface ConnectionTracker {
  /** The connection's standing changed (idempotent). */
  standing(authenticated: boolean): void;
  /** The connection closed (idempotent). */
  close(): void;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly decisions: Counter<"result" | "reason" | "route" | "enforced" | "protocol">;
  readonly requests: Histogram<"route" | "status">;
  readonly handshakeFailures: Counter<"listener" | "reason">;
  readonly handshakeExtensions: Counter<"listener">;
  readonly connections: Gauge<"listener" | "authenticated">;
  readonly revocationSoftFailures: Counter<"store">;
  readonly notBeforeGraceUses: Counter<"store">;
  readonly registryLookups: Counter<"result">;
  readonly chainLimitHits: Counter<"limit">;
  readonly connectionLimitHits: Counter<"listener" | "limit" | "action">;
  readonly proxyProtocol: Counter<"listener" | "result">;
  readonly logLinesSuppressed: Counter<"event">;
  readonly configReloads: Counter<"result">;
  readonly enrollments: Counter<"profile" | "operation" | "outcome" | "reason">;
  readonly certificatesIssued: Counter<"profile">;
  readonly rateLimits: Counter<"scope" | "result">;
  readonly upstreamDuration: Histogram<"service" | "target" | "status">;
  readonly upstreamHealthy: Gauge<"service" | "target">;
  readonly upstreamEjections: Counter<"service" | "target">;
  readonly upstreamRetries: Counter<"service" | "result">;
  readonly websocketConnections: Gauge<"route">;
  /** The certificates of the devices seen recently (fed by authorize()), read at scrape time. */
  readonly fleet: FleetExpiry;
  readonly fleetDaysLeft: Histogram;
  readonly fleetExpiring: Gauge<"within" | "source">;
  #enrollmentStore: Pick<EnrollmentStore, "listIssuedCertificates"> | undefined;
  #enrolledCounts: { at: number; counts: number[] } | undefined;
  /** Which upstream set each target's health series last: a replaced one removes only its own on close. */
  readonly #upstreamHealthOwners = new Map<string, { owner: object; service: string; target: string }>();

  constructor(options: GatewayMetricsOptions = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    const fleet = options.fleet ?? new FleetExpiry();
    this.fleet = fleet;
    this.fleetDaysLeft = new Histogram({
      name: "portcullis_fleet_certificate_days_left",
      help: "Days left on the certificates of the devices this node admitted in the last 24 h (computed at scrape time).",
      buckets: DAYS_LEFT_BUCKETS,
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const s of fleet.current(now)) this.observe((s.notAfter - now) / DAY_MS);
      },
    });
    const metrics = this;
    this.fleetExpiring = new Gauge({
      name: "portcullis_fleet_certificates_expiring",
      help: 'Device certificates expiring within 7d or 30d: source="seen" (admitted by this node in the last 24 h) or "enrolled" (issued through enrollment, valid, not revoked, the newest per device).',
      labelNames: ["within", "source"],
      registers,
      async collect() {
        const now = Date.now();
        const seen = countExpiring(
          fleet.current(now).map((s) => s.notAfter),
          now,
        );
        const enrolled = await metrics.#countEnrolled(now);
        for (const [i, [within]] of EXPIRING_WINDOWS.entries()) {
          this.set({ within, source: "seen" }, seen[i] ?? 0);
          if (enrolled) this.set({ within, source: "enrolled" }, enrolled[i] ?? 0);
        }
      },
    });
    this.decisions = new Counter({
      name: "portcullis_decisions_total",
      help: 'Auth decisions by result and reason; enforced="false" counts report-only denials let through; protocol http or mqtt.',
      labelNames: ["result", "reason", "route", "enforced", "protocol"],
      registers,
    });
    this.requests = new Histogram({
      name: "portcullis_request_duration_seconds",
      help: "Time from request start to the end of the response, by route and status.",
      labelNames: ["route", "status"],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.handshakeExtensions = new Counter({
      name: "portcullis_handshake_deadline_extensions_total",
      help: "Handshakes given more time past handshakeTimeout because this process was too busy to read them.",
      labelNames: ["listener"],
      registers,
    });
    this.handshakeFailures = new Counter({
      name: "portcullis_handshake_failures_total",
      help: "TLS handshakes that failed or were refused, by listener and reason.",
      labelNames: ["listener", "reason"],
      registers,
    });
    this.connections = new Gauge({
      name: "portcullis_connections",
      help: "Open client connections, by listener and standing: authenticated while the identity is allowed.",
      labelNames: ["listener", "authenticated"],
      registers,
    });
    this.revocationSoftFailures = new Counter({
      name: "portcullis_revocation_soft_failures_total",
      help: "Revocation checks that could not conclude and were allowed in soft mode, by trust store.",
      labelNames: ["store"],
      registers,
    });
    this.notBeforeGraceUses = new Counter({
      name: "portcullis_not_before_grace_uses_total",
      help: "Requests allowed while the leaf's notBefore was still ahead (a trust store's notBeforeGrace), by trust store.",
      labelNames: ["store"],
      registers,
    });
    this.chainLimitHits = new Counter({
      name: "portcullis_chain_limit_hits_total",
      help: "Uncached decisions stopped by a chainLimits entry (reason chain_too_complex), by limit.",
      labelNames: ["limit"],
      registers,
    });
    this.connectionLimitHits = new Counter({
      name: "portcullis_connection_limit_hits_total",
      help: "Connections a listener limit closed: evicted (idle, to make room), refused (no room) or closed.",
      labelNames: ["listener", "limit", "action"],
      registers,
    });
    this.proxyProtocol = new Counter({
      name: "portcullis_proxy_protocol_total",
      help: "Connections to a listener with proxyProtocol: accepted, untrusted_source or malformed (both closed).",
      labelNames: ["listener", "result"],
      registers,
    });
    this.logLinesSuppressed = new Counter({
      name: "portcullis_log_lines_suppressed_total",
      help: "Refusal log lines not written because their source used up log.denials.perInterval, by event.",
      labelNames: ["event"],
      registers,
    });
    this.configReloads = new Counter({
      name: "portcullis_config_reload_total",
      help: "Config reloads (SIGHUP or a changed file): ok (applied) or error (rejected; the old config kept serving).",
      labelNames: ["result"],
      registers,
    });
    this.enrollments = new Counter({
      name: "portcullis_enrollments_total",
      help: "EST requests by profile, operation (enroll, reenroll), outcome (issued, pending, refused) and reason.",
      labelNames: ["profile", "operation", "outcome", "reason"],
      registers,
    });
    this.certificatesIssued = new Counter({
      name: "portcullis_certificates_issued_total",
      help: "Certificates issued through enrollment, by profile.",
      labelNames: ["profile"],
      registers,
    });
    this.upstreamDuration = new Histogram({
      name: "portcullis_upstream_duration_seconds",
      help: "Time from sending a request to a target to the end of its answer, by service, target and status (the target's status, or error or timeout when it gave none).",
      labelNames: ["service", "target", "status"],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.upstreamHealthy = new Gauge({
      name: "portcullis_upstream_target_healthy",
      help: "1 while a service's target passes its active health checks (always 1 without health checks), else 0.",
      labelNames: ["service", "target"],
      registers,
    });
    this.upstreamEjections = new Counter({
      name: "portcullis_upstream_ejections_total",
      help: "Targets ejected by outlier detection (consecutive failures), by service and target.",
      labelNames: ["service", "target"],
      registers,
    });
    this.upstreamRetries = new Counter({
      name: "portcullis_upstream_retries_total",
      help: "Retries on another target: retried, or budget_exhausted when the retry budget refused one.",
      labelNames: ["service", "result"],
      registers,
    });
    this.registryLookups = new Counter({
      name: "portcullis_registry_lookups_total",
      help: "Device registry lookups on the request path: hit, miss or error.",
      labelNames: ["result"],
      registers,
    });
    this.rateLimits = new Counter({
      name: "portcullis_rate_limit_total",
      help: "Requests seen by the rate-limit plugin, by scope (route:<name> or service:<name>) and result: allowed, limited or error (the store failed).",
      labelNames: ["scope", "result"],
      registers,
    });
    this.websocketConnections = new Gauge({
      name: "portcullis_websocket_connections",
      help: "Open WebSocket tunnels (upgraded HTTP/1.1 connections relayed to an upstream), by route.",
      labelNames: ["route"],
      registers,
    });
  }

  /** Counts the certificates enrollment issued (the store) in portcullis_fleet_certificates_expiring. */
  useEnrollmentStore(store: Pick<EnrollmentStore, "listIssuedCertificates"> | undefined): void {
    this.#enrollmentStore = store;
    this.#enrolledCounts = undefined;
  }

  /** The enrolled certificates' counts per window, from a scan of the store at most every few minutes. */
  async #countEnrolled(now: number): Promise<number[] | undefined> {
    const store = this.#enrollmentStore;
    if (!store) return undefined;
    const cached = this.#enrolledCounts;
    if (cached && now - cached.at < ENROLLED_REFRESH_MS) return cached.counts;
    try {
      const best = await enrolledCertificates(store, now);
      const fresh = countExpiring(
        [...best.values()].map((c) => c.notAfter.getTime()),
        now,
      );
      this.#enrolledCounts = { at: now, counts: fresh };
      return fresh;
    } catch {
      return cached?.counts; // the store is unreachable: the last count, if any
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Counts one decision; a report-only denial counts as result="deny", enforced="false". */
  recordDecision(r: DecisionRecord): void {
    this.decisions.inc({
      result: r.allow ? "allow" : "deny",
      reason: r.allow ? NO_REASON : reasonLabel(r.reason),
      route: r.route ?? NO_ROUTE,
      enforced: r.enforced ? "true" : "false",
      protocol: r.route?.startsWith("mqtt:") ? "mqtt" : "http",
    });
  }

  /** Counts one enrollment request's outcome; `reason` is a reason code (refusals and pending) or undefined. */
  recordEnrollment(
    profile: string,
    operation: "enroll" | "reenroll",
    outcome: "issued" | "pending" | "refused",
    reason: string | undefined,
  ): void {
    this.enrollments.inc({ profile, operation, outcome, reason: reasonLabel(reason) });
    if (outcome === "issued") {
      this.certificatesIssued.inc({ profile });
      this.#enrolledCounts = undefined; // counted again at the next scrape
    }
  }

  /** Observes one finished request; `route` undefined when no route matched. */
  observeRequest(route: string | undefined, status: number, seconds: number): void {
    this.requests.observe({ route: route ?? NO_ROUTE, status: statusLabel(status) }, seconds);
  }

  /** Observes one attempt on an upstream target; `status` is the target's status, or "error" / "timeout". */
  observeUpstream(service: string, target: string, status: string, seconds: number): void {
    const label = status === "error" || status === "timeout" ? status : statusLabel(Number(status));
    this.upstreamDuration.observe({ service, target, status: label }, seconds);
  }

  /**
   * Sets a target's health gauge on behalf of `owner` (an upstream). `claim` (a new upstream, as on a reload)
   * makes it the series' owner; otherwise only the owner's change is shown, not a replaced upstream's.
   */
  setUpstreamHealth(owner: object, service: string, target: string, healthy: boolean, claim = false): void {
    const key = `${service}\u0000${target}`;
    if (claim) this.#upstreamHealthOwners.set(key, { owner, service, target });
    else if (this.#upstreamHealthOwners.get(key)?.owner !== owner) return;
    this.upstreamHealthy.set({ service, target }, healthy ? 1 : 0);
  }

  /** Removes the health series `owner` still owns (a closed upstream whose targets no newer one took over). */
  releaseUpstream(owner: object): void {
    for (const [key, entry] of this.#upstreamHealthOwners) {
      if (entry.owner !== owner) continue;
      this.#upstreamHealthOwners.delete(key);
      this.upstreamHealthy.remove({ service: entry.service, target: entry.target });
    }
  }

  /** Counts a failed handshake; reason undefined when the failure was not about the certificate. */
  recordHandshakeFailure(listener: string, reason: string | undefined): void {
    this.handshakeFailures.inc({ listener, reason: reason === undefined ? "tls" : reasonLabel(reason) });
  }

  /** Tracks an open connection: move it when its standing changes, close it once. */
  trackConnection(listener: string, authenticated: boolean): ConnectionTracker {
    const labels = (a: boolean) => ({ listener, authenticated: a ? "true" : "false" });
    let current: boolean | undefined = authenticated;
    this.connections.inc(labels(authenticated));
    return {
      standing: (a) => {
        if (current === undefined || current === a) return;
        this.connections.dec(labels(current));
        this.connections.inc(labels(a));
        current = a;
      },
      close: () => {
        if (current === undefined) return;
        this.connections.dec(labels(current));
        current = undefined;
      },
    };
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
