// Compiles a validated config into frozen runtime objects: trust stores, listeners with their server
// certificates, upstream service options, auth policies and the route table. Referenced files are read
// and checked here, so that a broken certificate, key or CA file stops start-up (fail closed).
import { CertificateParseError } from "../identity/certificate.ts";
import { compileTrustStore, TrustStoreError } from "../identity/trust-store.ts";
import type { AuthPolicy, TrustStore } from "../identity/types.ts";
import { stripList } from "../proxy/request-headers.ts";
import { TrustedProxies } from "../proxy/trusted-proxies.ts";
import { normalizeName, normalizePattern } from "../routing/names.ts";
import {
  type CompiledRoute,
  RouteConflictError,
  type RouteSpec,
  RouteTable,
} from "../routing/route-table.ts";
import { type CompileContext, Problems, readText, uniqueNames } from "./compile-context.ts";
import { compileEnrollment, enrollmentStores } from "./compile-enrollment.ts";
import { compileMqtt } from "./compile-mqtt.ts";
import { compileRevocation, compileServerCertificate, storeUrl } from "./compile-parts.ts";
import { compilePlugins, routePlugins } from "./compile-plugins.ts";
import { compileAuthPolicy } from "./compile-policy.ts";
import { compileRouteTimeouts, compileServices } from "./compile-services.ts";
import type { CompiledAdmin, CompiledConfig, CompiledListener, ServerCertificate } from "./compiled.ts";
import { ConfigError, type FieldPath } from "./errors.ts";
import type { Config } from "./schema.ts";

export type { CompileContext } from "./compile-context.ts";
export type { CompiledAdmin, CompiledConfig, CompiledListener, ServerCertificate } from "./compiled.ts";

const WILDCARDS = new Set(["0.0.0.0", "::", "[::]"]);

/** Which of `bound` already has `port` on `host` (or on a wildcard address overlapping it); 0 never clashes. */
function portTakenBy(
  bound: readonly { name: string; host: string; port: number }[],
  host: string,
  port: number,
): string | undefined {
  if (port === 0) return undefined;
  const clash = bound.find(
    (b) => b.port === port && (b.host === host || WILDCARDS.has(b.host) || WILDCARDS.has(host)),
  );
  return clash?.name;
}

export function compileConfig(config: Config, ctx: CompileContext): CompiledConfig {
  const problems = new Problems();
  const generation = ctx.generation ?? 0;
  uniqueNames(config.listeners, "listeners", problems);
  uniqueNames(config.trustStores, "trustStores", problems);
  uniqueNames(config.services, "services", problems);
  uniqueNames(config.routes, "routes", problems);

  const trustStores = new Map<string, TrustStore>();
  config.trustStores.forEach((spec, i) => {
    const texts = spec.ca.map((f, j) => readText(ctx, f, ["trustStores", i, "ca", j], problems));
    if (texts.some((t) => t === undefined)) return;
    try {
      trustStores.set(
        spec.name,
        compileTrustStore(spec.name, texts.join("\n"), {
          maxDepth: spec.maxDepth,
          purpose: spec.purpose,
          notBeforeGraceMs: spec.notBeforeGrace,
          profile: spec.profile,
          minRsaBits: spec.minRsaBits,
          maxRsaBits: spec.maxRsaBits,
          rsaPublicExponents: spec.rsaPublicExponents,
          curves: spec.curves,
          autoRegister: spec.autoRegister,
          revocation: compileRevocation(ctx, spec.revocation),
        }),
      );
    } catch (err) {
      if (err instanceof TrustStoreError || err instanceof CertificateParseError) {
        problems.add(["trustStores", i, "ca"], err.message);
      } else throw err;
    }
  });

  const storeRef = (name: string, path: FieldPath): TrustStore | undefined => {
    const store = trustStores.get(name);
    if (!store && config.trustStores.some((t) => t.name === name)) return undefined; // already reported
    if (!store) {
      const known = [...trustStores.keys()].join(", ") || "none defined";
      problems.add(path, `unknown trust store "${name}" (known: ${known})`);
    }
    return store;
  };

  const serviceNames = new Set(config.services.map((s) => s.name));
  // Compiled once per service: its routes share each plugin (one rate limit for the service, not one per route).
  const servicePlugins = new Map(
    config.services.map((s, i) => [
      s.name,
      compilePlugins(s.plugins, ["services", i], `service:${s.name}`, problems),
    ]),
  );
  const routeSpecs: RouteSpec[] = [];
  const referencedStores: TrustStore[] = [];
  config.routes.forEach((route, i) => {
    const at = ["routes", i] as const;
    if (!serviceNames.has(route.service))
      problems.add([...at, "service"], `unknown service "${route.service}"`);
    let policy: AuthPolicy | undefined;
    if (route.auth && route.public) {
      problems.add([...at, "public"], "a route is either public or has an auth policy, not both");
    } else if (!route.auth && !route.public) {
      problems.add(at, "a route without an auth policy must say `public: true` (deny by default)");
    } else if (
      route.public &&
      !route.publicBehindHandshake &&
      config.listeners.filter((l) => l.protocol === "http").every((l) => l.clientAuth === "handshake")
    ) {
      // Nothing without a certificate passes a handshake-mode listener: "public" would silently mean
      // "any trusted certificate". Say so, and let the operator write what is meant.
      problems.add(
        [...at, "public"],
        "every listener has `clientAuth: handshake`, so a client without a certificate can never reach this " +
          "public route; add a listener with `clientAuth: application` (or `off`) to serve it, or set " +
          "`publicBehindHandshake: true` to serve it to any client whose certificate passes the handshake",
      );
    } else if (route.auth) {
      policy = compileAuthPolicy(
        route.auth,
        `route:${route.name}#${generation}`,
        [...at, "auth"],
        storeRef,
        problems,
      );
      for (const s of policy.trustStores) if (!referencedStores.includes(s)) referencedStores.push(s);
    }
    const hosts = route.hosts?.map((raw, j) => {
      const host = normalizePattern(raw);
      if (host === undefined) problems.add([...at, "hosts", j], `not a valid host name: "${raw}"`);
      return host ?? "";
    });
    const plugins = routePlugins(
      servicePlugins.get(route.service),
      compilePlugins(route.plugins, at, `route:${route.name}`, problems),
    );
    const compiled: CompiledRoute = Object.freeze({
      name: route.name,
      service: route.service,
      policy,
      allowAmbiguousPaths: route.allowAmbiguousPaths,
      ...(plugins.length > 0 ? { plugins } : {}),
    });
    routeSpecs.push({ route: compiled, hosts, paths: route.paths, methods: route.methods });
  });

  const enrollment = compileEnrollment(config, ctx, storeRef, problems);
  const listeners: CompiledListener[] = [];
  const bound: { name: string; host: string; port: number }[] = [];
  config.listeners.forEach((spec, i) => {
    const at = ["listeners", i] as const;
    const taken = portTakenBy(bound, spec.host, spec.port);
    if (taken) problems.add([...at, "port"], `port ${spec.port} on ${spec.host} is already ${taken}'s`);
    bound.push({ name: `listener "${spec.name}"`, host: spec.host, port: spec.port });
    if (normalizeName(spec.host) === undefined)
      problems.add([...at, "host"], `not a valid address: "${spec.host}"`);
    const certificates = spec.certificates
      .map((c, j) => compileServerCertificate(ctx, c, [...at, "certificates", j], problems))
      .filter((c): c is ServerCertificate => c !== undefined);
    const servesEnrollment = enrollment?.listeners.has(spec.name) ?? false;
    const forEnrollment = servesEnrollment ? enrollmentStores(enrollment) : [];
    const mqtt = compileMqtt(spec, at, generation, storeRef, problems);
    const stores = spec.trustStores
      ? spec.trustStores
          .map((name, j) => storeRef(name, [...at, "trustStores", j]))
          .filter((s): s is TrustStore => s !== undefined)
      : mqtt
        ? [...mqtt.policy.trustStores]
        : [...referencedStores, ...forEnrollment.filter((s) => !referencedStores.includes(s))];
    if (spec.trustStores && spec.clientAuth === "handshake") {
      for (const missing of forEnrollment.filter((s) => !stores.includes(s))) {
        problems.add(
          [...at, "trustStores"],
          `this listener serves enrollment in handshake mode but leaves out trust store "${missing.name}": ` +
            "certificates of that store would fail the handshake before they reach /.well-known/est/",
        );
      }
    }
    if (spec.clientAuth !== "off" && stores.length === 0 && !spec.trustStores) {
      problems.add(
        [...at, "clientAuth"],
        `clientAuth "${spec.clientAuth}" needs a trust store: name one in trustStores or in a route's auth`,
      );
    }
    listeners.push(
      Object.freeze({
        name: spec.name,
        host: spec.host,
        port: spec.port,
        protocol: spec.protocol,
        ...(mqtt ? { mqtt } : {}),
        clientAuth: spec.clientAuth,
        sendCaNames: spec.sendCaNames,
        hideReason: spec.hideReason,
        certificates,
        trustStores: stores,
        policy: Object.freeze({ id: `listener:${spec.name}#${generation}`, trustStores: stores }),
        limits: spec.limits,
        diagnosticsPath: spec.diagnostics?.path,
        trustedProxies: new TrustedProxies(spec.trustedProxies),
        ...(spec.proxyProtocol
          ? { proxyProtocol: { trustedSources: new TrustedProxies(spec.proxyProtocol.trustedSources) } }
          : {}),
      }),
    );
  });

  let admin: CompiledAdmin | undefined;
  if (config.admin) {
    const spec = config.admin;
    const taken = portTakenBy(bound, spec.host, spec.port);
    if (taken) problems.add(["admin", "port"], `port ${spec.port} on ${spec.host} is already ${taken}'s`);
    const text = readText(ctx, spec.tokenFile, ["admin", "tokenFile"], problems);
    const token = text?.trim();
    if (token !== undefined && token.length < 16) {
      problems.add(["admin", "tokenFile"], "the admin token must be at least 16 characters");
    }
    let tls: CompiledAdmin["tls"];
    if (spec.tls) {
      const cert = compileServerCertificate(
        ctx,
        { ...spec.tls, names: ["admin"] },
        ["admin", "tls"],
        problems,
      );
      const stores = (spec.tls.trustStores ?? [])
        .map((n, j) => storeRef(n, ["admin", "tls", "trustStores", j]))
        .filter((s): s is TrustStore => s !== undefined);
      if (cert) {
        tls = {
          cert: cert.certPem,
          key: cert.keyPem,
          ca: stores.length > 0 ? stores.map((s) => s.pem).join("") : undefined,
        };
      }
    }
    if (token !== undefined && token.length >= 16) {
      admin = {
        host: spec.host,
        port: spec.port,
        token,
        decisionsKept: spec.decisionsKept,
        publicHealth: spec.publicHealth,
        tls,
        console: { ...spec.console },
      };
    }
  }

  const services = compileServices(config, ctx, problems);
  let routes: RouteTable | undefined;
  if (problems.list.length === 0) {
    try {
      routes = new RouteTable(routeSpecs);
    } catch (err) {
      if (!(err instanceof RouteConflictError)) throw err;
      problems.add(["routes"], err.message);
    }
  }
  if (problems.list.length > 0 || !routes) throw new ConfigError(ctx.file, problems.list);

  return Object.freeze({
    file: ctx.file,
    generation,
    files: [ctx.file, ...problems.files],
    listeners,
    trustStores: [...trustStores.values()],
    chainLimits: Object.freeze({ ...config.chainLimits }),
    services,
    routeTimeouts: compileRouteTimeouts(config),
    routes,
    enrollment,
    identityHeaders: config.identityHeaders,
    stripHeaders: stripList(config.stripHeaders),
    admin,
    store: { ...config.store, url: storeUrl(ctx, config.store.url) },
    logLevel: config.log.level,
    denialSampling: { intervalMs: config.log.denials.interval, perInterval: config.log.denials.perInterval },
    accessLog: config.log.access,
  });
}
