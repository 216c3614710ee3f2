// Compiles the `enrollment` section: each profile's issuing CA files (read and checked here, the key is
// loaded by the runtime), its trust stores as auth policies, and which listeners serve `/.well-known/est/`.
import { resolve } from "node:path";
import { type Certificate, type CertificateParseError, parsePemBundle } from "../identity/certificate.ts";
import type { AuthPolicy, TrustStore } from "../identity/types.ts";
import { type CompileContext, type Problems, readText, uniqueNames } from "./compile-context.ts";
import type { FieldPath } from "./errors.ts";
import type { Config, EnrollmentProfileConfig } from "./schema.ts";

export type KeyType = EnrollmentProfileConfig["keyTypes"][number];

export interface CompiledEnrollmentProfile {
  /** The CA label. */
  readonly name: string;
  /** Absolute paths of the issuing CA's certificate, key and the certificates above it. */
  readonly ca: { readonly cert: string; readonly key: string; readonly chain: readonly string[] };
  /** The issuing CA's certificate, parsed (the runtime checks the key against it). */
  readonly caCertificate: Certificate;
  /** Accepts the certificates the profile issues: renewals authenticate with it (registry required). */
  readonly renewal: AuthPolicy;
  readonly keyTypes: readonly KeyType[];
  readonly validityMs: number;
  readonly tokens: { readonly ttlMs: number; readonly maxTtlMs: number } | undefined;
  /** Accepts factory certificates; undefined when factory bootstrap is off. */
  readonly factory: AuthPolicy | undefined;
  readonly approval: "auto" | "manual";
  readonly retryAfterMs: number;
  readonly groups: readonly string[];
  readonly overlapMs: number;
  /** Absolute path of the profile's CRL, if it keeps one. */
  readonly crlFile: string | undefined;
  readonly crlValidityMs: number;
  readonly rateLimit: { readonly requests: number; readonly intervalMs: number };
}

export interface CompiledEnrollment {
  /** Names of the listeners serving `/.well-known/est/`. */
  readonly listeners: ReadonlySet<string>;
  /** The first one is the default (no label). */
  readonly profiles: readonly CompiledEnrollmentProfile[];
}

/** The trust stores a listener serving enrollment must ask for in its handshake: factory and renewal stores. */
export function enrollmentStores(enrollment: CompiledEnrollment | undefined): TrustStore[] {
  const out: TrustStore[] = [];
  for (const profile of enrollment?.profiles ?? []) {
    for (const store of [...(profile.factory?.trustStores ?? []), ...profile.renewal.trustStores]) {
      if (!out.includes(store)) out.push(store);
    }
  }
  return out;
}

export function compileEnrollment(
  config: Config,
  ctx: CompileContext,
  storeRef: (name: string, path: FieldPath) => TrustStore | undefined,
  problems: Problems,
): CompiledEnrollment | undefined {
  const spec = config.enrollment;
  if (!spec) return undefined;
  const generation = ctx.generation ?? 0;
  uniqueNames(spec.profiles, "enrollment.profiles", problems);
  const http = config.listeners.filter((l) => l.protocol === "http");
  const listenerNames = new Set(http.map((l) => l.name));
  const served = spec.listeners ?? http.map((l) => l.name);
  spec.listeners?.forEach((name, i) => {
    if (config.listeners.some((l) => l.name === name && l.protocol !== "http")) {
      problems.add(["enrollment", "listeners", i], `listener "${name}" is not an http listener`);
    } else if (!listenerNames.has(name)) {
      problems.add(
        ["enrollment", "listeners", i],
        `unknown listener "${name}" (known: ${[...listenerNames].join(", ")})`,
      );
    }
  });
  if (http.every((l) => served.includes(l.name))) {
    config.routes.forEach((route, i) => {
      route.paths.forEach((path, j) => {
        if (path === "/.well-known/est" || path.startsWith("/.well-known/est/")) {
          problems.add(
            ["routes", i, "paths", j],
            "every listener answers /.well-known/est/ itself (enrollment), so this route would never be reached; " +
              "name the listeners that serve enrollment in `enrollment.listeners`",
          );
        }
      });
    });
  }
  const servedModes = config.listeners.filter((l) => served.includes(l.name)).map((l) => l.clientAuth);
  const profiles: CompiledEnrollmentProfile[] = [];
  spec.profiles.forEach((p, i) => {
    const at = ["enrollment", "profiles", i] as const;
    if (p.bootstrap.tokens && servedModes.length > 0 && servedModes.every((m) => m === "handshake")) {
      problems.add(
        [...at, "bootstrap", "tokens"],
        "every listener serving enrollment has `clientAuth: handshake`, so a device without a certificate " +
          "cannot reach it to present a token; serve enrollment on a listener with `clientAuth: application`",
      );
    }
    if (p.bootstrap.tokens && p.bootstrap.tokens.ttl > p.bootstrap.tokens.maxTtl) {
      problems.add([...at, "bootstrap", "tokens", "ttl"], "ttl is longer than maxTtl");
    }
    const caCertificate = readCa(ctx, p, [...at, "ca"], problems);
    const store = storeRef(p.trustStore, [...at, "trustStore"]);
    if (store && caCertificate && !holds(store, caCertificate)) {
      problems.add(
        [...at, "trustStore"],
        `trust store "${store.name}" does not hold the issuing CA ${caCertificate.subject}: the certificates ` +
          "this profile issues would not be accepted; add the CA certificate to the store's ca files",
      );
    }
    const factoryStores = p.bootstrap.factory?.trustStores
      .map((name, j) => storeRef(name, [...at, "bootstrap", "factory", "trustStores", j]))
      .filter((s): s is TrustStore => s !== undefined);
    if (store && factoryStores?.includes(store)) {
      problems.add(
        [...at, "bootstrap", "factory", "trustStores"],
        `trust store "${store.name}" is both the factory store and the operational one: a device's certificate ` +
          "would be its own bootstrap credential; keep factory CAs in a store of their own",
      );
    }
    if (!store || !caCertificate) return;
    profiles.push(
      Object.freeze({
        name: p.name,
        ca: {
          cert: resolve(ctx.baseDir, p.ca.cert),
          key: resolve(ctx.baseDir, p.ca.key),
          chain: p.ca.chain.map((f) => resolve(ctx.baseDir, f)),
        },
        caCertificate,
        renewal: Object.freeze({
          id: `est:${p.name}:renewal#${generation}`,
          trustStores: [store],
          registry: "required",
        }),
        keyTypes: p.keyTypes,
        validityMs: p.validity,
        tokens: p.bootstrap.tokens
          ? { ttlMs: p.bootstrap.tokens.ttl, maxTtlMs: p.bootstrap.tokens.maxTtl }
          : undefined,
        factory: factoryStores
          ? Object.freeze({ id: `est:${p.name}:factory#${generation}`, trustStores: factoryStores })
          : undefined,
        approval: p.approval,
        retryAfterMs: p.retryAfter,
        groups: p.groups,
        overlapMs: p.overlap,
        crlFile: p.crlFile === undefined ? undefined : resolve(ctx.baseDir, p.crlFile),
        crlValidityMs: p.crlValidity,
        rateLimit: { requests: p.rateLimit.requests, intervalMs: p.rateLimit.interval },
      }),
    );
  });
  return Object.freeze({ listeners: new Set(served), profiles });
}

/** The issuing CA's certificate (the first of its file), checked to be a CA; the key is read to be watched. */
function readCa(
  ctx: CompileContext,
  p: EnrollmentProfileConfig,
  at: FieldPath,
  problems: Problems,
): Certificate | undefined {
  const certText = readText(ctx, p.ca.cert, [...at, "cert"], problems);
  if (p.ca.key.startsWith("pkcs11:")) {
    problems.add([...at, "key"], "PKCS#11 keys are not supported yet: give the path of a key file");
  } else {
    readText(ctx, p.ca.key, [...at, "key"], problems);
  }
  p.ca.chain.forEach((f, j) => {
    readText(ctx, f, [...at, "chain", j], problems);
  });
  if (certText === undefined) return undefined;
  let cert: Certificate | undefined;
  try {
    cert = parsePemBundle(certText)[0];
  } catch (err) {
    problems.add([...at, "cert"], `${p.ca.cert}: ${(err as CertificateParseError).message}`);
    return undefined;
  }
  if (!cert) {
    problems.add([...at, "cert"], `${p.ca.cert}: no PEM certificate found`);
    return undefined;
  }
  if (!cert.isCA) {
    problems.add(
      [...at, "cert"],
      `${p.ca.cert}: ${cert.subject} is not a CA certificate (basicConstraints cA)`,
    );
    return undefined;
  }
  return cert;
}

/** Whether the store holds `ca` itself (devices send their leaf only: the store must complete the path). */
function holds(store: TrustStore, ca: Certificate): boolean {
  return [...store.anchors, ...store.intermediates].some((c) => c.fingerprint === ca.fingerprint);
}
