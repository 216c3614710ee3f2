// Reading request bodies with a size cap and a content-type check: a body past the cap is answered 413
// without being read to its end (the connection is closed instead), and bad JSON gets a message that says
// where it broke.
import type { IncomingMessage } from "node:http";
import { HttpError } from "./errors.ts";

export const DEFAULT_MAX_JSON_BYTES = 1024 * 1024;

const CLOSE = { connection: "close" };

/** The media type without parameters, lower case; undefined when the header is absent. */
export function mediaType(req: IncomingMessage): string | undefined {
  const header = req.headers["content-type"];
  if (typeof header !== "string") return undefined;
  return header.split(";")[0]?.trim().toLowerCase();
}

export function requireMediaType(req: IncomingMessage, accepted: readonly string[]): void {
  const type = mediaType(req);
  if (type !== undefined && accepted.includes(type)) return;
  throw new HttpError(
    415,
    `Unsupported content type ${type === undefined ? "(none)" : `"${type}"`}: expected ${accepted.join(" or ")}`,
    { headers: { accept: accepted.join(", ") } },
  );
}

export function tooLarge(maxBytes: number): HttpError {
  return new HttpError(413, `Request body too large: the limit is ${maxBytes} bytes`, { headers: CLOSE });
}

/** Refuses early when the declared length is already past the cap. */
export function checkDeclaredLength(req: IncomingMessage, maxBytes: number): void {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(maxBytes);
}

/** The request body, at most `maxBytes` of it. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  checkDeclaredLength(req, maxBytes);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** A JSON body of type application/json; its value is left to the schema to judge. */
export async function readJson(req: IncomingMessage, maxBytes = DEFAULT_MAX_JSON_BYTES): Promise<unknown> {
  requireMediaType(req, ["application/json", "application/merge-patch+json"]);
  const raw = await readBody(req, maxBytes);
  const text = raw.toString("utf8");
  if (text.trim() === "") throw new HttpError(400, "Malformed JSON: the request body is empty");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, `Malformed JSON: ${(err as Error).message}`);
  }
}
