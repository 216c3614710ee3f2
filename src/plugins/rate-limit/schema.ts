// rate-limit's config: how many requests a device (or a client address) may make in a window, and where the
// counters live: in this process (memory) or in Redis, shared by every gateway pointed at it.
import { z } from "zod";
import { duration } from "../../config/schema.ts";

const memoryStore = z.strictObject({
  kind: z.literal("memory"),
  /** Most keys (devices or addresses) counted at once; past it the oldest window is forgotten. */
  maxKeys: z.number().int().min(1).max(10_000_000).default(100_000),
});

const redisStore = z.strictObject({
  kind: z.literal("redis"),
  /** `redis://[:password@]host:port[/db]` or `rediss://…`. */
  url: z.string().regex(/^rediss?:\/\/.+/, "expected a redis:// or rediss:// URL"),
  /** Prepended to every key (several gateways sharing a Redis with different limits use different prefixes). */
  prefix: z.string().max(200).default("portcullis:rl:"),
  /** When Redis cannot answer: `open` lets requests through (counted as errors), `closed` refuses them (503). */
  failure: z.enum(["open", "closed"]).default("open"),
  /** Longest wait for Redis on a request; past it the request is handled as a failure. */
  timeout: duration.pipe(z.number().int().min(1).max(10_000)).default(100),
});

export const rateLimitSchema = z.strictObject({
  /** Requests allowed per key in one window. */
  limit: z.number().int().min(1).max(1_000_000_000),
  /** The window: the counter of a key starts at its first request and resets `window` later. */
  window: duration.pipe(z.number().int().min(1000).max(86_400_000)),
  /**
   * `device`: per device id (the identity's deviceId); a request without a device (a public route, a policy
   * that found no registry entry) is counted per client address. `address`: per client address always.
   */
  by: z.enum(["device", "address"]).default("device"),
  store: z
    .discriminatedUnion("kind", [memoryStore, redisStore])
    .default({ kind: "memory", maxKeys: 100_000 }),
});

export type RateLimitConfig = z.output<typeof rateLimitSchema>;
export type RedisStoreConfig = Extract<RateLimitConfig["store"], { kind: "redis" }>;
