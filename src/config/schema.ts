// The config file's schema: the single source of truth for its shape. Types are inferred from it; every
// object is strict (an unknown key is an error), and each field says what absent means.
import { z } from "zod";
import {
  DEFAULT_CURVES,
  DEFAULT_MAX_RSA_BITS,
  DEFAULT_RSA_EXPONENTS,
  KNOWN_CURVES,
} from "../identity/algorithm-policy.ts";
import { DEFAULT_CHAIN_LIMITS } from "../identity/limits.ts";
import { HEADER_PATTERN } from "../proxy/request-headers.ts";
import { parseCidr } from "../proxy/trusted-proxies.ts";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration: milliseconds as a number, or a string such as "500ms", "10s", "2m", "1h", "90d". */
export const duration = z.union(
  [
    z.number().int().nonnegative(),
    z
      .string()
      .regex(/^\d+(ms|s|m|h|d)$/)
      .transform((text) => {
        const [, value, unit] = /^(\d+)(ms|s|m|h|d)$/.exec(text) ?? [];
        return Number(value) * (UNITS[unit ?? "ms"] ?? 1);
      }),
  ],
  { error: 'expected a duration: milliseconds, or a string such as "500ms", "10s", "2m", "1h" or "90d"' },
);

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/i, "expected a name of letters, digits, '.', '_' or '-'");
const file = z.string().min(1, "expected a file path");
const files = z.union([file.transform((f) => [f]), z.array(file).min(1)]);
const hostPattern = z.string().min(1);

export const clientAuthMode = z.enum(["handshake", "application", "off"]);

const limits = z
  .strictObject({
    /**
     * Time for a TLS handshake to complete, counted in the client's time: while this process was too busy to
     * read the client (a reconnect storm), the deadline moves on, up to handshakeTimeoutMax in all.
     */
    handshakeTimeout: duration.default(10_000),
    /** The longest a handshake may last however busy the gateway was. */
    handshakeTimeoutMax: duration.default(60_000),
    /** Time for a request's headers to arrive. */
    headersTimeout: duration.default(10_000),
    /** Idle time after which an authenticated connection is closed. */
    idleTimeout: duration.default(120_000),
    /**
     * Idle time after which an unauthenticated connection is closed: no valid certificate, or an identity
     * denied on it (suspended, unregistered, revoked …), whatever it sent before.
     */
    unauthenticatedIdleTimeout: duration.default(5_000),
    /**
     * Concurrent unauthenticated connections; a new one evicts the one idle the longest, and is closed
     * at the handshake only when every one has a request in flight.
     */
    maxUnauthenticatedConnections: z.number().int().positive().default(256),
    /** Concurrent connections presenting one certificate; a new one evicts the one idle the longest. */
    maxConnectionsPerIdentity: z.number().int().positive().default(8),
    /** A connection whose last this-many requests were all refused (401/403, 400, 404, 421) is closed. */
    maxRefusedRequests: z.number().int().positive().default(10),
    /** Concurrent connections in all. */
    maxConnections: z.number().int().positive().default(10_000),
  })
  .refine((l) => l.handshakeTimeoutMax >= l.handshakeTimeout, {
    message: "handshakeTimeoutMax must be at least handshakeTimeout",
    path: ["handshakeTimeoutMax"],
  });

const serverCertificate = z.strictObject({
  cert: file,
  key: file,
  /** SNI names served with this certificate; absent means the certificate's DNS and IP SANs. */
  names: z.array(hostPattern).min(1).optional(),
});

/** MQTT topic filters of an allow-list: MQTT wildcards (`+`, `#`) and the placeholders `{deviceId}`, `{group}`. */
const topicPattern = z
  .string()
  .min(1)
  .max(1024)
  .refine((t) => !t.includes("\u0000"), "a topic filter cannot hold a NUL character")
  .refine(
    (t) =>
      t
        .split("/")
        .every((level, i, all) => (level.includes("#") ? level === "#" && i === all.length - 1 : true)),
    "'#' must be a whole level, and the last one",
  )
  .refine(
    (t) => t.split("/").every((level) => !level.includes("+") || level === "+"),
    "'+' must be a whole level",
  );

/** An MQTT listener's options: the broker it bridges to, the device policy, identity and topic rules. */
const mqttOptions = z.strictObject({
  /** The upstream broker: `mqtt://host:port`. */
  broker: z.url({ protocol: /^mqtt$/ }),
  /** Who may connect: the same auth policy as an HTTP route (trust stores, matchers, registry, groups). */
  auth: z.lazy(() => authPolicy),
  /**
   * The client id and username the broker sees. replace: the device id, whatever the client sent. refuse: the
   * client must send the device id (or nothing, then it is set), else CONNACK "not authorized". keep (username
   * only): passed as sent.
   */
  clientId: z.enum(["replace", "refuse"]).default("replace"),
  username: z.enum(["replace", "refuse", "keep"]).default("replace"),
  /** Topic allow-lists; absent means nothing may be published or subscribed to. */
  topics: z
    .strictObject({
      publish: z.array(topicPattern).default([]),
      subscribe: z.array(topicPattern).default([]),
    })
    .default({ publish: [], subscribe: [] }),
  /** Time from the handshake to a complete CONNECT. */
  connectTimeout: duration.default(10_000),
  /** Largest CONNECT accepted, in bytes. */
  maxConnectBytes: z.number().int().min(64).max(1_048_576).default(65_536),
  /** Largest packet either way, in bytes (MQTT's own limit is 268,435,455). */
  maxPacketBytes: z.number().int().min(1024).max(268_435_455).default(1_048_576),
  /** Time to connect to the broker. */
  brokerConnectTimeout: duration.default(5_000),
});

const listener = z.strictObject({
  name,
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65535),
  /** http: HTTPS (HTTP/2 and HTTP/1.1) to the routes. mqtt: MQTT over TLS, bridged to `mqtt.broker`. */
  protocol: z.enum(["http", "mqtt"]).default("http"),
  /** Required on an mqtt listener, refused on an http one. */
  mqtt: mqttOptions.optional(),
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
  /**
   * Direct peers (IPv4/IPv6 addresses or CIDR ranges) whose X-Forwarded-For and Via are extended; from any other
   * peer they are replaced. Empty: no peer is trusted.
   */
  trustedProxies: z
    .array(
      z
        .string()
        .refine(
          (text) => parseCidr(text) !== undefined,
          "expected an IPv4 or IPv6 address or CIDR range, such as 10.0.0.0/8 or fd00::/8",
        ),
    )
    .default([]),
  /** Installer diagnostics: JSON about this connection on this path; absent means off. */
  diagnostics: z
    .strictObject({ path: z.string().regex(/^\/[^?#\s]*$/, "expected a path starting with '/'") })
    .optional(),
  /**
   * PROXY protocol (v1 or v2) before the TLS handshake: every connection must come from one of trustedSources (the
   * load balancers: addresses or CIDR ranges) and start with a header, whose source address is then the client's.
   * Absent means off.
   */
  proxyProtocol: z
    .strictObject({
      trustedSources: z
        .array(
          z
            .string()
            .refine(
              (text) => parseCidr(text) !== undefined,
              "expected an IPv4 or IPv6 address or CIDR range, such as 10.0.0.0/8 or fd00::/8",
            ),
        )
        .min(1, "name the load balancers that send the PROXY header"),
    })
    .optional(),
});

const revocation = z.strictObject({
  /**
   * off: no revocation check. soft: a certificate listed as revoked is denied; an unreachable source or an
   * unknown status allows (logged and counted). strict: an unknown status denies with revocation_unknown.
   */
  mode: z.enum(["off", "soft", "strict"]).default("off"),
  /** leaf: only the device certificate is checked; chain: every certificate below the anchor. */
  scope: z.enum(["leaf", "chain"]).default("leaf"),
  crl: z
    .strictObject({
      /** CRL files (PEM or DER, several CRLs per file allowed), reloaded when they change. */
      files: z.array(file).default([]),
      /** CRL URLs fetched at start and refreshed. */
      urls: z.array(z.url({ protocol: /^https?$/ })).default([]),
      /** Also fetch the CRL Distribution Points named in the certificates. */
      distributionPoints: z.boolean().default(true),
      /** Refresh period; a CRL is also refreshed before its nextUpdate. */
      refreshInterval: duration.default(3_600_000),
      /** Timeout of one fetch. */
      timeout: duration.default(5_000),
      /** Largest CRL accepted, in bytes. */
      maxBytes: z
        .number()
        .int()
        .positive()
        .default(10 * 1024 * 1024),
    })
    .default({
      files: [],
      urls: [],
      distributionPoints: true,
      refreshInterval: 3_600_000,
      timeout: 5_000,
      maxBytes: 10 * 1024 * 1024,
    }),
  ocsp: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** Responder URL; absent means the certificate's Authority Information Access. */
      responder: z.url({ protocol: /^https?$/ }).optional(),
      timeout: duration.default(3_000),
      /** HTTP proxy for responders. */
      proxy: z.url({ protocol: /^https?$/ }).optional(),
      /** Longest time a response is cached when it has no nextUpdate. */
      maxAge: duration.default(3_600_000),
    })
    .default({ enabled: false, timeout: 3_000, maxAge: 3_600_000 }),
});

const trustStore = z.strictObject({
  name,
  /** PEM files of CA certificates (roots and intermediates). */
  ca: files,
  maxDepth: z.number().int().min(2).max(16).default(8),
  purpose: z.enum(["client", "server", "any"]).default("client"),
  /** Accept a notBefore up to this far in the future (devices with a wrong clock); at most 1h; logged. */
  notBeforeGrace: duration.refine((ms) => ms <= 3_600_000, "notBeforeGrace is at most 1h").default(0),
  /**
   * strict: every RFC 5280 profile rule. lenient: for legacy device PKIs, key identifiers may be absent,
   * serial numbers may be of any format and an extendedKeyUsage may be empty; nothing else is relaxed.
   */
  profile: z.enum(["strict", "lenient"]).default("strict"),
  /** Smallest RSA key accepted anywhere in a path, in bits. */
  minRsaBits: z.number().int().min(1024).max(16384).default(2048),
  /** Largest RSA key accepted anywhere in a path, in bits (the cost of a verification grows with it). */
  maxRsaBits: z.number().int().min(1024).max(16384).default(DEFAULT_MAX_RSA_BITS),
  /** RSA public exponents accepted (odd, 3 to 2^32-1): a huge exponent makes a key costly to use. */
  rsaPublicExponents: z
    .array(
      z
        .number()
        .int()
        .min(3)
        .max(0xffffffff)
        .refine((e) => e % 2 === 1, "an RSA public exponent is odd"),
    )
    .min(1)
    .default([...DEFAULT_RSA_EXPONENTS]),
  /** EC curves accepted (Ed25519 keys are always accepted). */
  curves: z
    .array(z.enum(KNOWN_CURVES))
    .min(1)
    .default([...DEFAULT_CURVES] as (typeof KNOWN_CURVES)[number][]),
  revocation: revocation.default(revocation.parse({})),
  /** Just-in-time registration of unknown devices with a valid chain: off, or the status they get. */
  autoRegister: z.enum(["off", "pending", "active"]).default("off"),
});

/** Why an upstream target is not an `http://` or `https://` URL with a host, in words an operator can act on. */
export function targetProblem(value: string): string | undefined {
  if (value.trim() === "") return "an empty target: expected a URL such as http://127.0.0.1:3000";
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1];
  if (scheme === undefined) {
    return `"${value}" has no scheme: expected a URL such as http://${value.replace(/^\/+/, "")}`;
  }
  if (!/^https?$/i.test(scheme))
    return `"${value}": scheme "${scheme}" is not supported, use http:// or https://`;
  const port = /^[a-z]+:\/\/(?:\[[^\]]*\]|[^/:?#]*):(\d*)(?:[/?#]|$)/i.exec(value)?.[1];
  if (port !== undefined && port !== "" && (Number(port) === 0 || Number(port) > 65535)) {
    return `"${value}": the port must be 1 to 65535`;
  }
  if (!URL.canParse(value)) return `"${value}" is not a valid URL: check the host name or address`;
  if (new URL(value).hostname === "") return `"${value}" has no host`;
  return undefined;
}

const target = z.string().superRefine((value, ctx) => {
  const problem = targetProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});

/** A plugin on a route or a service: its name and its config (checked against the plugin's own schema). */
const pluginSpec = z.strictObject({
  name: z.string().min(1).max(64),
  config: z.record(z.string(), z.unknown()).default({}),
});
const plugins = z.array(pluginSpec).max(32).default([]);

/** A service's active health checks: a GET of `path` on each target every `interval`. */
const healthCheck = z.strictObject({
  path: z.string().regex(/^\/[^#\s]*$/, "expected a path starting with '/'"),
  interval: duration.pipe(z.number().min(100, "at least 100ms")).default(10_000),
  /** Limit for one check's answer. */
  timeout: duration.pipe(z.number().min(1, "at least 1ms")).default(2_000),
  /** Good checks in a row that bring an unhealthy target back. */
  healthyThreshold: z.number().int().min(1).max(100).default(2),
  /** Failed checks in a row (an unexpected status, no answer, a timeout) that take a target out. */
  unhealthyThreshold: z.number().int().min(1).max(100).default(3),
  /** Statuses that count as healthy; absent means any 2xx or 3xx. */
  expectStatus: z.array(z.number().int().min(100).max(599)).min(1).optional(),
});

/** TLS to `https://` targets: verification (on) against `ca` or the system roots, and the gateway's certificate. */
const serviceTls = z
  .strictObject({
    /** CA certificates (PEM files) the targets' certificates must chain to; absent means the system roots. */
    ca: files.optional(),
    /** The gateway's client certificate (PEM, leaf then chain) for targets that require one, with `key`. */
    cert: file.optional(),
    key: file.optional(),
    /** Name sent as SNI and verified in the targets' certificates; absent means each target's host. */
    serverName: z.string().min(1).optional(),
    /** Verify the targets' certificates; false only for tests and trusted networks. */
    verify: z.boolean().default(true),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), {
    message: "`cert` and `key` go together: give both or neither",
  });

const service = z.strictObject({
  name,
  targets: z.array(target).min(1),
  connectTimeout: duration.default(5_000),
  readTimeout: duration.default(60_000),
  /**
   * Extra attempts on another target: after a connect failure (requests without a body), and after a 502 or 503
   * answer for GET, HEAD, OPTIONS, PUT and DELETE requests without a body.
   */
  retries: z.number().int().min(0).max(5).default(1),
  /** Retries as a fraction of the service's requests over the last 10 s (0 to 1); absent means no budget. */
  retryBudget: z.number().min(0).max(1).optional(),
  /** Send the client's Host to the upstream instead of the target's. */
  preserveHost: z.boolean().default(false),
  /** How each request's target is picked; consistent-hash keys on the device id (else the client address). */
  balancing: z.enum(["round-robin", "least-connections", "consistent-hash"]).default("round-robin"),
  /** Active health checks; absent means none. */
  healthCheck: healthCheck.optional(),
  /** Passive outlier detection: eject a target after failures in a row; absent means none. */
  outlierDetection: z
    .strictObject({
      /** 5xx answers or connect failures in a row that eject a target. */
      consecutiveFailures: z.number().int().min(1).max(1000).default(5),
      /** How long an ejected target gets no requests. */
      ejectionTime: duration.default(30_000),
    })
    .optional(),
  /** TLS to `https://` targets. */
  tls: serviceTls.optional(),
  /** Plugins of every route to this service (a route's own plugin of the same name replaces it). */
  plugins,
});

/** A value matcher: an exact string, a glob (`*` any run, `?` one character), or an anchored regex. */
const matcher = z.union([
  z.string().min(1),
  z.strictObject({ glob: z.string().min(1) }),
  z.strictObject({ regex: z.string().min(1) }),
]);
const matchers = z.array(matcher).min(1);

const certificateMatch = z.strictObject({
  /** Subject attributes by short name (CN, O, OU, C, L, ST, emailAddress, serialNumber): one value must match. */
  subject: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9.]*$/), matchers).optional(),
  /** Subject Alternative Names: one of the certificate's SANs of that type must match. */
  san: z
    .strictObject({ uri: matchers.optional(), dns: matchers.optional(), email: matchers.optional() })
    .optional(),
  /** SHA-256 SPKI pins, base64. */
  spki: z
    .array(z.string().regex(/^[A-Za-z0-9+/]{43}=$/, "expected a base64 SHA-256 SPKI pin"))
    .min(1)
    .optional(),
  /** SHA-256 certificate fingerprints, hex (colons allowed). */
  fingerprints: z
    .array(
      z.string().regex(/^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/, "expected a SHA-256 fingerprint in hex"),
    )
    .min(1)
    .optional(),
  /** The path must go through one of these CA certificates (SHA-256 fingerprints, hex). */
  intermediates: z
    .array(
      z.string().regex(/^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/, "expected a SHA-256 fingerprint in hex"),
    )
    .min(1)
    .optional(),
});

const authPolicy = z.strictObject({
  /** Trust stores whose chains this route accepts, in preference order. */
  trustStores: z.array(name).min(1),
  /** enforce: deny. report-only: let the request pass, log and count what would have been denied. */
  enforce: z.enum(["enforce", "report-only"]).default("enforce"),
  /** Certificate matchers; absent means any certificate with a valid chain. */
  match: certificateMatch.optional(),
  /** required: the certificate must map to an active device; optional: look it up for headers; off. */
  registry: z.enum(["required", "optional", "off"]).default("off"),
  /** Device groups allowed (registry required); absent means any group. */
  groups: z.array(z.string().min(1)).min(1).optional(),
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
  /**
   * Forward paths an upstream could read differently (a dot segment with `;` parameters such as `..;`, or a
   * double-encoded `%252e`, `%252f`, `%255c`) instead of answering 400, while every reading stays on this route.
   */
  allowAmbiguousPaths: z.boolean().default(false),
  /**
   * A public route on a config whose listeners all have `clientAuth: handshake` is refused at load (no client
   * without a certificate could reach it); true accepts it, served to any client that passes the handshake.
   */
  publicBehindHandshake: z.boolean().default(false),
  /** Limit for the upstream's response headers, then between body chunks, in place of its service's readTimeout. */
  timeout: duration.pipe(z.number().min(1, "at least 1ms")).optional(),
  /** Plugins of this route, after routing and authentication (see docs/configuration.md#plugins). */
  plugins,
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
  /** Serve the admin API over TLS, optionally requiring a client certificate from admin trust stores. */
  tls: z.strictObject({ cert: file, key: file, trustStores: z.array(name).min(1).optional() }).optional(),
  /** Recent decisions kept for GET /decisions. */
  decisionsKept: z.number().int().min(0).max(100_000).default(1000),
  /** GET /healthz and GET /readyz answer without the bearer token (probes of a load balancer, Kubernetes). */
  publicHealth: z.boolean().default(true),
  /** The web console under /console/ and its session cookies. */
  console: z
    .strictObject({
      /** false: /console/* answers 404 and session cookies are not accepted (the bearer token still is). */
      enabled: z.boolean().default(true),
      /** Absolute lifetime of a console session. */
      sessionTtl: duration.default(12 * 3_600_000),
      /** A session unused this long ends. */
      sessionIdleTimeout: duration.default(30 * 60_000),
      /** Sessions kept at once; a new login evicts the oldest. */
      maxSessions: z.number().int().min(1).max(10_000).default(64),
      /** Concurrent GET /decisions/stream connections; one more is answered 429. */
      maxEventStreams: z.number().int().min(1).max(1_000).default(16),
    })
    .default({
      enabled: true,
      sessionTtl: 12 * 3_600_000,
      sessionIdleTimeout: 30 * 60_000,
      maxSessions: 64,
      maxEventStreams: 16,
    }),
});

const store = z.strictObject({
  /** `sqlite:PATH` (relative to the config file) or `postgres://…`. */
  url: z
    .string()
    .regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/, "expected sqlite:PATH or postgres://…")
    .default("sqlite:portcullis.db"),
  /** Request-path cache of device lookups. */
  cacheMaxEntries: z.number().int().positive().default(100_000),
  cacheTtl: duration.default(60_000),
  /** While the store is unreachable, known devices keep working from cache this long; unknown ones fail closed. */
  outageGrace: duration.default(300_000),
  /** How often last-seen times are written, in one batch. */
  lastSeenInterval: duration.default(10_000),
});

const DAY_MS = 86_400_000;

/** One enrollment profile: a CA label of the EST endpoints, its issuing CA and what it issues to whom. */
const enrollmentProfile = z.strictObject({
  /** The CA label: `/.well-known/est/<name>/…`; the first profile also answers at `/.well-known/est/…`. */
  name,
  /** The issuing CA: its certificate, its key file, and the certificates above it (for cacerts). */
  ca: z.strictObject({ cert: file, key: file, chain: z.array(file).default([]) }),
  /**
   * The trust store that accepts the certificates this profile issues (it must hold the CA): renewals are
   * authenticated against it, and CSR keys are checked with its key policy.
   */
  trustStore: name,
  /** Key types a CSR may carry (sizes and curves come from the trust store's key policy). */
  keyTypes: z
    .array(z.enum(["ec", "rsa", "ed25519"]))
    .min(1)
    .default(["ec", "rsa", "ed25519"]),
  /** Validity of an issued certificate (never beyond the CA's own notAfter). */
  validity: duration.refine((ms) => ms >= 60_000, "validity is at least 1m").default(90 * DAY_MS),
  /** How a device without an operational certificate proves who it is; at least one. */
  bootstrap: z
    .strictObject({
      /** One-time tokens issued per device through the admin API (`ttl`: default lifetime, `maxTtl`: most). */
      tokens: z
        .strictObject({ ttl: duration.default(DAY_MS), maxTtl: duration.default(30 * DAY_MS) })
        .optional(),
      /** Factory certificates chaining to these trust stores authenticate the device named in them. */
      factory: z.strictObject({ trustStores: z.array(name).min(1) }).optional(),
    })
    .refine((b) => b.tokens !== undefined || b.factory !== undefined, {
      message: "name at least one bootstrap: tokens or factory",
    }),
  /**
   * auto: a device the registry does not know is created active at its first enrollment. manual: a device
   * bootstrapped by factory certificate that the registry does not know is created pending, and is answered
   * 202 with Retry-After until an operator activates it (a token is itself an operator's approval).
   */
  approval: z.enum(["auto", "manual"]).default("auto"),
  /** Retry-After of a pending answer. */
  retryAfter: duration.refine((ms) => ms >= 1000, "retryAfter is at least 1s").default(60_000),
  /** Groups of a device that enrollment creates. */
  groups: z.array(z.string().min(1)).default([]),
  /** After a renewal, the previous certificate stays bound this long (or until it expires, if sooner). */
  overlap: duration.default(DAY_MS),
  /** The profile's CRL, rewritten on every revocation of a certificate it issued (list it in a trust store's CRL files). */
  crlFile: file.optional(),
  /** nextUpdate of that CRL; it is also rewritten before it runs out. */
  crlValidity: duration.refine((ms) => ms >= 60_000, "crlValidity is at least 1m").default(7 * DAY_MS),
  /** Enrollment requests per device and interval, counted on each node once the device is authenticated. */
  rateLimit: z
    .strictObject({
      requests: z.number().int().min(1).max(1_000_000).default(10),
      interval: duration.refine((ms) => ms >= 1000, "interval is at least 1s").default(3_600_000),
    })
    .default({ requests: 10, interval: 3_600_000 }),
});

const enrollment = z.strictObject({
  /** Listeners serving `/.well-known/est/`; absent means every listener. */
  listeners: z.array(name).min(1).optional(),
  profiles: z.array(enrollmentProfile).min(1),
});

const denialSampling = z.strictObject({
  interval: duration.refine((ms) => ms >= 1, "expected at least 1ms").default(10_000),
  perInterval: z.number().int().min(0).max(1_000_000).default(5),
});

/** What a client may present and what one uncached decision may cost; beyond it, `chain_too_complex`. */
const chainLimits = z.strictObject({
  /** Certificates a client may present, the leaf included. */
  maxCertificates: z.number().int().min(1).max(64).default(DEFAULT_CHAIN_LIMITS.maxCertificates),
  /** Total DER size of what a client presents, in bytes. */
  maxBytes: z.number().int().min(1024).max(1_048_576).default(DEFAULT_CHAIN_LIMITS.maxBytes),
  /** subjectAltName entries (and nameConstraints subtrees) of any one presented certificate. */
  maxNamesPerCertificate: z
    .number()
    .int()
    .min(1)
    .max(4096)
    .default(DEFAULT_CHAIN_LIMITS.maxNamesPerCertificate),
  /** Signature verifications one decision may perform. */
  maxSignatureChecks: z.number().int().min(1).max(1024).default(DEFAULT_CHAIN_LIMITS.maxSignatureChecks),
  /** Name-constraint comparisons (names × subtrees) one decision may perform. */
  maxNameChecks: z.number().int().min(1).max(1_000_000).default(DEFAULT_CHAIN_LIMITS.maxNameChecks),
});

export const configSchema = z.strictObject({
  listeners: z.array(listener).min(1),
  trustStores: z.array(trustStore).default([]),
  chainLimits: chainLimits.default(chainLimits.parse({})),
  services: z.array(service).min(1),
  routes: z.array(route).min(1),
  identityHeaders: identityHeaders.default(identityHeaders.parse({})),
  /** Client headers never forwarded, added to the built-in list: names, or `prefix*`; any case, `_` read as `-`. */
  stripHeaders: z
    .array(
      z
        .string()
        .regex(
          HEADER_PATTERN,
          "expected a header name, or a header name prefix ending in '*' (such as x-internal-*)",
        ),
    )
    .default([]),
  admin: admin.optional(),
  /** Device enrollment and renewal over EST (RFC 7030); absent means off. */
  enrollment: enrollment.optional(),
  store: store.default(store.parse({})),
  log: z
    .strictObject({
      level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
      /**
       * Lines for refusals (denied requests, refused connections, failed handshakes) per source — a trusted
       * certificate, else the client's address — and interval; the rest are counted and reported in the
       * source's next line as `suppressed`.
       */
      denials: denialSampling.default(denialSampling.parse({})),
      /**
       * One line per answered request (allowed or refused; not sampled), at info. Off by default; the demo
       * turns it on. A reload switches it.
       */
      access: z.boolean().default(false),
    })
    .default({ level: "info", denials: denialSampling.parse({}), access: false }),
});

export type ConfigInput = z.input<typeof configSchema>;
export type Config = z.output<typeof configSchema>;
export type ListenerConfig = Config["listeners"][number];
export type RouteConfig = Config["routes"][number];
export type ServiceConfig = Config["services"][number];
export type TrustStoreConfig = Config["trustStores"][number];
export type ClientAuthMode = z.output<typeof clientAuthMode>;
export type AuthPolicyConfig = z.output<typeof authPolicy>;
export type CertificateMatchConfig = z.output<typeof certificateMatch>;
export type MatcherConfig = z.output<typeof matcher>;
export type RevocationConfig = z.output<typeof revocation>;
export type StoreConfig = z.output<typeof store>;
export type EnrollmentProfileConfig = z.output<typeof enrollmentProfile>;
export type MqttOptionsConfig = z.output<typeof mqttOptions>;
export type PluginSpecConfig = z.output<typeof pluginSpec>;
export type ChainLimitsConfig = z.output<typeof chainLimits>;
