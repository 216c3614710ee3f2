// Compiles the parts of a config that read files or resolve paths: server certificates (with their keys),
// revocation settings and the store URL.
import { createPrivateKey, type KeyObject } from "node:crypto";
import { resolve } from "node:path";
import { type Certificate, type CertificateParseError, parsePemBundle } from "../identity/certificate.ts";
import type { RevocationSettings } from "../identity/revocation/types.ts";
import { normalizePattern } from "../routing/names.ts";
import { type CompileContext, type Problems, readText } from "./compile-context.ts";
import type { ServerCertificate } from "./compiled.ts";
import type { FieldPath } from "./errors.ts";
import type { ListenerConfig, RevocationConfig } from "./schema.ts";

export function compileServerCertificate(
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
export function compileRevocation(ctx: CompileContext, spec: RevocationConfig): RevocationSettings {
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
export function storeUrl(ctx: CompileContext, url: string): string {
  return url.startsWith("sqlite:") ? `sqlite:${resolve(ctx.baseDir, url.slice("sqlite:".length))}` : url;
}
