// POST /devices/import: NDJSON, one device per line as in POST /devices. The body is parsed line by line as
// it arrives (only parsed devices are kept, never the raw text), under a size cap; the import is all or
// nothing: one bad line and nothing is imported, with the first problems reported by line number.
//
// An import never holds the event loop for more than a slice of a few milliseconds: lines are checked in
// slices (Slicer), and the store writes in bounded chunks or off the main thread, so device traffic goes on.
// A client that accepts NDJSON gets the answer as a stream: progress lines, then the result as the last line.
import type { IncomingMessage, ServerResponse } from "node:http";
import { StringDecoder } from "node:string_decoder";
import { elapsedMs, LATENCY_HEADER, sendJson } from "../gateway/respond.ts";
import { Slicer } from "../registry/import-batch.ts";
import { ImportRejectedError, type NewDevice } from "../registry/types.ts";
import { checkDeclaredLength, requireMediaType, tooLarge } from "./body.ts";
import { toNewDevice } from "./device-json.ts";
import { toHttpError } from "./errors.ts";
import type { AdminOptions } from "./options.ts";
import type { AdminRouter } from "./router.ts";
import { fieldErrors, newDeviceInput } from "./validation.ts";

export const DEFAULT_MAX_IMPORT_BYTES = 256 * 1024 * 1024;
/** Longest line, in characters: a device document is small, a longer line is a mistake, not a buffer. */
export const MAX_LINE_CHARS = 128 * 1024;
/** Errors listed in an answer; the rest are only counted. */
export const MAX_REPORTED_ERRORS = 100;
export const NDJSON_TYPES = ["application/x-ndjson", "application/ndjson", "application/jsonl"] as const;
/** Least time between two progress lines of a streamed answer (phase changes are written at once). */
export const PROGRESS_INTERVAL_MS = 200;

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

/** Feeds the body to `batch` line by line, yielding every few milliseconds; a too long line is an error. */
async function readLines(
  req: IncomingMessage,
  maxBytes: number,
  batch: ImportBatch,
  progress?: ProgressStream,
): Promise<void> {
  const decoder = new StringDecoder("utf8");
  const slicer = new Slicer();
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
      if (slicer.due()) {
        progress?.validating(line - 1, size, batch.errorCount);
        await slicer.yield();
      }
    }
    progress?.validating(line - 1, size, batch.errorCount);
    if (!skipping) partial += text.slice(start);
    if (!skipping && partial.length > MAX_LINE_CHARS) {
      batch.fail({ line, message: `line longer than ${MAX_LINE_CHARS} characters` });
      partial = "";
      skipping = true;
    }
  }
  const last = partial + decoder.end();
  if (!skipping) batch.add(line, last);
  progress?.validating(last === "" && !skipping ? line - 1 : line, size, batch.errorCount, true);
}

/** True when the client asked for the streamed answer (`Accept: application/x-ndjson` or a synonym). */
function wantsStream(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  if (typeof accept !== "string") return false;
  return accept
    .split(",")
    .map((range) => range.split(";")[0]?.trim().toLowerCase())
    .some((type) => (NDJSON_TYPES as readonly (string | undefined)[]).includes(type));
}

/**
 * The streamed answer: 200 and the headers at once, progress lines as the import goes (at most every
 * PROGRESS_INTERVAL_MS, and at each phase change), then the result, with its own `status`, as the last line.
 */
class ProgressStream {
  readonly #res: ServerResponse;
  readonly #startedAt: number;
  #last = Number.NEGATIVE_INFINITY;

  constructor(res: ServerResponse, startedAt: number) {
    this.#res = res;
    this.#startedAt = startedAt;
    res.writeHead(200, {
      "content-type": "application/x-ndjson; charset=utf-8",
      "cache-control": "no-store",
      [LATENCY_HEADER]: elapsedMs(startedAt),
    });
    res.flushHeaders();
  }

  validating(lines: number, bytes: number, errorCount: number, force = false): void {
    this.#line({ phase: "validating", lines, bytes, errorCount }, force);
  }

  writing(written: number, total: number, force = false): void {
    this.#line({ phase: "writing", written, total }, force);
  }

  finish(status: number, body: object): void {
    const durationMs = Math.round(performance.now() - this.#startedAt);
    const phase = status === 200 ? "done" : "failed";
    this.#res.end(`${JSON.stringify({ phase, status, ...body, durationMs })}\n`);
  }

  #line(value: object, force: boolean): void {
    const now = performance.now();
    if (!force && now - this.#last < PROGRESS_INTERVAL_MS) return;
    this.#last = now;
    this.#res.write(`${JSON.stringify(value)}\n`);
  }
}

interface Outcome {
  readonly status: number;
  readonly body: object;
}

/** Reads and checks every line, then imports the devices if all are good: the answer's status and body. */
async function runImport(
  req: IncomingMessage,
  options: AdminOptions,
  maxBytes: number,
  progress?: ProgressStream,
): Promise<Outcome> {
  const batch = new ImportBatch();
  await readLines(req, maxBytes, batch, progress);
  if (batch.errorCount === 0 && batch.devices.length > 0) {
    const total = batch.devices.length;
    progress?.writing(0, total, true);
    try {
      const imported = await options.store.importDevices(batch.devices, {
        onProgress: (p) => progress?.writing(p.written, p.total),
      });
      return { status: 200, body: { imported } };
    } catch (err) {
      // Devices that exist already, or bindings another device holds: named by line like any other problem.
      if (!(err instanceof ImportRejectedError)) throw err;
      for (const f of err.failures)
        batch.fail({ line: batch.lines[f.index] ?? 0, message: `${f.id}: ${f.message}` });
    }
  }
  if (batch.errorCount === 0) return { status: 200, body: { imported: 0 } };
  return {
    status: 422,
    body: {
      message: `${batch.errorCount} problem(s) in the import; nothing was imported`,
      imported: 0,
      errors: batch.errors,
      errorCount: batch.errorCount,
    },
  };
}

export function registerImportRoute(router: AdminRouter, options: AdminOptions): void {
  const maxBytes = options.maxImportBytes ?? DEFAULT_MAX_IMPORT_BYTES;

  router.add("POST", "/devices/import", async ({ req, res, startedAt }) => {
    requireMediaType(req, NDJSON_TYPES);
    checkDeclaredLength(req, maxBytes);
    if (!wantsStream(req)) {
      const { status, body } = await runImport(req, options, maxBytes);
      sendJson(res, status, body, startedAt);
      return;
    }
    const socket = req.socket;
    const progress = new ProgressStream(res, startedAt);
    let outcome: Outcome;
    try {
      outcome = await runImport(req, options, maxBytes, progress);
    } catch (err) {
      // The client went away mid-body: nobody is left to answer.
      if (res.destroyed) return;
      const httpError = toHttpError(err);
      if (httpError === undefined) {
        options.logger?.error({ err, method: req.method, path: "/devices/import" }, "admin API error");
      }
      outcome = httpError ?? { status: 500, body: { message: "Internal server error" } };
      // 200 went out with the headers: a body left unread (over the size cap) is refused by closing.
      if (!req.readableEnded) res.once("finish", () => socket.end());
    }
    progress.finish(outcome.status, outcome.body);
  });
}
