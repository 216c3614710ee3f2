// The console's one way to the admin API: same-origin fetches with the session cookie, the CSRF token on
// every change, and a 401 anywhere sends the user back to the login form.
export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, message: string, body: unknown) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

let csrfToken = "";
const unauthorizedListeners = new Set<() => void>();

/** Called on any 401: the session is gone (expired, logged out elsewhere, the gateway restarted). */
export function onUnauthorized(listener: () => void): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

export interface Session {
  readonly csrfToken: string;
  readonly expiresAt: string;
}

export interface RequestOptions {
  readonly method?: string;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly signal?: AbortSignal;
}

/** `path` with the query parameters that have a value. */
export function withQuery(path: string, query: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

async function send(path: string, options: RequestOptions = {}): Promise<Response> {
  const method = options.method ?? "GET";
  const headers: Record<string, string> = { accept: "application/json", ...options.headers };
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["x-csrf-token"] = csrfToken;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  return fetch(path, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    credentials: "same-origin",
    cache: "no-store",
    signal: options.signal,
  });
}

async function errorOf(res: Response): Promise<ApiError> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const message =
    body && typeof body === "object" && "message" in body && typeof body.message === "string"
      ? body.message
      : `HTTP ${res.status}`;
  return new ApiError(res.status, message, body);
}

/** GET (or another method) of a JSON answer; the response's ETag comes with it. */
export async function request<T>(
  path: string,
  options: RequestOptions = {},
): Promise<{ data: T; etag: string | null }> {
  const res = await send(path, options);
  if (!res.ok) {
    const error = await errorOf(res);
    if (res.status === 401 && !path.startsWith("/console/session")) {
      csrfToken = "";
      for (const listener of unauthorizedListeners) listener();
    }
    throw error;
  }
  const data = (res.status === 204 ? undefined : await res.json()) as T;
  return { data, etag: res.headers.get("etag") };
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  return (await request<T>(path, { signal })).data;
}

/** The current session, or undefined without a valid cookie. */
export async function currentSession(): Promise<Session | undefined> {
  try {
    const { data } = await request<Session>("/console/session");
    csrfToken = data.csrfToken;
    return data;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return undefined;
    throw err;
  }
}

export async function login(token: string): Promise<Session> {
  const { data } = await request<Session>("/console/session", { method: "POST", body: { token } });
  csrfToken = data.csrfToken;
  return data;
}

export async function logout(): Promise<void> {
  try {
    await request<void>("/console/session", { method: "DELETE" });
  } finally {
    csrfToken = "";
  }
}
