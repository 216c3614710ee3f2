// POST /devices/import: NDJSON, one device per line as in POST /devices. The body is parsed line by line as
// it arrives (only parsed devices are kept, never the raw text), under a size cap; the import is all or
// nothing: one bad line and nothing is imported, with the first problems reported by line number.
import type { IncomingMessage, ServerResponse } from "node:http";
import { StringDecoder } from "node:string_decoder";
import { sendJson } from "../gateway/respond.ts";
import { ImportRejectedError, type NewDevice } from "../registry/types.ts";
import { checkDeclaredLength, requireMediaType, tooLarge } from "./body.ts";
import { toNewDevice } from "./device-json.ts";
import type { AdminOptions } from "./options.ts";
import type { AdminRouter } from "./router.ts";
import { fieldErrors, newDeviceInput } from "./validation.ts";

export const DEFAULT_MAX_IMPORT_BYTES = 256 * 1024 * 1024;
/** Longest line, in characters: a device document is small, a longer line is a mistake, not a buffer. */
export const MAX_LINE_CHARS = 128 * 1024;
/** Errors listed in an answer; the rest are only counted. */
export const MAX_REPORTED_ERRORS = 100;
export const NDJSON_TYPES = ["application/x-ndjson", "application/ndjson", "application/jsonl"] as const;

export interface LineError {
  readonly line: number;
  /** The field, when the problem is in one (`groups[1]`). */
  readonly path?: string;
  readonly message: string;
}

/** Collects devices and errors of an import, line by line. */
class ImportBatch {
  readonly devices: NewDevice[] = [];
  /** Line of each device in `devices`, to name the line of a device the store refuses. */
  readonly lines: number[] = [];
  readonly errors: LineError[] = [];
  errorCount = 0;
  /** Line of each id, for duplicates within the file. */
  readonly lineOfId = new Map<string, number>();

  fail(error: LineError): void {
    this.errorCount++;
    if (this.errors.length < MAX_REPORTED_ERRORS) this.errors.push(error);
  }

  add(line: number, text: string): void {
    if (text.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      this.fail({ line, message: `malformed JSON: ${(err as Error).message}` });
      return;
    }
    const parsed = newDeviceInput.safeParse(value);
    if (!parsed.success) {
      for (const e of fieldErrors(parsed.error)) this.fail({ line, ...e });
      return;
    }
    const device = toNewDevice(parsed.data);
    if (Array.isArray(device)) {
      for (const e of device) this.fail({ line, ...e });
      return;
    }
    const first = this.lineOfId.get(device.id);
    if (first !== undefined) {
      this.fail({ line, path: "id", message: `duplicate id "${device.id}" (first on line ${first})` });
      return;
    }
    this.lineOfId.set(device.id, line);
    // Once a line has failed nothing will be imported: keep validating, stop holding devices.
    if (this.errorCount === 0) {
      this.devices.push(device);
      this.lines.push(line);
    }
  }
}

/** Feeds the body to `batch` line by line; a too long line is an error. */
async function readLines(req: IncomingMessage, maxBytes: number, batch: ImportBatch): Promise<void> {
  const decoder = new StringDecoder("utf8");
  let size = 0;
  let line = 1;
  let partial = "";
  let skipping = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    const text = decoder.write(chunk);
    let start = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
      if (!skipping) batch.add(line, partial + text.slice(start, nl));
      partial = "";
      skipping = false;
      line++;
      start = nl + 1;
    }
    if (!skipping) partial += text.slice(start);
    if (!skipping && partial.length > MAX_LINE_CHARS) {
      batch.fail({ line, message: `line longer than ${MAX_LINE_CHARS} characters` });
      partial = "";
      skipping = true;
    }
  }
  if (!skipping) batch.add(line, partial + decoder.end());
}

function sendFailure(res: ServerResponse, batch: ImportBatch, startedAt: number): void {
  sendJson(
    res,
    422,
    {
      message: `${batch.errorCount} problem(s) in the import; nothing was imported`,
      imported: 0,
      errors: batch.errors,
      errorCount: batch.errorCount,
    },
    startedAt,
  );
}

export function registerImportRoute(router: AdminRouter, options: AdminOptions): void {
  const maxBytes = options.maxImportBytes ?? DEFAULT_MAX_IMPORT_BYTES;

  router.add("POST", "/devices/import", async ({ req, res, startedAt }) => {
    requireMediaType(req, NDJSON_TYPES);
    checkDeclaredLength(req, maxBytes);
    const batch = new ImportBatch();
    await readLines(req, maxBytes, batch);
    if (batch.errorCount === 0 && batch.devices.length > 0) {
      try {
        sendJson(res, 200, { imported: await options.store.importDevices(batch.devices) }, startedAt);
        return;
      } catch (err) {
        // Devices that exist already, or bindings another device holds: named by line like any other problem.
        if (!(err instanceof ImportRejectedError)) throw err;
        for (const f of err.failures)
          batch.fail({ line: batch.lines[f.index] ?? 0, message: `${f.id}: ${f.message}` });
      }
    }
    if (batch.errorCount > 0) sendFailure(res, batch, startedAt);
    else sendJson(res, 200, { imported: 0 }, startedAt);
  });
}
