// The access log: one JSON line per answered request (`log.access`, off by default; on in the demo),
// allowed and refused alike, never sampled. It is a stream of its own: refusal lines (denial-log.ts) are
// sampled per source whether or not it is on, so a refused request shows once here and, unless its source
// used up its lines, once as "request denied". The request id ties the two together.
import { randomBytes } from "node:crypto";
import type { ReasonCode } from "../identity/reasons.ts";
import type { ConnectionState } from "../tls/connection-state.ts";
import type { Logger } from "./log.ts";

/** This process's prefix of request ids: unique across restarts and --workers processes. */
const PREFIX = `${randomBytes(4).toString("hex")}-`;
let counter = 0;

/** A request's number, taken once per request (an increment); its id is made only when a line is written. */
export function nextRequestNumber(): number {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return counter;
}

/** The request id written in log lines: `<process prefix>-<number in base 36>`. */
export function requestId(n: number): string {
  return PREFIX + n.toString(36);
}

/** What the request path knows of one request when its answer is sent. */
export interface AccessEntry {
  readonly listener: string;
  readonly state: ConnectionState | undefined;
  readonly peerPort: number | undefined;
  readonly host: string | undefined | null;
  readonly method: string | undefined;
  readonly path: string | undefined;
  readonly route: string | undefined;
  readonly status: number;
  readonly reason: ReasonCode | undefined;
  readonly deviceId: string | undefined;
  readonly bytes: number | string | undefined;
  readonly startedAt: number;
  readonly requestNumber: number;
  /** The request's W3C trace id (trace-context.ts): the one sent upstream; absent when no route matched. */
  readonly traceId?: string;
}

/** Writes one access log line (a single pino call). */
export function logAccess(logger: Logger, e: AccessEntry): void {
  const identity = e.state?.identity;
  logger.info(
    {
      access: true,
      listener: e.listener,
      peer: e.state?.peer,
      peerPort: e.peerPort,
      sni: identity?.sni,
      host: e.host ?? undefined,
      method: e.method,
      path: e.path,
      route: e.route,
      status: e.status,
      reason: e.reason,
      deviceId: e.deviceId,
      fingerprint: identity?.leaf?.fingerprint,
      bytes: e.bytes === undefined ? undefined : Number(e.bytes),
      latencyMs: Math.round((performance.now() - e.startedAt) * 10) / 10,
      requestId: requestId(e.requestNumber),
      traceId: e.traceId,
    },
    "request",
  );
}
