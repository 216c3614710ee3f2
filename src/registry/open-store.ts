// Picks the registry store for a store URL: `sqlite:PATH` (relative to baseDir) or `postgres://…[?schema=NAME]`.
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { RegistryStore } from "./enrollment-types.ts";
import { DEFAULT_SCHEMA, PostgresDeviceStore, type PostgresStoreOptions } from "./postgres-store.ts";
import { SqliteDeviceStore, type SqliteStoreOptions } from "./sqlite-store.ts";

export interface OpenStoreOptions {
  /** Directory a relative SQLite path is resolved against (the config file's directory). */
  readonly baseDir?: string;
  readonly sqlite?: SqliteStoreOptions;
  readonly postgres?: Omit<PostgresStoreOptions, "url" | "schema">;
}

/**
 * A new, not yet migrated store; call migrate() once at start. For PostgreSQL the schema comes from a
 * `schema` query parameter (default "portcullis"), removed before the URL reaches pg.
 */
export function openDeviceStore(url: string, options: OpenStoreOptions = {}): RegistryStore {
  if (url.startsWith("sqlite:")) {
    const path = resolve(options.baseDir ?? process.cwd(), url.slice("sqlite:".length));
    mkdirSync(dirname(path), { recursive: true });
    return new SqliteDeviceStore(path, options.sqlite);
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const parsed = new URL(url);
    const schema = parsed.searchParams.get("schema") ?? DEFAULT_SCHEMA;
    parsed.searchParams.delete("schema");
    return new PostgresDeviceStore({ ...options.postgres, url: parsed.href, schema });
  }
  throw new RangeError(`unsupported store URL ${JSON.stringify(url)}: expected sqlite:PATH or postgres://…`);
}
