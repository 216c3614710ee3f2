// One bounded HTTP exchange for revocation data: a deadline over the whole exchange and a size cap on the
// body, so that a slow or hostile CRL server or responder cannot hold a request or fill memory.
import { type Dispatcher, request } from "undici";
import { RevocationSourceError } from "./errors.ts";

export interface FetchOptions {
  readonly method?: "GET" | "POST";
  readonly body?: Buffer;
  readonly headers?: Record<string, string>;
  readonly timeoutMs: number;
  readonly maxBytes: number;
  readonly dispatcher?: Dispatcher;
}

/** The body of a 2xx answer from `url`; anything else throws RevocationSourceError naming `url`. */
export async function fetchBytes(url: string, options: FetchOptions): Promise<Buffer> {
  // An own timer rather than AbortSignal.timeout: it is cleared once the exchange is over, so no abort
  // lands on a finished (or deliberately dropped) response later.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs);
  const signal = controller.signal;
  const fail = (why: string): never => {
    throw new RevocationSourceError(`${url}: ${why}`);
  };
  const timedOut = () => signal.aborted && fail(`no complete answer within ${options.timeoutMs} ms`);
  try {
    const response = await request(url, {
      method: options.method ?? "GET",
      headers: options.headers,
      body: options.body,
      signal,
      dispatcher: options.dispatcher,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    });
    const { statusCode, body } = response;
    body.on("error", () => {}); // a body dropped below must not surface as an uncaught error
    if (statusCode < 200 || statusCode > 299) {
      body.destroy();
      return fail(`HTTP ${statusCode}`);
    }
    const declared = Number(response.headers["content-length"] ?? Number.NaN);
    if (declared > options.maxBytes) {
      body.destroy();
      return fail(`answer of ${declared} bytes exceeds the limit of ${options.maxBytes}`);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > options.maxBytes) {
        body.destroy();
        return fail(`answer exceeds the limit of ${options.maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  } catch (err) {
    if (err instanceof RevocationSourceError) throw err;
    timedOut();
    return fail((err as Error).message || String(err));
  } finally {
    clearTimeout(timer);
  }
}
