// `portcullis check --config FILE [--json]`: what `start` validates — the YAML, every key, the files it
// names (certificates, keys, CA bundles, CRL files, the admin token), trust stores and routes — without
// binding a port, opening the device store or fetching anything. Exit 0 when it would start, 2 otherwise.
import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parse } from "yaml";
import type { CompiledConfig } from "../config/compile.ts";
import { ConfigError, formatPath } from "../config/errors.ts";
import { loadConfig } from "../config/load.ts";
import { EstService } from "../enrollment/est-service.ts";
import { RevocationConfigError } from "../revocation/errors.ts";
import { RevocationService } from "../revocation/revocation-service.ts";
import { UsageError } from "./usage.ts";

const QUIET = { info() {}, warn() {}, error() {} };

/**
 * Loads the CRL files as `start` does (a broken one stops it); CRL URLs and OCSP are not fetched. An enrollment
 * profile's CRL file that does not exist yet is left out: `start` writes it.
 */
export async function checkCrlFiles(config: CompiledConfig): Promise<void> {
  const written = new Set(
    (config.enrollment?.profiles ?? []).flatMap((p) =>
      p.crlFile && !existsSync(p.crlFile) ? [p.crlFile] : [],
    ),
  );
  const stores = config.trustStores
    .filter((s) => s.revocation.mode !== "off" && s.revocation.crl.files.length > 0)
    .map((s) => ({
      ...s,
      revocation: {
        ...s.revocation,
        crl: { ...s.revocation.crl, urls: [], files: s.revocation.crl.files.filter((f) => !written.has(f)) },
      },
    }));
  if (stores.length === 0) return;
  const service = await RevocationService.create(stores, { logger: QUIET });
  await service.close();
}

function summary(config: CompiledConfig) {
  return {
    listeners: config.listeners.map((l) => ({
      name: l.name,
      address: l.host,
      port: l.port,
      protocol: l.protocol,
      clientAuth: l.clientAuth,
    })),
    trustStores: config.trustStores.map((s) => s.name),
    services: config.services.map((s) => s.name),
    // The compiled route table keeps no list; the file it was compiled from (valid, just read) has one.
    routes: (parse(readFileSync(config.file, "utf8")) as { routes: { name: string }[] }).routes.map(
      (r) => r.name,
    ),
    admin: config.admin ? { address: config.admin.host, port: config.admin.port } : undefined,
    enrollment: config.enrollment?.profiles.map((p) => p.name) ?? [],
    store: config.store.url.split(":")[0] === "sqlite" ? "sqlite" : "postgres",
  };
}

export async function runCheck(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { config: { type: "string", short: "c" }, json: { type: "boolean", default: false } },
    allowPositionals: true,
    strict: true,
  });
  const file = values.config ?? (positionals.length === 1 ? positionals[0] : undefined);
  if (!file || (values.config && positionals.length > 0) || positionals.length > 1) {
    throw new UsageError("check: usage: portcullis check --config FILE [--json]");
  }
  let config: CompiledConfig;
  try {
    config = await loadConfig(file);
    if (config.enrollment) await EstService.create(config.enrollment, config.file);
    await checkCrlFiles(config);
  } catch (err) {
    const problems =
      err instanceof ConfigError
        ? err.problems.map((p) => ({ path: formatPath(p.path), message: p.message }))
        : err instanceof RevocationConfigError
          ? [{ path: "trustStores", message: err.message }]
          : undefined;
    if (!problems) throw err;
    const where = err instanceof ConfigError ? err.file : file;
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ ok: false, file: where, errors: problems })}\n`);
    } else {
      for (const p of problems) process.stderr.write(`${where}: ${p.path}: ${p.message}\n`);
      process.stderr.write(
        `portcullis: ${where}: ${problems.length} problem${problems.length === 1 ? "" : "s"}; start would refuse this config\n`,
      );
    }
    return 2;
  }
  const s = summary(config);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ok: true, file: config.file, ...s })}\n`);
    return 0;
  }
  const listeners = s.listeners
    .map((l) => `${l.name} ${l.address}:${l.port} (${l.protocol === "mqtt" ? "mqtt, " : ""}${l.clientAuth})`)
    .join(", ");
  process.stdout.write(
    [
      `${config.file}: ok`,
      `  listeners     ${listeners}`,
      `  trust stores  ${s.trustStores.join(", ") || "none"}`,
      `  services      ${s.services.join(", ")}`,
      `  routes        ${s.routes.join(", ")}`,
      `  admin         ${s.admin ? `${s.admin.address}:${s.admin.port}` : "off"}`,
      `  enrollment    ${s.enrollment.length > 0 ? `EST profiles ${s.enrollment.join(", ")}` : "off"}`,
      `  store         ${s.store} (not opened; CRL URLs and OCSP not fetched; ports not bound)`,
      "",
    ].join("\n"),
  );
  return 0;
}
