// The config file's schema: the single source of truth for its shape. Types are inferred from it; every
// object is strict (an unknown key is an error), and each field says what absent means.
import { z } from "zod";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration: milliseconds as a number, or a string such as "500ms", "10s", "2m", "1h". */
export const duration = z.union(
  [
    z.number().int().nonnegative(),
    z
      .string()
      .regex(/^\d+(ms|s|m|h)$/)
      .transform((text) => {
        const [, value, unit] = /^(\d+)(ms|s|m|h)$/.exec(text) ?? [];
        return Number(value) * (UNITS[unit ?? "ms"] ?? 1);
      }),
  ],
  { error: 'expected a duration: milliseconds, or a string such as "500ms", "10s", "2m" or "1h"' },
);

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/i, "expected a name of letters, digits, '.', '_' or '-'");
const file = z.string().min(1, "expected a file path");
const files = z.union([file.transform((f) => [f]), z.array(file).min(1)]);
const hostPattern = z.string().min(1);

export const clientAuthMode = z.enum(["handshake", "application", "off"]);

const limits = z.strictObject({
  /** Time for a TLS handshake to complete. */
  handshakeTimeout: duration.default(10_000),
  /** Time for a request's headers to arrive. */
  headersTimeout: duration.default(10_000),
  /** Idle time after which an authenticated connection is closed. */
  idleTimeout: duration.default(120_000),
  /** Idle time after which a connection without a valid certificate is closed. */
  unauthenticatedIdleTimeout: duration.default(5_000),
  /** Concurrent connections without a valid certificate; more are closed at the handshake. */
  maxUnauthenticatedConnections: z.number().int().positive().default(256),
  /** Concurrent connections in all. */
  maxConnections: z.number().int().positive().default(10_000),
});

const serverCertificate = z.strictObject({
  cert: file,
  key: file,
  /** SNI names served with this certificate; absent means the certificate's DNS and IP SANs. */
  names: z.array(hostPattern).min(1).optional(),
});

const listener = z.strictObject({
  name,
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65535),
  clientAuth: clientAuthMode,
  /** Send the trust stores' CA names in the CertificateRequest (as Kong's send_ca_dn). */
  sendCaNames: z.boolean().default(true),
  /** Leave `reason` out of deny bodies sent to clients (logs keep it). */
  hideReason: z.boolean().default(false),
  /** Server certificates; the first is the default for clients without SNI or with an unknown name. */
  certificates: z.array(serverCertificate).min(1),
  /** Trust stores asked for in the handshake; absent means every store that a route names. */
  trustStores: z.array(name).min(1).optional(),
  limits: limits.default(limits.parse({})),
});

const trustStore = z.strictObject({
  name,
  /** PEM files of CA certificates (roots and intermediates). */
  ca: files,
  maxDepth: z.number().int().min(2).max(16).default(8),
  purpose: z.enum(["client", "server", "any"]).default("client"),
});

const service = z.strictObject({
  name,
  targets: z.array(z.url({ protocol: /^https?$/ })).min(1),
  connectTimeout: duration.default(5_000),
  readTimeout: duration.default(60_000),
  /** Extra attempts on another target after a connect failure (requests without a body only). */
  retries: z.number().int().min(0).max(5).default(1),
  /** Send the client's Host to the upstream instead of the target's. */
  preserveHost: z.boolean().default(false),
});

const authPolicy = z.strictObject({
  /** Trust stores whose chains this route accepts, in preference order. */
  trustStores: z.array(name).min(1),
});

const httpMethod = z.enum(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

const route = z.strictObject({
  name,
  /** Host names (exact, or `*.example.com` for one label); absent means any host. */
  hosts: z.array(hostPattern).min(1).optional(),
  /** Path prefixes at segment boundaries; `:name` segments are parameters. */
  paths: z.array(z.string().regex(/^\/[^?#\s]*$/, "expected a path starting with '/'")).min(1),
  /** Absent means every method. */
  methods: z.array(httpMethod).min(1).optional(),
  service: name,
  /** Required unless `public: true`: deny by default. */
  auth: authPolicy.optional(),
  public: z.boolean().default(false),
});

const identityHeaders = z.strictObject({
  xfcc: z
    .strictObject({
      enabled: z.boolean().default(true),
      cert: z.boolean().default(false),
      chain: z.boolean().default(false),
    })
    .default({ enabled: true, cert: false, chain: false }),
  /** RFC 9440 client-cert and client-cert-chain. */
  rfc9440: z.boolean().default(false),
  /** x-device-id */
  device: z.boolean().default(true),
  /** x-consumer-id and x-consumer-username, as Kong sets them. */
  consumer: z.boolean().default(true),
});

const admin = z.strictObject({
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65535),
  /** File holding the bearer token. */
  tokenFile: file,
});

export const configSchema = z.strictObject({
  listeners: z.array(listener).min(1),
  trustStores: z.array(trustStore).default([]),
  services: z.array(service).min(1),
  routes: z.array(route).min(1),
  identityHeaders: identityHeaders.default(identityHeaders.parse({})),
  admin: admin.optional(),
  log: z
    .strictObject({
      level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    })
    .default({ level: "info" }),
});

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type ListenerConfig = Config["listeners"][number];
export type RouteConfig = Config["routes"][number];
export type ServiceConfig = Config["services"][number];
export type TrustStoreConfig = Config["trustStores"][number];
export type ClientAuthMode = z.output<typeof clientAuthMode>;
