// `portcullis devices …`: the device registry through the admin API, human tables by default and --json
// for scripts. Exit 0 when done, 1 when the API refused or could not be reached, 2 on a usage error.
import { createReadStream, statSync } from "node:fs";
import { Transform } from "node:stream";
import { parseArgs } from "node:util";
import {
  AdminApiError,
  type AdminClient,
  type DevicePageJson,
  type ImportProgressJson,
} from "../admin/client.ts";
import type { DeviceJson } from "../admin/device-json.ts";
import { CONNECTION_OPTIONS, connect, printError, readText, table } from "./admin-connection.ts";
import { DEVICES_USAGE, UsageError } from "./usage.ts";

const COMMON = CONNECTION_OPTIONS;

const OPTIONS = {
  ...COMMON,
  status: { type: "string" },
  group: { type: "string", multiple: true },
  binding: { type: "string", multiple: true },
  limit: { type: "string" },
  after: { type: "string" },
  all: { type: "boolean" },
  id: { type: "string" },
  cert: { type: "string" },
  metadata: { type: "string" },
  within: { type: "string" },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

const STATUS_VERBS: Record<string, string> = { suspend: "suspended", activate: "active", revoke: "revoked" };

function bindingArg(text: string): { kind: string; value: string } {
  const colon = text.indexOf(":");
  if (colon <= 0) throw new UsageError(`--binding must be KIND:VALUE, got "${text}"`);
  return { kind: text.slice(0, colon), value: text.slice(colon + 1) };
}

function deviceRows(devices: readonly DeviceJson[]): string {
  const rows = devices.map((d) => [
    d.id,
    d.status,
    d.groups.join(",") || "-",
    d.bindings.map((b) => b.kind).join(",") || "-",
    d.lastSeenAt ?? "never",
  ]);
  return table([["ID", "STATUS", "GROUPS", "BINDINGS", "LAST SEEN"], ...rows]);
}

function describe(d: DeviceJson): string {
  const lines = [
    ["id", d.id],
    ["status", d.status],
    ["groups", d.groups.join(", ") || "-"],
    ...d.bindings.map((b) => ["binding", `${b.kind}:${b.value}`]),
    ["metadata", JSON.stringify(d.metadata)],
    ["created", d.createdAt],
    ["updated", d.updatedAt],
    ["last seen", d.lastSeenAt ?? "never"],
    ["version", String(d.version)],
  ];
  return table(lines);
}

async function list(client: AdminClient, values: Values, out: (s: string) => void): Promise<void> {
  if (values.limit !== undefined && !/^\d+$/.test(values.limit))
    throw new UsageError("--limit must be a number");
  if ((values.group?.length ?? 0) > 1 || (values.binding?.length ?? 0) > 1) {
    throw new UsageError("devices list filters by one --group and one --binding");
  }
  const query = {
    status: values.status,
    group: values.group?.[0],
    binding: values.binding?.[0],
    limit: values.limit === undefined ? undefined : Number(values.limit),
    after: values.after,
  };
  const devices: DeviceJson[] = [];
  let page: DevicePageJson;
  do {
    page = await client.listDevices(query);
    devices.push(...page.devices);
    query.after = page.next ?? undefined;
  } while (values.all && page.next !== null);
  if (values.json) out(JSON.stringify({ devices, next: page.next }));
  else {
    out(devices.length === 0 ? "no devices" : deviceRows(devices));
    if (page.next !== null) out(`(more: --after ${page.next}, or --all)`);
  }
}

async function expiring(client: AdminClient, values: Values, out: (s: string) => void): Promise<void> {
  const within = values.within ?? "30d";
  if (!/^\d{1,5}(h|d)$/.test(within)) throw new UsageError(`--within must be a duration such as 7d or 30d`);
  const answer = await client.listExpiringDevices(within);
  if (values.json) {
    out(JSON.stringify(answer));
    return;
  }
  if (answer.devices.length === 0) {
    out(`no device certificate expires within ${within}`);
    return;
  }
  const rows = answer.devices.map((d) => [
    d.deviceId,
    d.notAfter,
    String(d.daysLeft),
    d.source,
    d.serial,
    `${d.fingerprint.slice(0, 16)}…`,
  ]);
  out(table([["DEVICE", "NOT AFTER", "DAYS LEFT", "SOURCE", "SERIAL", "FINGERPRINT"], ...rows]));
}

async function add(client: AdminClient, values: Values): Promise<DeviceJson> {
  if (!values.id) throw new UsageError("devices add needs --id");
  const doc: Record<string, unknown> = { id: values.id };
  if (values.status) doc.status = values.status;
  if (values.group) doc.groups = values.group;
  if (values.binding) doc.bindings = values.binding.map(bindingArg);
  if (values.cert) doc.certificate = readText(values.cert, "certificate");
  if (values.metadata) {
    try {
      doc.metadata = JSON.parse(values.metadata);
    } catch (err) {
      throw new UsageError(`--metadata must be JSON: ${(err as Error).message}`);
    }
  }
  return client.createDevice(doc);
}

/** Where `devices import` reports: a terminal gets a progress line rewritten in place, anything else the end. */
export interface ProgressOutput {
  readonly tty: boolean;
  write(text: string): void;
}

/** Least time between two redraws of the progress line. */
const REDRAW_MS = 100;

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);

/**
 * Streams the file to the API, counting lines. On a terminal, one progress line (what was sent, then what the
 * server checked and wrote) is redrawn as the import goes; the final summary line is written in every case.
 */
export async function importFile(client: AdminClient, file: string, output: ProgressOutput): Promise<number> {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`);
  }
  let bytes = 0;
  let lines = 0;
  let server: ImportProgressJson | undefined;
  const started = Date.now();
  let drawn = 0;
  const sent = () => `sent ${lines} lines, ${mib(bytes)} of ${mib(size)} MiB`;
  const status = () => {
    if (server?.phase === "writing") return `${sent()}; writing ${server.written} of ${server.total} devices`;
    if (server?.phase === "validating")
      return `${sent()}; checked ${server.lines} lines${server.errorCount > 0 ? `, ${server.errorCount} problem(s)` : ""}`;
    return sent();
  };
  const draw = () => {
    if (!output.tty || Date.now() - drawn < REDRAW_MS) return;
    drawn = Date.now();
    output.write(`\r\x1b[K${status()}`);
  };
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines++;
      draw();
      done(null, chunk);
    },
  });
  const body = createReadStream(file).pipe(counter);
  try {
    const result = await client.importDevices(body, size, (progress) => {
      server = progress;
      draw();
    });
    output.write(
      `${output.tty ? "\r\x1b[K" : ""}${sent()} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
    return result.imported;
  } catch (e) {
    // The error's lines come next: clear the progress line for them.
    if (output.tty && drawn > 0) output.write("\r\x1b[K");
    throw e;
  }
}

export async function runDevices(argv: string[]): Promise<number> {
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const err = (s: string) => process.stderr.write(`${s}\n`);
  const { values, positionals } = parseArgs({
    args: argv,
    options: OPTIONS,
    strict: true,
    allowPositionals: true,
  });
  const [command, ...args] = positionals;
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(DEVICES_USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const known = ["list", "show", "add", "import", "rm", "expiring", ...Object.keys(STATUS_VERBS)];
  if (!known.includes(command))
    throw new UsageError(`unknown devices command "${command}"\n\n${DEVICES_USAGE}`);
  const wantsIds = command === "show" || command === "rm" || command in STATUS_VERBS;
  if (wantsIds && args.length === 0) throw new UsageError(`devices ${command} needs a device id`);
  if (command === "show" && args.length > 1) throw new UsageError("devices show takes one device id");
  if (command === "import" && args.length !== 1) throw new UsageError("devices import needs one FILE.ndjson");
  if ((command === "list" || command === "add" || command === "expiring") && args.length > 0) {
    throw new UsageError(`unexpected argument "${args[0]}"`);
  }
  const client = connect(values);
  try {
    if (command === "list") await list(client, values, out);
    else if (command === "expiring") await expiring(client, values, out);
    else if (command === "show") {
      const device = await client.getDevice(args[0] ?? "");
      out(values.json ? JSON.stringify(device) : describe(device));
    } else if (command === "add") {
      const device = await add(client, values);
      out(values.json ? JSON.stringify(device) : `added ${device.id} (${device.status})`);
    } else if (command === "import") {
      const imported = await importFile(client, args[0] ?? "", {
        tty: process.stderr.isTTY === true,
        write: (s) => process.stderr.write(s),
      });
      out(values.json ? JSON.stringify({ imported }) : `imported ${imported} devices`);
    } else if (command === "rm") {
      for (const id of args) {
        await client.deleteDevice(id);
        out(values.json ? JSON.stringify({ id, deleted: true }) : `removed ${id}`);
      }
    } else {
      const status = STATUS_VERBS[command];
      for (const id of args) {
        const device = await client.patchDevice(id, { status });
        out(
          values.json ? JSON.stringify(device) : `${device.id}: ${device.status} (version ${device.version})`,
        );
      }
    }
    return 0;
  } catch (e) {
    if (!(e instanceof AdminApiError)) throw e;
    printError(e, err);
    return 1;
  } finally {
    await client.close();
  }
}
