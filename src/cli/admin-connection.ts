// What the CLI's admin-API commands (`devices`, `tokens`, `certificates`) share: the connection options, how
// the admin client is found (options, then environment, then the default URL), tables and API errors.
import { readFileSync } from "node:fs";
import { type AdminApiError, AdminClient } from "../admin/client.ts";
import { UsageError } from "./usage.ts";

/** The connection options every admin-API command takes, for node:util parseArgs. */
export const CONNECTION_OPTIONS = {
  url: { type: "string" },
  token: { type: "string" },
  "token-file": { type: "string" },
  cacert: { type: "string" },
  "client-cert": { type: "string" },
  "client-key": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export interface ConnectionValues {
  readonly url?: string;
  readonly token?: string;
  readonly "token-file"?: string;
  readonly cacert?: string;
  readonly "client-cert"?: string;
  readonly "client-key"?: string;
}

export function readText(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

export function connect(values: ConnectionValues): AdminClient {
  const url = values.url ?? process.env.PORTCULLIS_ADMIN_URL ?? "http://127.0.0.1:8444";
  if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError(`--url must be an http(s) URL, got "${url}"`);
  const token =
    values.token ??
    (values["token-file"]
      ? readText(values["token-file"], "token file").trim()
      : process.env.PORTCULLIS_ADMIN_TOKEN);
  if (!token) throw new UsageError("no admin token: give --token, --token-file or PORTCULLIS_ADMIN_TOKEN");
  if (Boolean(values["client-cert"]) !== Boolean(values["client-key"])) {
    throw new UsageError("--client-cert and --client-key go together");
  }
  return new AdminClient({
    url,
    token,
    ca: values.cacert ? readText(values.cacert, "CA file") : undefined,
    cert: values["client-cert"] ? readText(values["client-cert"], "client certificate") : undefined,
    key: values["client-key"] ? readText(values["client-key"], "client key") : undefined,
  });
}

/** Rows as a left-aligned table, the first row being the header. */
export function table(rows: readonly string[][]): string {
  const widths = rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, col) => cell.padEnd(widths[col] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** An API error as the CLI prints it: the message with the status, then one line per field or line at fault. */
export function printError(e: AdminApiError, err: (s: string) => void): void {
  err(`portcullis: ${e.message}${e.status ? ` (HTTP ${e.status})` : ""}`);
  for (const p of e.errors) {
    const where = [p.line === undefined ? "" : `line ${p.line}`, p.path ?? ""].filter(Boolean).join(" ");
    err(`  ${where ? `${where}: ` : ""}${p.message}`);
  }
  if (e.errorCount !== undefined && e.errorCount > e.errors.length) {
    err(`  … and ${e.errorCount - e.errors.length} more`);
  }
}
