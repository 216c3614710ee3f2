// The console's data routes (bearer token or session cookie, as every admin route): fleet counts by status,
// the certificate-expiry histogram, decisions per minute, the live decision stream and the trust stores.
import { z } from "zod";
import { sendJson } from "../../gateway/respond.ts";
import { bearerTokenMatches } from "../auth.ts";
import { fleetCertificates } from "../expiring-route.ts";
import type { AdminOptions } from "../options.ts";
import type { AdminRouter } from "../router.ts";
import { limitParam, parseOrThrow, queryObject } from "../validation.ts";
import { decisionFilterQuery } from "./decision-filter.ts";
import { type DecisionSummary, SUMMARY_MINUTES } from "./decision-summary.ts";
import type { DecisionStreams } from "./event-stream.ts";
import type { ConsoleSessions } from "./session.ts";
import { trustSnapshot } from "./trust.ts";

/** The expiry histogram's buckets: upper bounds in whole days left (inclusive), the last one open. */
export const EXPIRY_BUCKETS: readonly { readonly label: string; readonly maxDays: number }[] = [
  { label: "expired", maxDays: -1 },
  { label: "0–7 d", maxDays: 7 },
  { label: "8–30 d", maxDays: 30 },
  { label: "31–90 d", maxDays: 90 },
  { label: "91–365 d", maxDays: 365 },
  { label: "> 365 d", maxDays: Number.POSITIVE_INFINITY },
];

export function expiryHistogram(days: readonly number[]): {
  total: number;
  buckets: { label: string; count: number }[];
} {
  const buckets = EXPIRY_BUCKETS.map((b) => ({ label: b.label, count: 0 }));
  for (const d of days) {
    const i = EXPIRY_BUCKETS.findIndex((b) => d <= b.maxDays);
    const bucket = buckets[i];
    if (bucket) bucket.count++;
  }
  return { total: days.length, buckets };
}

const summaryQuery = z.strictObject({ minutes: limitParam(SUMMARY_MINUTES, SUMMARY_MINUTES) });

export interface ConsoleParts {
  readonly summary: DecisionSummary;
  readonly streams: DecisionStreams;
  readonly sessions: ConsoleSessions | undefined;
}

export function registerConsoleRoutes(router: AdminRouter, options: AdminOptions, parts: ConsoleParts): void {
  router.add("GET", "/fleet/summary", async ({ res, startedAt }) => {
    const counts = await options.store.countByStatus();
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    sendJson(res, 200, { devices: { total, ...counts } }, startedAt);
  });

  router.add("GET", "/fleet/expiry-histogram", async ({ res, query, startedAt }) => {
    parseOrThrow(z.strictObject({}), queryObject(query), "query", 400);
    const devices = await fleetCertificates(options, Number.POSITIVE_INFINITY, Date.now());
    sendJson(res, 200, expiryHistogram(devices.map((d) => d.daysLeft)), startedAt);
  });

  router.add("GET", "/decisions/summary", ({ res, query, startedAt }) => {
    const { minutes } = parseOrThrow(summaryQuery, queryObject(query), "query", 400);
    sendJson(res, 200, { minutes: parts.summary.minutes(minutes) }, startedAt);
  });

  router.add("GET", "/decisions/stream", ({ req, res, query }) => {
    const filter = parseOrThrow(decisionFilterQuery, queryObject(query), "query", 400);
    // Opened with a console session (not the bearer token): the stream lives no longer than the session.
    const found = bearerTokenMatches(req, options.token) ? undefined : parts.sessions?.sessionOf(req);
    const authorized = found ? () => parts.sessions?.store.use(found.id) !== undefined : undefined;
    parts.streams.open(req, res, filter, authorized);
  });

  router.add("GET", "/trust", async ({ res, startedAt }) => {
    const source = (await options.trust?.()) ?? { trustStores: [], revocation: undefined };
    sendJson(res, 200, trustSnapshot(source, Date.now()), startedAt);
  });
}
