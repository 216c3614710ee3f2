// Helpers for the device registry's end-to-end tests: a demo PKI plus devices issued on demand, a gateway
// config with registry routes, a small admin API client, keep-alive (HTTP/1.1) and HTTP/2 device clients
// that report when the gateway closes them, PostgreSQL schemas per test file, and bounded polling.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "undici";
import type { ConfigInput } from "../../src/config/schema.ts";
import { parsePemBundle } from "../../src/identity/certificate.ts";
import { type DemoPki, ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { issueToFiles, loadPki } from "../../src/pki/store.ts";
import { dropSchema, PG_URL } from "../../src/registry/testing/pg.ts";

export const HOST = "mtls.auth.local.com";

export { dropSchema, PG_URL };

type RouteInput = ConfigInput["routes"][number];
type TrustStoreInput = NonNullable<ConfigInput["trustStores"]>[number];
type StoreInput = NonNullable<ConfigInput["store"]>;

/** Waits until `predicate` holds, polling every 20 ms; fails with `what` after `ms`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await sleep(20);
  }
}

/** Resolves with the value a promise settles to, or fails the test after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** A PostgreSQL schema name for one e2e test file; the store creates it, `dropSchema` removes it. */
export function e2eSchema(): string {
  return `portcullis_e2e_${randomBytes(6).toString("hex")}`;
}

/** The store URL of the test database with `?schema=`, optionally through another port (a proxy). */
export function pgStoreUrl(schema: string, port?: number): string {
  const url = new URL(PG_URL);
  if (port !== undefined) url.port = String(port);
  url.searchParams.set("schema", schema);
  return url.href;
}

export interface IssuedDevice {
  /** File prefix in the directory, as `curl({ device })` takes it. */
  readonly name: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** PEM of the leaf and its intermediate. */
  readonly certPem: string;
  readonly fingerprint: string;
}

export interface RegistryPki {
  readonly dir: string;
  readonly demo: DemoPki;
  readonly token: string;
  /** The demo files' device-001, unregistered-device, … as IssuedDevice. */
  existing(name: string): IssuedDevice;
  /** Issues a new device certificate (SAN `urn:device:<deviceId>`) to `<dir>/<deviceId>.crt|.key`. */
  issue(deviceId: string): Promise<IssuedDevice>;
}

function deviceFiles(dir: string, name: string): IssuedDevice {
  const certFile = join(dir, `${name}.crt`);
  const certPem = readFileSync(certFile, "utf8");
  const [leaf] = parsePemBundle(certPem);
  if (!leaf) throw new Error(`${certFile}: no certificate`);
  return { name, certFile, keyFile: join(dir, `${name}.key`), certPem, fingerprint: leaf.fingerprint };
}

/** The demo PKI in `dir` (CA, server certificate, demo devices, admin token) and a way to issue more devices. */
export async function registryPki(dir: string): Promise<RegistryPki> {
  const demo = await ensureDemoPki(dir);
  const pki = await loadPki(demo.pkiDir);
  return {
    dir,
    demo,
    token: readFileSync(demo.adminToken, "utf8").trim(),
    existing: (name) => deviceFiles(dir, name),
    issue: async (deviceId) => {
      await issueToFiles(pki, { kind: "device", deviceId }, { out: join(dir, deviceId) });
      return deviceFiles(dir, deviceId);
    },
  };
}

export interface RegistryConfigOptions {
  readonly upstream: string;
  /** `sqlite:…` (relative to the config file) or a PostgreSQL URL. */
  readonly storeUrl: string;
  readonly store?: Omit<StoreInput, "url">;
  /** Extra routes, after `/echo` (registry required, trust store "devices"). */
  readonly routes?: readonly RouteInput[];
  /** Extra trust stores over the same CA, after "devices". */
  readonly trustStores?: readonly TrustStoreInput[];
}

/** One application-mode listener "main", the admin API on a free port, and `/echo` requiring a registered device. */
export function registryConfig(options: RegistryConfigOptions): ConfigInput {
  return {
    listeners: [
      {
        name: "main",
        port: 0,
        clientAuth: "application",
        certificates: [{ cert: "server.crt", key: "server.key" }],
      },
    ],
    trustStores: [{ name: "devices", ca: ["ca-chain.crt"] }, ...(options.trustStores ?? [])],
    services: [{ name: "echo", targets: [options.upstream] }],
    routes: [
      {
        name: "echo",
        hosts: [HOST],
        paths: ["/echo"],
        service: "echo",
        auth: { trustStores: ["devices"], registry: "required" },
      },
      ...(options.routes ?? []),
    ],
    admin: { host: "127.0.0.1", port: 0, tokenFile: "admin.token" },
    store: { url: options.storeUrl, ...options.store },
    log: { level: "info" },
  };
}

export interface AdminResponse<T> {
  readonly status: number;
  readonly text: string;
  readonly json: T;
}

export interface DeviceJson {
  readonly id: string;
  readonly status: string;
  readonly groups: readonly string[];
  readonly bindings: readonly { readonly kind: string; readonly value: string }[];
  readonly metadata: Record<string, unknown>;
  readonly version: number;
}

/** The admin API of one gateway, with its bearer token. */
export class AdminApi {
  readonly base: string;
  readonly #token: string;

  constructor(port: number | undefined, token: string) {
    if (port === undefined) throw new Error("the gateway has no admin listener");
    this.base = `http://127.0.0.1:${port}`;
    this.#token = token;
  }

  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<AdminResponse<T>> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json: json as T };
  }

  /** Registers a device bound to the certificate's fingerprint and SPKI; asserts 201. */
  async register(
    id: string,
    device: IssuedDevice,
    extra: { status?: string; groups?: string[] } = {},
  ): Promise<DeviceJson> {
    const r = await this.call<DeviceJson>("POST", "/devices", { id, certificate: device.certPem, ...extra });
    assert.equal(r.status, 201, `POST /devices ${id}: ${r.text}`);
    return r.json;
  }

  async patch(id: string, patch: Record<string, unknown>): Promise<DeviceJson> {
    const r = await this.call<DeviceJson>("PATCH", `/devices/${encodeURIComponent(id)}`, patch);
    assert.equal(r.status, 200, `PATCH /devices/${id}: ${r.text}`);
    return r.json;
  }
}

export interface EchoAnswer {
  readonly status: number;
  readonly body: { reason?: string; headers?: Record<string, string | undefined> };
}

function tlsOptions(dir: string, device: IssuedDevice) {
  return {
    servername: HOST,
    ca: readFileSync(join(dir, "ca-chain.crt")),
    cert: readFileSync(device.certFile),
    key: readFileSync(device.keyFile),
  };
}

/** An HTTP/1.1 keep-alive connection of one device, counting connects and telling when it was closed. */
export class KeepAliveDevice {
  readonly client: Client;
  connects = 0;
  disconnects = 0;
  #onDisconnect: (() => void)[] = [];

  constructor(port: number, dir: string, device: IssuedDevice) {
    this.client = new Client(`https://127.0.0.1:${port}`, {
      connect: tlsOptions(dir, device),
      keepAliveTimeout: 60_000,
      keepAliveMaxTimeout: 60_000,
    });
    this.client.on("connect", () => this.connects++);
    this.client.on("disconnect", () => {
      this.disconnects++;
      for (const resolve of this.#onDisconnect.splice(0)) resolve();
    });
  }

  /** Resolves at the next disconnect of the connection (to be called before what causes it). */
  nextDisconnect(): Promise<number> {
    return new Promise((resolve) => this.#onDisconnect.push(() => resolve(performance.now())));
  }

  async get(path = "/echo"): Promise<EchoAnswer> {
    const r = await this.client.request({ method: "GET", path, headers: { host: HOST } });
    return { status: r.statusCode, body: (await r.body.json()) as EchoAnswer["body"] };
  }

  close(): Promise<void> {
    return this.client.destroy();
  }
}

/** An HTTP/2 session of one device; `closed` resolves (with performance.now()) when the session closes. */
export class Http2Device {
  readonly session: http2.ClientHttp2Session;
  readonly closed: Promise<number>;

  constructor(port: number, dir: string, device: IssuedDevice) {
    this.session = http2.connect(`https://127.0.0.1:${port}`, tlsOptions(dir, device));
    this.session.on("error", () => {});
    this.closed = new Promise((resolve) => this.session.once("close", () => resolve(performance.now())));
  }

  get isClosed(): boolean {
    return this.session.closed || this.session.destroyed;
  }

  get(path = "/echo"): Promise<EchoAnswer> {
    return new Promise((resolve, reject) => {
      const stream = this.session.request({ ":method": "GET", ":path": path, ":authority": HOST });
      let status = 0;
      let text = "";
      stream.setEncoding("utf8");
      stream.on("response", (headers) => {
        status = Number(headers[":status"]);
      });
      stream.on("data", (chunk: string) => {
        text += chunk;
      });
      stream.on("end", () => {
        try {
          resolve({ status, body: JSON.parse(text) as EchoAnswer["body"] });
        } catch (err) {
          reject(err);
        }
      });
      stream.on("error", reject);
      stream.end();
    });
  }

  close(): void {
    this.session.destroy();
  }
}

/** The value of one metric sample whose labels include all of `labels`, or undefined. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf("}");
    const body = line.slice(name.length + 1, close);
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`))) {
      return Number(line.slice(close + 1).trim());
    }
  }
  return undefined;
}
