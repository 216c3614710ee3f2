// Writing the gateway's own answers: JSON bodies, deny responses with reason codes, and the
// x-portcullis-latency header that every response carries.

import type { ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import { REASONS, type ReasonCode } from "../identity/reasons.ts";

export type AnyResponse = ServerResponse | Http2ServerResponse;

export const LATENCY_HEADER = "x-portcullis-latency";

/** A duration as a latency header's value: whole milliseconds, never negative. */
export function msHeader(ms: number): string {
  return String(Math.max(0, Math.round(ms)));
}

/** Milliseconds since `startedAt` (a performance.now() value), as the latency header's value. */
export function elapsedMs(startedAt: number): string {
  return msHeader(performance.now() - startedAt);
}

export function sendJson(
  res: AnyResponse,
  status: number,
  body: unknown,
  startedAt: number,
  extraHeaders: Record<string, string> = {},
): number {
  if (res.headersSent) {
    // Too late for a status line: the only honest signal left is to abort the response.
    res.destroy();
    return 0;
  }
  const payload = JSON.stringify(body);
  const bytes = Buffer.byteLength(payload);
  (res as ServerResponse).writeHead(status, {
    ...extraHeaders,
    "content-type": "application/json; charset=utf-8",
    "content-length": String(bytes),
    [LATENCY_HEADER]: elapsedMs(startedAt),
  });
  res.end(payload);
  return bytes;
}

/** A deny response as DESIGN.md specifies: Kong's message plus the reason code unless hidden. */
export function sendDeny(
  res: AnyResponse,
  reason: ReasonCode,
  startedAt: number,
  hideReason = false,
  extraHeaders?: Record<string, string>,
): number {
  const { status, message } = REASONS[reason];
  return sendJson(res, status, hideReason ? { message } : { message, reason }, startedAt, extraHeaders);
}

export const UPSTREAM_MESSAGES = {
  badGateway: "An invalid response was received from the upstream server",
  timeout: "The upstream server is timing out",
  unavailable: "Failure to get a peer from the ring-balancer",
  notFound: "no Route matched with those values",
  badRequest: "Bad request",
} as const;
