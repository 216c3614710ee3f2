// The routes about the gateway itself: status (with the store's health), Prometheus metrics, recent auth
// decisions and the OpenAPI document.
import type { ServerResponse } from "node:http";
import { elapsedMs, LATENCY_HEADER, sendJson } from "../gateway/respond.ts";
import { isEmptyFilter, matchesDecision } from "./console/decision-filter.ts";
import { openApiDocument } from "./openapi.ts";
import type { AdminOptions, ReadinessCheck } from "./options.ts";
import type { AdminRouter } from "./router.ts";
import { decisionsQuery, parseOrThrow, queryObject } from "./validation.ts";

function sendText(
  res: ServerResponse,
  contentType: string,
  text: string,
  startedAt: number,
  status = 200,
): void {
  res.writeHead(status, {
    "content-type": contentType,
    "content-length": String(Buffer.byteLength(text)),
    [LATENCY_HEADER]: elapsedMs(startedAt),
  });
  res.end(text);
}

/** The probe paths, answered without the token when `publicHealth` is on. */
export const HEALTH_PATHS: ReadonlySet<string> = new Set(["/healthz", "/readyz", "/healthz/", "/readyz/"]);

/**
 * Kubernetes' conventions (as kube-apiserver's /readyz): 200 `ok`, or 503 with one `[-]name failed: why`
 * line per failing check and `readyz check failed`; `?verbose` lists every check, `[+]name ok` too.
 */
function probeText(checks: readonly ReadinessCheck[], what: string, verbose: boolean): string {
  const ok = checks.every((c) => c.ok);
  const lines = checks
    .filter((c) => verbose || !c.ok)
    .map((c) => (c.ok ? `[+]${c.name} ok` : `[-]${c.name} failed: ${c.detail ?? "not ready"}`));
  return `${[...lines, ok ? "ok" : `${what} check failed`].join("\n")}\n`;
}

/** `ownMetrics`: the admin listener's own metrics, appended to the gateway's. */
export function registerSystemRoutes(
  router: AdminRouter,
  options: AdminOptions,
  ownMetrics?: () => Promise<string>,
): void {
  router.add("GET", "/healthz", ({ res, query, startedAt }) => {
    res.setHeader("cache-control", "no-store");
    sendText(res, "text/plain; charset=utf-8", probeText([], "healthz", query.has("verbose")), startedAt);
  });

  router.add("GET", "/readyz", ({ res, query, startedAt }) => {
    const health = options.store.health();
    const checks: ReadinessCheck[] = [
      ...(options.readiness?.() ?? []),
      { name: "store", ok: health.ok, detail: health.error ?? `${health.kind} store unavailable` },
    ];
    const ok = checks.every((c) => c.ok);
    res.setHeader("cache-control", "no-store");
    sendText(
      res,
      "text/plain; charset=utf-8",
      probeText(checks, "readyz", query.has("verbose")),
      startedAt,
      ok ? 200 : 503,
    );
  });

  router.add("GET", "/status", ({ res, startedAt }) => {
    const health = options.store.health();
    const store = {
      kind: health.kind,
      ok: health.ok,
      since: health.since.toISOString(),
      ...(health.error === undefined ? {} : { error: health.error }),
    };
    sendJson(res, 200, { ...options.status(), store }, startedAt);
  });

  router.add("GET", "/metrics", async ({ res, startedAt }) => {
    const own = (await ownMetrics?.()) ?? "";
    const text = await options.metrics.text();
    const joined = own === "" || text.endsWith("\n") ? text + own : `${text}\n${own}`;
    sendText(res, options.metrics.contentType, joined, startedAt);
  });

  router.add("GET", "/decisions", ({ res, query, startedAt }) => {
    const { limit, ...filter } = parseOrThrow(decisionsQuery, queryObject(query), "query", 400);
    const { decisions } = options;
    const found = isEmptyFilter(filter)
      ? decisions.recent(limit)
      : decisions
          .recent(decisions.size)
          .filter((r) => matchesDecision(filter, r))
          .slice(0, limit);
    sendJson(res, 200, { decisions: found }, startedAt);
  });

  let document: string | undefined;
  router.add("GET", "/openapi.json", ({ res, startedAt }) => {
    document ??= JSON.stringify(
      openApiDocument({
        enrollment: options.enrollmentStore !== undefined,
        console: options.console?.enabled !== false,
      }),
    );
    sendText(res, "application/json; charset=utf-8", document, startedAt);
  });
}
