// rate-limit: at most `limit` requests per device (or client address) per `window` on a route or service,
// counted in memory or in Redis (shared by gateways). Every answer carries the RateLimit headers; over the
// limit the answer is 429 rate_limited with Retry-After. When Redis fails, `failure: open` lets the request
// through and `closed` refuses it (503 rate_limit_unavailable); both are counted as result="error".
import type { AccessOutcome, Plugin, PluginEnv, PluginFactory, PluginRequest } from "../plugin.ts";
import { track } from "./health.ts";
import { RedisWindows } from "./redis-windows.ts";
import { type RateLimitConfig, rateLimitSchema } from "./schema.ts";
import { type Hit, judge, keyFor, MemoryWindows } from "./window.ts";

function outcome(hit: Hit, config: RateLimitConfig, env: PluginEnv): AccessOutcome {
  const verdict = judge(hit, config.limit, config.window);
  env.metrics.rateLimits.inc({ scope: env.scope, result: verdict.allowed ? "allowed" : "limited" });
  if (verdict.allowed) return { kind: "continue", headers: verdict.headers };
  return {
    kind: "deny",
    reason: "rate_limited",
    detail: `over ${config.limit} requests in ${config.window} ms`,
    headers: verdict.headers,
  };
}

function create(config: RateLimitConfig, env: PluginEnv): Plugin {
  const key = (request: PluginRequest) =>
    `${env.scope}:${keyFor(config.by, request.identity?.deviceId, request.clientAddress)}`;
  const { store } = config;
  if (store.kind === "memory") {
    const windows = new MemoryWindows(config.window, store.maxKeys);
    return {
      name: "rate-limit",
      access: (request) => outcome(windows.hit(key(request), Date.now()), config, env),
    };
  }
  const redis = new RedisWindows({
    url: store.url,
    timeoutMs: store.timeout,
    windowMs: config.window,
    onHealth: (health, err) => {
      if (health === "down") {
        env.logger.warn({ err, scope: env.scope, failure: store.failure }, "rate limit store unavailable");
      } else {
        env.logger.info({ scope: env.scope }, "rate limit store available");
      }
    },
  });
  const untrack = track(env.metrics, {
    health: () => ({ scope: env.scope, plugin: "rate-limit", redis: redis.health }),
  });
  return {
    name: "rate-limit",
    access: (request) =>
      redis.hit(`${store.prefix}${key(request)}`).then(
        (hit) => outcome(hit, config, env),
        (): AccessOutcome | undefined => {
          env.metrics.rateLimits.inc({ scope: env.scope, result: "error" });
          if (store.failure === "open") return undefined;
          return {
            kind: "deny",
            reason: "rate_limit_unavailable",
            detail: "the rate limit store did not answer",
          };
        },
      ),
    close: async () => {
      untrack();
      await redis.close();
    },
  };
}

export const rateLimit: PluginFactory<typeof rateLimitSchema> = {
  name: "rate-limit",
  priority: 20,
  schema: rateLimitSchema,
  create,
};
