// Test helper: an AdminServer on a free loopback port with a fake (or given) store, a decision log and
// metrics, plus a small fetch wrapper that sends the token unless told otherwise.
import { DecisionLog } from "../../gateway/decision-log.ts";
import { GatewayMetrics } from "../../gateway/metrics.ts";
import type { DeviceStore } from "../../registry/types.ts";
import type { AdminOptions } from "../options.ts";
import { AdminServer } from "../server.ts";
import { MemoryDeviceStore } from "./memory-store.ts";

export const TEST_TOKEN = "test-admin-token-0123456789abcdef";

export interface CallOptions {
  readonly body?: unknown;
  /** Sent as is (no JSON encoding), e.g. NDJSON or malformed JSON. */
  readonly raw?: string | Buffer;
  readonly headers?: Record<string, string>;
  /** null sends no Authorization header. */
  readonly token?: string | null;
}

export interface CallResult<T = Record<string, unknown>> {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: T;
}

export interface AdminHarness {
  readonly server: AdminServer;
  readonly url: string;
  readonly store: DeviceStore;
  readonly decisions: DecisionLog;
  readonly metrics: GatewayMetrics;
  call<T = Record<string, unknown>>(
    method: string,
    path: string,
    options?: CallOptions,
  ): Promise<CallResult<T>>;
  close(): Promise<void>;
}

export async function startAdmin(overrides: Partial<AdminOptions> = {}): Promise<AdminHarness> {
  const store = overrides.store ?? new MemoryDeviceStore();
  const decisions = overrides.decisions ?? new DecisionLog(1000);
  const metrics =
    overrides.metrics instanceof GatewayMetrics
      ? overrides.metrics
      : new GatewayMetrics({ defaultMetrics: false });
  const server = new AdminServer({
    host: "127.0.0.1",
    port: 0,
    token: TEST_TOKEN,
    status: () => ({ status: "ok", version: "test", uptimeSeconds: 0, listeners: [] }),
    ...overrides,
    store,
    decisions,
    metrics,
  });
  const { port } = await server.listen();
  const url = `http://127.0.0.1:${port}`;
  return {
    server,
    url,
    store,
    decisions,
    metrics,
    async call<T>(method: string, path: string, options: CallOptions = {}): Promise<CallResult<T>> {
      const headers: Record<string, string> = { ...options.headers };
      const token = options.token === undefined ? TEST_TOKEN : options.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let body: string | Buffer | undefined = options.raw;
      if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers["content-type"] ??= "application/json";
      }
      const res = await fetch(`${url}${path}`, { method, headers, body });
      const text = await res.text();
      let json: unknown;
      try {
        json = text === "" ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, text, json: json as T };
    },
    close: () => server.close(),
  };
}
