// A client of the admin API (used by `portcullis devices`): undici with the bearer token, optional TLS
// trust and client certificate, and every non-2xx answer turned into an AdminApiError carrying the body's
// message and field errors. An import asks for the streamed answer (progress lines, then the result).
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
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

/** A progress line of a streamed import answer (docs/admin-api.md). */
export type ImportProgressJson =
  | {
      readonly phase: "validating";
      readonly lines: number;
      readonly bytes: number;
      readonly errorCount: number;
    }
  | { readonly phase: "writing"; readonly written: number; readonly total: number };

export interface ImportResultJson {
  readonly imported: number;
  /** How long the server took, when it said (streamed answers). */
  readonly durationMs?: number;
}

/** The last line of a streamed import answer. */
interface ImportEndJson extends ErrorJson {
  phase: "done" | "failed";
  status?: number;
  imported?: number;
  durationMs?: number;
}

/** An enrollment token as the admin API shows it; `token` (the secret) only in the answer that created it. */
export interface EnrollmentTokenJson {
  readonly id: string;
  readonly token?: string;
  readonly deviceId: string;
  readonly profile: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly usedAt?: string;
  readonly revokedAt?: string;
  readonly state: "active" | "used" | "expired" | "revoked";
}

export interface EnrollmentTokenPageJson {
  readonly tokens: readonly EnrollmentTokenJson[];
  readonly next?: string | null;
}

export interface NewEnrollmentTokenJson {
  readonly deviceId: string;
  readonly profile?: string;
  /** A duration such as "24h", or milliseconds. */
  readonly ttl?: string | number;
}

export interface EnrollmentTokenQueryParams {
  readonly deviceId?: string;
  readonly after?: string;
  readonly limit?: number;
}

/** A certificate issued through enrollment, as the admin API shows it. */
export interface IssuedCertificateJson {
  readonly serial: string;
  readonly deviceId: string;
  readonly profile: string;
  readonly fingerprint: string;
  readonly subject: string;
  readonly notBefore: string;
  readonly notAfter: string;
  readonly issuedAt: string;
  readonly operation: "enroll" | "reenroll";
  readonly state: "valid" | "expired" | "revoked";
  readonly revokedAt?: string;
  readonly revocationReason?: string;
}

/** A device whose certificate expires soon (GET /fleet/expiring). */
export interface ExpiringDeviceJson {
  readonly deviceId: string;
  readonly notAfter: string;
  readonly daysLeft: number;
  readonly source: "seen" | "enrolled";
  readonly fingerprint: string;
  readonly serial: string;
}

export interface ExpiringDevicesJson {
  readonly within: string;
  readonly devices: readonly ExpiringDeviceJson[];
}

export interface IssuedCertificatePageJson {
  readonly certificates: readonly IssuedCertificateJson[];
  readonly next?: string | null;
}

type RequestBody = { json: unknown } | { stream: Readable; type: string; length?: number };

/** `?key=value&…` of the defined values, or "" when none is. */
function queryString(query: object): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
  const qs = params.toString();
  return qs ? `?${qs}` : "";
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
    body?: RequestBody,
    headers: Record<string, string> = {},
  ): Promise<T> {
    return this.#answer<T>(await this.#request(method, path, body, headers));
  }

  async #request(
    method: Dispatcher.HttpMethod,
    path: string,
    body: RequestBody | undefined,
    headers: Record<string, string>,
    accept = "application/json",
  ): Promise<Dispatcher.ResponseData> {
    const url = new URL(
      path.replace(/^\//, ""),
      this.#base.href.endsWith("/") ? this.#base : `${this.#base.href}/`,
    );
    const all: Record<string, string> = {
      ...headers,
      authorization: `Bearer ${this.#token}`,
      accept,
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
    try {
      return await request(url, { method, headers: all, body: payload, dispatcher: this.#dispatcher });
    } catch (err) {
      throw this.#unreachable(err);
    }
  }

  #unreachable(err: unknown): AdminApiError {
    const cause = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    return new AdminApiError(0, `cannot reach the admin API at ${this.#base.origin}: ${cause}`);
  }

  /** The parsed body of a 2xx answer; any other status becomes an AdminApiError. */
  async #answer<T>(res: Dispatcher.ResponseData): Promise<T> {
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

  createEnrollmentToken(request: NewEnrollmentTokenJson): Promise<EnrollmentTokenJson> {
    return this.call("POST", "/enrollment-tokens", { json: request });
  }

  listEnrollmentTokens(query: EnrollmentTokenQueryParams): Promise<EnrollmentTokenPageJson> {
    return this.call("GET", `/enrollment-tokens${queryString(query)}`);
  }

  revokeEnrollmentToken(id: string): Promise<EnrollmentTokenJson> {
    return this.call("DELETE", `/enrollment-tokens/${encodeURIComponent(id)}`);
  }

  /** GET /fleet/expiring: devices whose certificate expires within `within` ("30d"), soonest first. */
  listExpiringDevices(within?: string): Promise<ExpiringDevicesJson> {
    return this.call("GET", `/fleet/expiring${queryString({ within })}`);
  }

  listDeviceCertificates(
    deviceId: string,
    query: { readonly after?: string; readonly limit?: number } = {},
  ): Promise<IssuedCertificatePageJson> {
    return this.call("GET", `/devices/${encodeURIComponent(deviceId)}/certificates${queryString(query)}`);
  }

  revokeCertificate(serial: string, reason?: string): Promise<IssuedCertificateJson> {
    const body = reason === undefined ? {} : { reason };
    return this.call("POST", `/certificates/${encodeURIComponent(serial)}/revoke`, { json: body });
  }

  /**
   * POST /devices/import with the streamed answer: `onProgress` gets each progress line as it arrives. A
   * server that answers plain JSON (an older one) is understood too.
   */
  async importDevices(
    stream: Readable,
    length?: number,
    onProgress?: (progress: ImportProgressJson) => void,
  ): Promise<ImportResultJson> {
    const res = await this.#request(
      "POST",
      "/devices/import",
      { stream, type: "application/x-ndjson", length },
      {},
      "application/x-ndjson, application/json;q=0.9",
    );
    const type = String(res.headers["content-type"] ?? "");
    if (res.statusCode !== 200 || !type.startsWith("application/x-ndjson")) return this.#answer(res);
    let end: ImportEndJson | undefined;
    const decoder = new StringDecoder("utf8");
    let buffered = "";
    const take = (line: string) => {
      if (line.trim() === "") return;
      let value: ImportEndJson | ImportProgressJson;
      try {
        value = JSON.parse(line) as ImportEndJson | ImportProgressJson;
      } catch {
        return;
      }
      if (value.phase === "done" || value.phase === "failed") end = value;
      else onProgress?.(value as ImportProgressJson);
    };
    try {
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        buffered += decoder.write(chunk);
        for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
          take(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
        }
      }
    } catch (err) {
      if (end === undefined) throw this.#unreachable(err);
    }
    take(buffered + decoder.end());
    if (end === undefined) {
      throw new AdminApiError(
        0,
        "the admin API closed the import's answer before its result: list the devices to see whether it was applied",
      );
    }
    if (end.phase === "done") {
      return {
        imported: end.imported ?? 0,
        ...(end.durationMs !== undefined && { durationMs: end.durationMs }),
      };
    }
    const status = end.status ?? 0;
    throw new AdminApiError(status, end.message ?? `HTTP ${status}`, end.errors ?? [], end.errorCount);
  }

  close(): Promise<void> {
    return this.#dispatcher.close();
  }
}
