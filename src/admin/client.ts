// A client of the admin API (used by `portcullis devices`): undici with the bearer token, optional TLS
// trust and client certificate, and every non-2xx answer turned into an AdminApiError carrying the body's
// message and field errors.
import type { Readable } from "node:stream";
import { Agent, type Dispatcher, request } from "undici";
import type { DeviceJson } from "./device-json.ts";

export interface ApiProblem {
  readonly path?: string;
  readonly line?: number;
  readonly message: string;
}

export class AdminApiError extends Error {
  override name = "AdminApiError";
  /** HTTP status; 0 when no answer arrived. */
  readonly status: number;
  readonly errors: readonly ApiProblem[];
  /** Problems found in all, when more than the listed ones (imports). */
  readonly errorCount: number | undefined;

  constructor(status: number, message: string, errors: readonly ApiProblem[] = [], errorCount?: number) {
    super(message);
    this.status = status;
    this.errors = errors;
    this.errorCount = errorCount;
  }
}

export interface AdminClientOptions {
  readonly url: string;
  readonly token: string;
  /** PEM of the CAs to trust for an https admin listener. */
  readonly ca?: string;
  /** PEM client certificate and key, for an admin listener that requires one. */
  readonly cert?: string;
  readonly key?: string;
}

export interface DevicePageJson {
  readonly devices: readonly DeviceJson[];
  readonly next: string | null;
}

export interface DeviceQueryParams {
  readonly status?: string;
  readonly group?: string;
  readonly binding?: string;
  readonly after?: string;
  readonly limit?: number;
}

interface ErrorJson {
  message?: string;
  errors?: ApiProblem[];
  errorCount?: number;
}

export class AdminClient {
  readonly #base: URL;
  readonly #token: string;
  readonly #dispatcher: Dispatcher;

  constructor(options: AdminClientOptions) {
    this.#base = new URL(options.url);
    this.#token = options.token;
    this.#dispatcher = new Agent({
      connect: { ca: options.ca, cert: options.cert, key: options.key },
      headersTimeout: 300_000,
      bodyTimeout: 300_000,
    });
  }

  async call<T>(
    method: Dispatcher.HttpMethod,
    path: string,
    body?: { json: unknown } | { stream: Readable; type: string; length?: number },
    headers: Record<string, string> = {},
  ): Promise<T> {
    const url = new URL(
      path.replace(/^\//, ""),
      this.#base.href.endsWith("/") ? this.#base : `${this.#base.href}/`,
    );
    const all: Record<string, string> = {
      ...headers,
      authorization: `Bearer ${this.#token}`,
      accept: "application/json",
    };
    let payload: string | Readable | undefined;
    if (body && "json" in body) {
      payload = JSON.stringify(body.json);
      all["content-type"] = "application/json";
    } else if (body) {
      payload = body.stream;
      all["content-type"] = body.type;
      if (body.length !== undefined) all["content-length"] = String(body.length);
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method, headers: all, body: payload, dispatcher: this.#dispatcher });
    } catch (err) {
      const cause = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw new AdminApiError(0, `cannot reach the admin API at ${this.#base.origin}: ${cause}`);
    }
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return parsed as T;
    const error = (parsed ?? {}) as ErrorJson;
    throw new AdminApiError(
      res.statusCode,
      error.message ?? `HTTP ${res.statusCode}${text ? `: ${text.slice(0, 200)}` : ""}`,
      error.errors ?? [],
      error.errorCount,
    );
  }

  listDevices(query: DeviceQueryParams): Promise<DevicePageJson> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    const qs = params.toString();
    return this.call("GET", `/devices${qs ? `?${qs}` : ""}`);
  }

  getDevice(id: string): Promise<DeviceJson> {
    return this.call("GET", `/devices/${encodeURIComponent(id)}`);
  }

  createDevice(device: Record<string, unknown>): Promise<DeviceJson> {
    return this.call("POST", "/devices", { json: device });
  }

  patchDevice(id: string, patch: Record<string, unknown>): Promise<DeviceJson> {
    return this.call("PATCH", `/devices/${encodeURIComponent(id)}`, { json: patch });
  }

  deleteDevice(id: string): Promise<void> {
    return this.call("DELETE", `/devices/${encodeURIComponent(id)}`);
  }

  importDevices(stream: Readable, length?: number): Promise<{ imported: number }> {
    return this.call("POST", "/devices/import", { stream, type: "application/x-ndjson", length });
  }

  close(): Promise<void> {
    return this.#dispatcher.close();
  }
}
