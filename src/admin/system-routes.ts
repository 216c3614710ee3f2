// The routes about the gateway itself: status (with the store's health), Prometheus metrics, recent auth
// decisions and the OpenAPI document.
import type { ServerResponse } from "node:http";
import { elapsedMs, LATENCY_HEADER, sendJson } from "../gateway/respond.ts";
import { openApiDocument } from "./openapi.ts";
import type { AdminOptions } from "./options.ts";
import type { AdminRouter } from "./router.ts";
import { decisionsQuery, parseOrThrow, queryObject } from "./validation.ts";

function sendText(res: ServerResponse, contentType: string, text: string, startedAt: number): void {
  res.writeHead(200, {
    "content-type": contentType,
    "content-length": String(Buffer.byteLength(text)),
    [LATENCY_HEADER]: elapsedMs(startedAt),
  });
  res.end(text);
}

export function registerSystemRoutes(router: AdminRouter, options: AdminOptions): void {
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
    sendText(res, options.metrics.contentType, await options.metrics.text(), startedAt);
  });

  router.add("GET", "/decisions", ({ res, query, startedAt }) => {
    const { limit } = parseOrThrow(decisionsQuery, queryObject(query), "query", 400);
    sendJson(res, 200, { decisions: options.decisions.recent(limit) }, startedAt);
  });

  let document: string | undefined;
  router.add("GET", "/openapi.json", ({ res, startedAt }) => {
    document ??= JSON.stringify(openApiDocument());
    sendText(res, "application/json; charset=utf-8", document, startedAt);
  });
}
