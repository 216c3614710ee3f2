// Compiles `services[]` into the upstreams' options: targets as URLs, timeouts in milliseconds, balancing, health
// checks, outlier detection, the retry budget, and TLS to the targets with its files read (a missing or broken
// CA, certificate or key file stops the load).
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { UpstreamOptions, UpstreamTlsOptions } from "../proxy/upstream.ts";
import { type CompileContext, type Problems, readText } from "./compile-context.ts";
import type { Config } from "./schema.ts";

type ServiceConfig = Config["services"][number];

function compileTls(
  ctx: CompileContext,
  spec: NonNullable<ServiceConfig["tls"]>,
  at: readonly (string | number)[],
  problems: Problems,
): UpstreamTlsOptions | undefined {
  const ca = spec.ca?.map((f, j) => readText(ctx, f, [...at, "ca", j], problems));
  const cert = spec.cert !== undefined ? readText(ctx, spec.cert, [...at, "cert"], problems) : undefined;
  const key = spec.key !== undefined ? readText(ctx, spec.key, [...at, "key"], problems) : undefined;
  if (ca?.some((t) => t === undefined)) return undefined;
  ca?.forEach((text, j) => {
    try {
      new X509Certificate(text as string);
    } catch {
      problems.add([...at, "ca", j], "not a PEM certificate");
    }
  });
  if (cert !== undefined) {
    try {
      const parsed = new X509Certificate(cert);
      if (key !== undefined && !parsed.checkPrivateKey(createPrivateKey(key))) {
        problems.add([...at, "key"], "the key does not match the certificate");
      }
    } catch {
      problems.add([...at, "cert"], "not a PEM certificate with its PEM private key");
    }
  }
  return {
    ...(ca !== undefined ? { ca: (ca as string[]).join("\n") } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(spec.serverName !== undefined ? { serverName: spec.serverName } : {}),
    rejectUnauthorized: spec.verify,
  };
}

/** Each route's own `timeout`, by route name: routes without one are absent. */
export function compileRouteTimeouts(config: Config): ReadonlyMap<string, number> {
  return new Map(
    config.routes.flatMap((r) => (r.timeout !== undefined ? [[r.name, r.timeout] as const] : [])),
  );
}

export function compileServices(config: Config, ctx: CompileContext, problems: Problems): UpstreamOptions[] {
  return config.services.map((s, i) => {
    const at = ["services", i] as const;
    if (s.tls && !s.targets.some((t) => /^https:/i.test(t))) {
      problems.add([...at, "tls"], "`tls` applies to https:// targets, and this service has none");
    }
    const tls = s.tls ? compileTls(ctx, s.tls, [...at, "tls"], problems) : undefined;
    return {
      name: s.name,
      targets: s.targets.map((t) => new URL(t)),
      connectTimeoutMs: s.connectTimeout,
      readTimeoutMs: s.readTimeout,
      retries: s.retries,
      ...(s.retryBudget !== undefined ? { retryBudget: s.retryBudget } : {}),
      preserveHost: s.preserveHost,
      balancing: s.balancing,
      ...(s.healthCheck
        ? {
            healthCheck: {
              path: s.healthCheck.path,
              intervalMs: s.healthCheck.interval,
              timeoutMs: s.healthCheck.timeout,
              healthyThreshold: s.healthCheck.healthyThreshold,
              unhealthyThreshold: s.healthCheck.unhealthyThreshold,
              ...(s.healthCheck.expectStatus ? { expectStatus: s.healthCheck.expectStatus } : {}),
            },
          }
        : {}),
      ...(s.outlierDetection
        ? {
            outlierDetection: {
              consecutiveFailures: s.outlierDetection.consecutiveFailures,
              ejectionTimeMs: s.outlierDetection.ejectionTime,
            },
          }
        : {}),
      ...(tls ? { tls } : {}),
    };
  });
}
