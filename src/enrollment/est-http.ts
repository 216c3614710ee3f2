// The HTTP side of EST (RFC 7030, RFC 8951): which operation and CA label a path names, reading a bounded
// request body, and the answers EST clients expect (base64 PKCS#7 and CSR attributes, text refusals).

import type { ServerResponse } from "node:http";
import { elapsedMs, LATENCY_HEADER } from "../gateway/respond.ts";
import type { GatewayRequest, GatewayResponse } from "../tls/listener.ts";

export const EST_PREFIX = "/.well-known/est/";

export const EST_OPERATIONS = ["cacerts", "simpleenroll", "simplereenroll", "csrattrs"] as const;
export type EstOperation = (typeof EST_OPERATIONS)[number];

const METHOD_OF: Record<EstOperation, "GET" | "POST"> = {
  cacerts: "GET",
  csrattrs: "GET",
  simpleenroll: "POST",
  simplereenroll: "POST",
};

/** Largest request body accepted (a CSR with an RSA-8192 key and a few extensions is under 3 KiB in base64). */
export const MAX_BODY_BYTES = 32 * 1024;

export type EstPath =
  | { readonly kind: "operation"; readonly label: string | undefined; readonly operation: EstOperation }
  | { readonly kind: "not-found" }
  | { readonly kind: "wrong-method"; readonly allow: "GET" | "POST" };

/** `/.well-known/est/[<label>/]<operation>` (the path already normalised by the request path). */
export function parseEstPath(path: string, method: string): EstPath {
  const rest = path.slice(EST_PREFIX.length).split("/");
  if (rest.length > 2 || rest.some((s) => s === "")) return { kind: "not-found" };
  const operation = rest.at(-1) as EstOperation;
  if (!(EST_OPERATIONS as readonly string[]).includes(operation)) return { kind: "not-found" };
  const wanted = METHOD_OF[operation];
  if (method !== wanted && !(wanted === "GET" && method === "HEAD"))
    return { kind: "wrong-method", allow: wanted };
  return { kind: "operation", label: rest.length === 2 ? rest[0] : undefined, operation };
}

export class BodyError extends Error {
  override name = "BodyError";
  readonly status: 400 | 408 | 413;
  constructor(message: string, status: 400 | 408 | 413) {
    super(message);
    this.status = status;
  }
}

/** The request body, refused past `maxBytes` (413) or when it does not arrive within `timeoutMs` (408). */
export function readBody(req: GatewayRequest, maxBytes: number, timeoutMs: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) {
    return Promise.reject(new BodyError(`the body is over ${maxBytes} bytes`, 413));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (error: BodyError | undefined) => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      if (error) {
        req.resume();
        reject(error);
      } else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) finish(new BodyError(`the body is over ${maxBytes} bytes`, 413));
      else chunks.push(chunk);
    };
    const onEnd = () => finish(undefined);
    const onError = () => finish(new BodyError("the request body was cut short", 400));
    const timer = setTimeout(
      () => finish(new BodyError("the request body did not arrive in time", 408)),
      timeoutMs,
    );
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

function send(
  res: GatewayResponse,
  status: number,
  headers: Record<string, string>,
  body: string,
  startedAt: number,
): number {
  if (res.headersSent) {
    res.destroy();
    return 0;
  }
  const bytes = Buffer.byteLength(body);
  (res as ServerResponse).writeHead(status, {
    ...headers,
    "content-length": String(bytes),
    "cache-control": "no-store",
    [LATENCY_HEADER]: elapsedMs(startedAt),
  });
  res.end(body);
  return bytes;
}

/** A base64 body (RFC 8951: base64 without a Content-Transfer-Encoding requirement; sent for older clients). */
export function sendBase64(
  res: GatewayResponse,
  contentType: string,
  base64: string,
  startedAt: number,
): number {
  return send(
    res,
    200,
    { "content-type": contentType, "content-transfer-encoding": "base64" },
    base64,
    startedAt,
  );
}

/** An EST refusal or pending answer: text/plain `<reason>: <detail>` (or just the message when reasons are hidden). */
export function sendText(
  res: GatewayResponse,
  status: number,
  text: string,
  startedAt: number,
  extraHeaders: Record<string, string> = {},
): number {
  return send(
    res,
    status,
    { ...extraHeaders, "content-type": "text/plain; charset=utf-8" },
    `${text}\n`,
    startedAt,
  );
}
