import { parseArgs } from "node:util";
import {
  AdminApiError,
  type AdminClient,
  type EnrollmentTokenJson,
  type IssuedCertificateJson,
} from "../admin/client.ts";
import { CRL_REASONS } from "../pki/issue.ts";
import { CONNECTION_OPTIONS, connect, printError, table } from "./admin-connection.ts";
import { CERTIFICATES_USAGE, TOKENS_USAGE, UsageError } from "./usage.ts";

export interface AdminIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: AdminIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  device: { type: "string" },
  profile: { type: "string" },
  ttl: { type: "string" },
  reason: { type: "string" },
  limit: { type: "string" },
  after: { type: "string" },
  all: { type: "boolean" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

/** Which options each subcommand takes, besides the connection ones and --json. */
const TAKES: Record<string, readonly (keyof Values)[]> = {
  "tokens create": ["device", "profile", "ttl"],
  "tokens list": ["device", "limit", "after", "all"],
  "tokens revoke": [],
  "certificates list": ["device", "limit", "after", "all"],
  "certificates revoke": ["reason"],
};
const CONNECTION = ["url", "token", "token-file", "cacert", "client-cert", "client-key", "json", "help"];

function limitOf(values: Values): number | undefined {
  if (values.limit === undefined) return undefined;
  if (!/^\d+$/.test(values.limit)) throw new UsageError("--limit must be a number");
  return Number(values.limit);
}

/** --ttl: a duration ("30m", "24h", "7d") sent as is, or milliseconds. */
function ttlOf(values: Values): string | number | undefined {
  const ttl = values.ttl;
  if (ttl === undefined) return undefined;
  if (/^\d+$/.test(ttl)) return Number(ttl);
  if (/^\d+(ms|s|m|h|d)$/.test(ttl)) return ttl;
  throw new UsageError(`--ttl must be a duration such as 30m, 24h or 7d (or milliseconds), got "${ttl}"`);
}

/** Every page while --all, else one; `next` of the last page read. */
async function pages<T>(
  values: Values,
  read: (
    after: string | undefined,
    limit: number | undefined,
  ) => Promise<{ items: readonly T[]; next?: string | null }>,
): Promise<{ items: T[]; next: string | undefined }> {
  const limit = limitOf(values);
  const items: T[] = [];
  let after = values.after;
  for (;;) {
    const page = await read(after, limit);
    items.push(...page.items);
    after = page.next ?? undefined;
    if (!values.all || after === undefined) return { items, next: after };
  }
}

function tokenRows(tokens: readonly EnrollmentTokenJson[]): string {
  const rows = tokens.map((t) => [t.id, t.deviceId, t.profile, t.state, t.createdAt, t.expiresAt]);
  return table([["ID", "DEVICE", "PROFILE", "STATE", "CREATED", "EXPIRES"], ...rows]);
}

function certificateRows(certs: readonly IssuedCertificateJson[]): string {
  const rows = certs.map((c) => [
    c.serial,
    c.state === "revoked" && c.revocationReason ? `revoked (${c.revocationReason})` : c.state,
    c.operation,
    c.profile,
    c.issuedAt,
    c.notAfter,
  ]);
  return table([["SERIAL", "STATE", "OPERATION", "PROFILE", "ISSUED", "NOT AFTER"], ...rows]);
}

async function tokens(
  client: AdminClient,
  command: string,
  args: string[],
  values: Values,
  out: (s: string) => void,
): Promise<void> {
  if (command === "create") {
    if (!values.device) throw new UsageError("tokens create needs --device");
    const created = await client.createEnrollmentToken({
      deviceId: values.device,
      ...(values.profile !== undefined && { profile: values.profile }),
      ...(values.ttl !== undefined && { ttl: ttlOf(values) }),
    });
    if (values.json) return out(JSON.stringify(created));
    out(
      `${table([
        ["token", created.token ?? "(not returned)"],
        ["id", created.id],
        ["device", created.deviceId],
        ["profile", created.profile],
        ["expires", created.expiresAt],
      ])}\nthe token is shown only this once: the gateway keeps its hash, not the token`,
    );
  } else if (command === "list") {
    const { items, next } = await pages(values, async (after, limit) => {
      const page = await client.listEnrollmentTokens({ deviceId: values.device, after, limit });
      return { items: page.tokens, next: page.next };
    });
    if (values.json) return out(JSON.stringify({ tokens: items, next: next ?? null }));
    out(items.length === 0 ? "no enrollment tokens" : tokenRows(items));
    if (next !== undefined) out(`(more: --after ${next}, or --all)`);
  } else {
    for (const id of args) {
      const token = await client.revokeEnrollmentToken(id);
      out(values.json ? JSON.stringify(token) : `revoked ${token.id} (device ${token.deviceId})`);
    }
  }
}

async function certificates(
  client: AdminClient,
  command: string,
  args: string[],
  values: Values,
  out: (s: string) => void,
): Promise<void> {
  if (command === "list") {
    const device = values.device;
    if (!device) throw new UsageError("certificates list needs --device");
    const { items, next } = await pages(values, async (after, limit) => {
      const page = await client.listDeviceCertificates(device, { after, limit });
      return { items: page.certificates, next: page.next };
    });
    if (values.json) return out(JSON.stringify({ certificates: items, next: next ?? null }));
    out(items.length === 0 ? `no certificates issued to ${device}` : certificateRows(items));
    if (next !== undefined) out(`(more: --after ${next}, or --all)`);
  } else {
    const reason = values.reason;
    if (reason !== undefined && !CRL_REASONS.includes(reason)) {
      throw new UsageError(`--reason must be one of ${CRL_REASONS.join(", ")}, got "${reason}"`);
    }
    for (const serial of args) {
      const cert = await client.revokeCertificate(serial, reason);
      out(
        values.json
          ? JSON.stringify(cert)
          : `${cert.serial} of ${cert.deviceId}: ${cert.state}${cert.revocationReason ? ` (${cert.revocationReason})` : ""}`,
      );
    }
  }
}

async function run(noun: "tokens" | "certificates", argv: string[], io: AdminIo): Promise<number> {
  const usage = noun === "tokens" ? TOKENS_USAGE : CERTIFICATES_USAGE;
  const out = (s: string) => io.stdout(`${s}\n`);
  const err = (s: string) => io.stderr(`${s}\n`);
  const { values, positionals } = parseArgs({
    args: argv,
    options: OPTIONS,
    strict: true,
    allowPositionals: true,
  });
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === "help") {
    io.stdout(usage);
    return command === undefined && !values.help ? 2 : 0;
  }
  const takes = TAKES[`${noun} ${command}`];
  if (!takes) throw new UsageError(`unknown ${noun} command "${command}"\n\n${usage}`);
  for (const [name, value] of Object.entries(values)) {
    if (value !== undefined && !CONNECTION.includes(name) && !takes.includes(name as keyof Values)) {
      throw new UsageError(`${noun} ${command} takes no --${name}`);
    }
  }
  if (command === "revoke" && args.length === 0) {
    throw new UsageError(`${noun} revoke needs ${noun === "tokens" ? "a token id" : "a serial number"}`);
  }
  if (command !== "revoke" && args.length > 0) throw new UsageError(`unexpected argument "${args[0]}"`);
  const client = connect(values);
  try {
    if (noun === "tokens") await tokens(client, command, args, values, out);
    else await certificates(client, command, args, values, out);
    return 0;
  } catch (e) {
    if (!(e instanceof AdminApiError)) throw e;
    printError(e, err);
    return 1;
  } finally {
    await client.close();
  }
}

/** `portcullis tokens create|list|revoke …`. */
export function runTokens(argv: string[], io: AdminIo = processIo): Promise<number> {
  return run("tokens", argv, io);
}

/** `portcullis certificates list|revoke …`. */
export function runCertificates(argv: string[], io: AdminIo = processIo): Promise<number> {
  return run("certificates", argv, io);
}
