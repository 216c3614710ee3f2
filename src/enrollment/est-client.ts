// A client of an EST server (RFC 7030, RFC 8951) over HTTPS: /cacerts, /simpleenroll, /simplereenroll and
// /csrattrs. The server is always verified (its trust anchor, or Node's and the system's roots); the client
// authenticates with a certificate (mTLS), an enrollment token (HTTP Basic or Bearer), or both.
import type { IncomingMessage } from "node:http";
import { request } from "node:https";
import { getCACertificates } from "node:tls";
import { fromBase64Body, Pkcs7Error, readCertsOnly, readCsrAttrs, toBase64Body } from "./pkcs7.ts";

export interface EstClientOptions {
  /** The server's origin, e.g. https://localhost:8443 (a path is a prefix before /.well-known/est). */
  readonly server: URL;
  /** The CA label (RFC 7030 §3.2.2): /.well-known/est/<label>/…; absent: the server's default CA. */
  readonly label?: string;
  /** PEM of the trust anchor(s) for the server; absent: Node's roots and the system's. */
  readonly ca?: string;
  /** PEM client certificate (chain) and key, for mTLS. */
  readonly cert?: string;
  readonly key?: string;
  /** An enrollment token: `Authorization: Basic base64(<deviceId>:<token>)`, or Bearer without a device id. */
  readonly token?: string;
  readonly deviceId?: string;
  /** How long one request may take, connection included (default 30 s). */
  readonly timeoutMs?: number;
}

export type EnrollResult =
  | { readonly kind: "issued"; readonly certificates: Uint8Array[] }
  | { readonly kind: "pending"; readonly retryAfterSeconds: number }
  | { readonly kind: "refused"; readonly status: number; readonly reason: string };

/** The server could not be reached, or answered something EST does not allow; `status` 0 when no answer. */
export class EstError extends Error {
  override name = "EstError";
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Larger answers are refused: a certs-only chain or a CsrAttrs is a few kilobytes. */
const MAX_BODY = 1024 * 1024;
/** A refusal's reason is shown to a person: one line, not a page. */
const MAX_REASON = 1000;
const LABEL = /^[A-Za-z0-9._~-]{1,64}$/;

interface Answer {
  readonly status: number;
  readonly type: string;
  readonly headers: IncomingMessage["headers"];
  readonly body: Buffer;
}

/** The media type of a Content-Type header, lower case, without parameters. */
function mediaType(header: string | undefined): string {
  return (header ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
}

/**
 * Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as whole seconds from now (at least 1);
 * undefined when absent or unreadable.
 */
export function retryAfterSeconds(header: string | undefined, now = Date.now()): number | undefined {
  const text = header?.trim() ?? "";
  if (/^\d+$/.test(text)) return Math.max(1, Number(text));
  // An HTTP-date starts with the day's name (IMF-fixdate, RFC 850 and asctime forms alike).
  const at = /^[A-Za-z]{3}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(at)) return undefined;
  return Math.max(1, Math.ceil((at - now) / 1000));
}

export class EstClient {
  readonly #options: EstClientOptions;
  readonly #base: string;
  readonly #ca: string | string[];

  constructor(options: EstClientOptions) {
    const { server, label } = options;
    if (server.protocol !== "https:")
      throw new EstError(0, `the EST server must be https, got ${server.href}`);
    if (server.search || server.hash || server.username || server.password) {
      throw new EstError(0, `the EST server URL takes no query, fragment or user: ${server.href}`);
    }
    if (label !== undefined && !LABEL.test(label)) {
      throw new EstError(
        0,
        `CA label ${JSON.stringify(label)}: expected 1 to 64 letters, digits, ".", "_", "~" or "-"`,
      );
    }
    if (Boolean(options.cert) !== Boolean(options.key)) {
      throw new EstError(0, "a client certificate and its key go together");
    }
    this.#options = options;
    this.#base = `${server.pathname.replace(/\/+$/, "")}/.well-known/est${label ? `/${label}` : ""}`;
    this.#ca = options.ca ?? [...getCACertificates("default"), ...getCACertificates("system")];
  }

  /** The CA certificates (RFC 7030 §4.1): the trust anchor and any intermediates, as the server orders them. */
  async cacerts(): Promise<Uint8Array[]> {
    const answer = await this.#send("GET", "cacerts", undefined, false);
    if (answer.status !== 200) throw this.#unexpected("cacerts", answer);
    return this.#certificates("cacerts", answer);
  }

  /** A first certificate (RFC 7030 §4.2.1): the CSR's DER. */
  simpleEnroll(csrDer: Uint8Array): Promise<EnrollResult> {
    return this.#enroll("simpleenroll", csrDer);
  }

  /** A renewal or rekey (RFC 7030 §4.2.2), authenticated by the current certificate. */
  simpleReenroll(csrDer: Uint8Array): Promise<EnrollResult> {
    return this.#enroll("simplereenroll", csrDer);
  }

  /** The attributes the server wants in a CSR (RFC 7030 §4.5), as OIDs; none when it has none (204, 404). */
  async csrAttrs(): Promise<string[]> {
    const answer = await this.#send("GET", "csrattrs", undefined, true);
    if (answer.status === 204 || answer.status === 404) return [];
    if (answer.status !== 200) throw this.#unexpected("csrattrs", answer);
    this.#expectType("csrattrs", answer, "application/csrattrs");
    return this.#decode("csrattrs", () => readCsrAttrs(this.#der(answer.body)));
  }

  async #enroll(operation: string, csrDer: Uint8Array): Promise<EnrollResult> {
    const answer = await this.#send("POST", operation, csrDer, true);
    if (answer.status === 200) return { kind: "issued", certificates: this.#certificates(operation, answer) };
    if (answer.status === 202) {
      const seconds = retryAfterSeconds(answer.headers["retry-after"]);
      if (seconds === undefined) {
        throw new EstError(
          202,
          `${operation}: the server answered 202 (pending) without a valid Retry-After`,
        );
      }
      return { kind: "pending", retryAfterSeconds: seconds };
    }
    if (answer.status >= 300) return { kind: "refused", status: answer.status, reason: this.#reason(answer) };
    throw this.#unexpected(operation, answer);
  }

  #certificates(operation: string, answer: Answer): Uint8Array[] {
    this.#expectType(operation, answer, "application/pkcs7-mime");
    return this.#decode(operation, () => readCertsOnly(this.#der(answer.body)));
  }

  /** A body's DER: base64 (RFC 8951), or raw DER from a server that sends it so. */
  #der(body: Buffer): Uint8Array {
    const binary = body[0] === 0x30 && body.subarray(0, 64).some((byte) => byte >= 0x80 || byte < 0x09);
    return binary ? new Uint8Array(body) : fromBase64Body(body.toString("latin1"));
  }

  #decode<T>(operation: string, read: () => T): T {
    try {
      return read();
    } catch (err) {
      if (err instanceof Pkcs7Error) throw new EstError(200, `${operation}: ${err.message}`);
      throw err;
    }
  }

  #expectType(operation: string, answer: Answer, expected: string): void {
    if (answer.type !== expected) {
      throw new EstError(
        answer.status,
        `${operation}: the server answered ${answer.type || "no content type"}, expected ${expected}`,
      );
    }
  }

  #reason(answer: Answer): string {
    const text =
      answer.type.startsWith("text/") || answer.type === "" ? answer.body.toString("utf8").trim() : "";
    const line = text.replace(/\s+/g, " ");
    if (line === "") return `no reason given${answer.type ? ` (${answer.type} body)` : ""}`;
    return line.length > MAX_REASON ? `${line.slice(0, MAX_REASON)}…` : line;
  }

  #unexpected(operation: string, answer: Answer): EstError {
    const reason = this.#reason(answer);
    return new EstError(
      answer.status,
      `${operation}: unexpected HTTP ${answer.status} from the server: ${reason}`,
    );
  }

  #authorization(): string | undefined {
    const { token, deviceId } = this.#options;
    if (!token) return undefined;
    if (deviceId === undefined) return `Bearer ${token}`;
    return `Basic ${Buffer.from(`${deviceId}:${token}`, "utf8").toString("base64")}`;
  }

  #send(method: "GET" | "POST", operation: string, csr: Uint8Array | undefined, authenticate: boolean) {
    const { server, cert, key, timeoutMs = 30_000 } = this.#options;
    const headers: Record<string, string> = {
      accept: operation === "csrattrs" ? "application/csrattrs" : "application/pkcs7-mime",
    };
    const authorization = authenticate ? this.#authorization() : undefined;
    if (authorization) headers.authorization = authorization;
    let body: string | undefined;
    if (csr) {
      body = toBase64Body(csr);
      headers["content-type"] = "application/pkcs10";
      // RFC 7030 required this header; RFC 8951 makes base64 the rule. Older servers still look for it.
      headers["content-transfer-encoding"] = "base64";
      headers["content-length"] = String(Buffer.byteLength(body));
    }
    return new Promise<Answer>((resolve, reject) => {
      const fail = (err: Error) => {
        const code = (err as NodeJS.ErrnoException).code;
        const detail = code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
        reject(
          err instanceof EstError
            ? err
            : new EstError(0, `cannot reach the EST server at ${server.origin}: ${detail}`),
        );
      };
      const req = request(
        {
          method,
          protocol: "https:",
          hostname: server.hostname.replace(/^\[|\]$/g, ""),
          port: server.port || 443,
          path: `${this.#base}/${operation}`,
          headers,
          ca: this.#ca,
          cert,
          key,
          rejectUnauthorized: true,
          minVersion: "TLSv1.2",
          agent: false,
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_BODY) {
              req.destroy(
                new EstError(res.statusCode ?? 0, `${operation}: the answer exceeds ${MAX_BODY} bytes`),
              );
              return;
            }
            chunks.push(chunk);
          });
          res.on("error", fail);
          res.on("end", () =>
            resolve({
              status: res.statusCode ?? 0,
              type: mediaType(res.headers["content-type"]),
              headers: res.headers,
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      req.on("timeout", () => req.destroy(new EstError(0, `${operation}: no answer within ${timeoutMs} ms`)));
      req.on("error", fail);
      req.end(body);
    });
  }
}
