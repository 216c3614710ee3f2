// Compiles a validated config into frozen runtime objects: trust stores, listeners with their server
// certificates, upstream service options, auth policies and the route table. Referenced files are read
// and checked here, so that a broken certificate, key or CA file stops start-up (fail closed).
import { createPrivateKey, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { type Certificate, CertificateParseError, parsePemBundle } from "../identity/certificate.ts";
import { compileCertificateMatch, MatcherConfigError } from "../identity/matchers.ts";
import type { RevocationSettings } from "../identity/revocation/types.ts";
import { compileTrustStore, TrustStoreError } from "../identity/trust-store.ts";
import type { AuthPolicy, CertificateMatcher, TrustStore } from "../identity/types.ts";
import type { IdentityHeaderOptions } from "../proxy/identity-headers.ts";
import type { UpstreamOptions } from "../proxy/upstream.ts";
import { normalizeName, normalizePattern } from "../routing/names.ts";
import {
  type CompiledRoute,
  RouteConflictError,
  type RouteSpec,
  RouteTable,
} from "../routing/route-table.ts";
import { ConfigError, type ConfigProblem, type FieldPath } from "./errors.ts";
import type { ClientAuthMode, Config, ListenerConfig, RevocationConfig } from "./schema.ts";

export interface ServerCertificate {
  /** Normalised SNI names and `*.` patterns this certificate serves. */
  readonly names: readonly string[];
  /** Leaf followed by the chain, PEM. */
  readonly certPem: string;
  readonly keyPem: string;
  readonly leaf: Certificate;
}

export interface CompiledListener {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly clientAuth: ClientAuthMode;
  readonly sendCaNames: boolean;
  readonly hideReason: boolean;
  /** The first one is the default. */
  readonly certificates: readonly ServerCertificate[];
  readonly trustStores: readonly TrustStore[];
  /** Accepts a chain from any of the listener's trust stores: the handshake-mode verdict. */
  readonly policy: AuthPolicy;
  readonly limits: ListenerConfig["limits"];
  /** Path of the installer diagnostics endpoint; undefined when off. */
  readonly diagnosticsPath: string | undefined;
}

export interface CompiledConfig {
  readonly file: string;
  readonly generation: number;
  /** Every file the config read (certificates, keys, CA and CRL files): a change of one triggers a reload. */
  readonly files: readonly string[];
  readonly listeners: readonly CompiledListener[];
  readonly trustStores: readonly TrustStore[];
  readonly services: readonly UpstreamOptions[];
  readonly routes: RouteTable;
  readonly identityHeaders: IdentityHeaderOptions;
  readonly admin: CompiledAdmin | undefined;
  readonly store: Config["store"] & { readonly url: string };
  readonly logLevel: Config["log"]["level"];
}

export interface CompiledAdmin {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  readonly decisionsKept: number;
  /** Admin over TLS; `ca` (PEM of the admin trust stores) set when a client certificate is required. */
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string | undefined } | undefined;
}

export interface CompileContext {
  readonly file: string;
  readonly baseDir: string;
  /** Increases with every (re)load: policy ids carry it, so no verdict outlives the config it was made under. */
  readonly generation?: number;
}

/** What one compilation collects: its problems, and every file it depends on. */
class Problems {
  readonly list: ConfigProblem[] = [];
  readonly files = new Set<string>();
  add(path: FieldPath, message: string): void {
    this.list.push({ path, message });
  }
}

function uniqueNames(items: readonly { name: string }[], section: string, problems: Problems): void {
  const seen = new Set<string>();
  items.forEach((item, i) => {
    if (seen.has(item.name)) problems.add([section, i, "name"], `duplicate name "${item.name}"`);
    seen.add(item.name);
  });
}

function readText(
  ctx: CompileContext,
  file: string,
  path: FieldPath,
  problems: Problems,
): string | undefined {
  const full = resolve(ctx.baseDir, file);
  try {
    return readFileSync(full, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    problems.add(path, code === "ENOENT" ? `file not found: ${full}` : `cannot read ${full}: ${code ?? err}`);
    return undefined;
  }
}

function compileServerCertificate(
  ctx: CompileContext,
  spec: ListenerConfig["certificates"][number],
  path: FieldPath,
  problems: Problems,
): ServerCertificate | undefined {
  const certPem = readText(ctx, spec.cert, [...path, "cert"], problems);
  const keyPem = readText(ctx, spec.key, [...path, "key"], problems);
  if (certPem === undefined || keyPem === undefined) return undefined;
  let chain: Certificate[];
  try {
    chain = parsePemBundle(certPem);
  } catch (err) {
    problems.add([...path, "cert"], `${spec.cert}: ${(err as CertificateParseError).message}`);
    return undefined;
  }
  const leaf = chain[0];
  if (!leaf) {
    problems.add([...path, "cert"], `${spec.cert}: no PEM certificate found`);
    return undefined;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    problems.add([...path, "key"], `${spec.key}: not a usable private key (${(err as Error).message})`);
    return undefined;
  }
  if (!leaf.node.checkPrivateKey(key)) {
    problems.add([...path, "key"], `${spec.key}: does not match the certificate in ${spec.cert}`);
    return undefined;
  }
  const rawNames = spec.names ?? [...leaf.sanDns, ...leaf.sanIps];
  const names: string[] = [];
  rawNames.forEach((raw, i) => {
    const name = normalizePattern(raw);
    if (name === undefined) problems.add([...path, "names", i], `not a valid host name: "${raw}"`);
    else names.push(name);
  });
  return { names, certPem, keyPem, leaf };
}

/** CRL files are watched by the revocation service itself (a change swaps one snapshot, not the config). */
function compileRevocation(ctx: CompileContext, spec: RevocationConfig): RevocationSettings {
  return Object.freeze({
    mode: spec.mode,
    scope: spec.scope,
    crl: Object.freeze({
      files: spec.crl.files.map((f) => resolve(ctx.baseDir, f)),
      urls: spec.crl.urls,
      distributionPoints: spec.crl.distributionPoints,
      refreshIntervalMs: spec.crl.refreshInterval,
      timeoutMs: spec.crl.timeout,
      maxBytes: spec.crl.maxBytes,
    }),
    ocsp: Object.freeze({
      enabled: spec.ocsp.enabled,
      responder: spec.ocsp.responder,
      timeoutMs: spec.ocsp.timeout,
      proxy: spec.ocsp.proxy,
      maxAgeMs: spec.ocsp.maxAge,
    }),
  });
}

/** A `sqlite:` path is relative to the config file; `postgres://` URLs are kept as they are. */
function storeUrl(ctx: CompileContext, url: string): string {
  return url.startsWith("sqlite:") ? `sqlite:${resolve(ctx.baseDir, url.slice("sqlite:".length))}` : url;
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
          minRsaBits: spec.minRsaBits,
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
    } else if (route.auth) {
      const stores = route.auth.trustStores
        .map((name, j) => storeRef(name, [...at, "auth", "trustStores", j]))
        .filter((s): s is TrustStore => s !== undefined);
      for (const s of stores) if (!referencedStores.includes(s)) referencedStores.push(s);
      let match: CertificateMatcher | undefined;
      if (route.auth.match) {
        try {
          match = compileCertificateMatch(route.auth.match, `routes[${i}].auth.match`);
        } catch (err) {
          if (!(err instanceof MatcherConfigError)) throw err;
          problems.add([...at, "auth", "match", ...err.field], err.problem);
        }
      }
      policy = Object.freeze({
        id: `route:${route.name}#${generation}`,
        trustStores: stores,
        match,
        enforce: route.auth.enforce,
        registry: route.auth.registry,
        groups: route.auth.groups,
      });
    }
    const hosts = route.hosts?.map((raw, j) => {
      const host = normalizePattern(raw);
      if (host === undefined) problems.add([...at, "hosts", j], `not a valid host name: "${raw}"`);
      return host ?? "";
    });
    const compiled: CompiledRoute = Object.freeze({ name: route.name, service: route.service, policy });
    routeSpecs.push({ route: compiled, hosts, paths: route.paths, methods: route.methods });
  });

  const listeners: CompiledListener[] = [];
  const bound = new Set<string>();
  config.listeners.forEach((spec, i) => {
    const at = ["listeners", i] as const;
    const address = `${spec.host}:${spec.port}`;
    if (spec.port !== 0 && bound.has(address))
      problems.add([...at, "port"], `${address} is used by another listener`);
    bound.add(address);
    if (normalizeName(spec.host) === undefined)
      problems.add([...at, "host"], `not a valid address: "${spec.host}"`);
    const certificates = spec.certificates
      .map((c, j) => compileServerCertificate(ctx, c, [...at, "certificates", j], problems))
      .filter((c): c is ServerCertificate => c !== undefined);
    const stores = spec.trustStores
      ? spec.trustStores
          .map((name, j) => storeRef(name, [...at, "trustStores", j]))
          .filter((s): s is TrustStore => s !== undefined)
      : referencedStores;
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
        clientAuth: spec.clientAuth,
        sendCaNames: spec.sendCaNames,
        hideReason: spec.hideReason,
        certificates,
        trustStores: stores,
        policy: Object.freeze({ id: `listener:${spec.name}#${generation}`, trustStores: stores }),
        limits: spec.limits,
        diagnosticsPath: spec.diagnostics?.path,
      }),
    );
  });

  let admin: CompiledAdmin | undefined;
  if (config.admin) {
    const spec = config.admin;
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
      admin = { host: spec.host, port: spec.port, token, decisionsKept: spec.decisionsKept, tls };
    }
  }

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
    services: config.services.map((s) => ({
      name: s.name,
      targets: s.targets.map((t) => new URL(t)),
      connectTimeoutMs: s.connectTimeout,
      readTimeoutMs: s.readTimeout,
      retries: s.retries,
      preserveHost: s.preserveHost,
    })),
    routes,
    identityHeaders: config.identityHeaders,
    admin,
    store: { ...config.store, url: storeUrl(ctx, config.store.url) },
    logLevel: config.log.level,
  });
}
