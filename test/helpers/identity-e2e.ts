// Helpers for the identity-engine end-to-end tests: certificates minted in-process written out as the files a
// device holds (leaf + the chain it sends, and its key), a keep-alive client that counts its connections, a
// stable OCSP front URL whose responder behind it can be swapped, and readers for the gateway's log lines and
// Prometheus metrics.
import { X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { Client } from "undici";
import type { Minted } from "../../src/identity/testing/mint.ts";
import type { RawMinted } from "../../src/identity/testing/mint-raw.ts";
import { exportPrivateKeyPem } from "../../src/pki/keys.ts";
import { startServer, type TestServer } from "../../src/revocation/testing/http.ts";

/** What a deny body says. */
export interface DenyBody {
  readonly message?: string;
  readonly reason?: string;
}

/**
 * Writes `<name>.crt` (the leaf, then `chain`: what the device sends) and `<name>.key` into `dir`, so that
 * `curl({ dir, device: name })` presents them. Returns the name.
 */
export async function writeDevice(
  dir: string,
  name: string,
  leaf: Minted | RawMinted,
  chain: readonly (Minted | RawMinted)[] = [],
): Promise<string> {
  writeFileSync(join(dir, `${name}.crt`), [leaf, ...chain].map((c) => c.pem).join(""));
  const key =
    "x509" in leaf
      ? await exportPrivateKeyPem(leaf.keys.privateKey)
      : String(leaf.keys.privateKey.export({ type: "pkcs8", format: "pem" }));
  writeFileSync(join(dir, `${name}.key`), key, { mode: 0o600 });
  return name;
}

/** Writes a PEM bundle of CA certificates to `dir/<file>`; returns `file` (config paths are relative). */
export function writeBundle(dir: string, file: string, certs: readonly (Minted | RawMinted)[]): string {
  writeFileSync(join(dir, file), certs.map((c) => c.pem).join(""));
  return file;
}

/** SHA-256 fingerprint (hex, lower case, no colons) of the first certificate of a PEM text, by node:crypto. */
export function fingerprintOf(pemText: string): string {
  return new X509Certificate(pemText).fingerprint256.replaceAll(":", "").toLowerCase();
}

/** HPKP-style SPKI pin (base64 SHA-256 of the SubjectPublicKeyInfo DER) of a PEM certificate, by node:crypto. */
export async function spkiPinOf(pemText: string): Promise<string> {
  const spki = new X509Certificate(pemText).publicKey.export({ type: "spki", format: "der" });
  const digest = await globalThis.crypto.subtle.digest("SHA-256", spki);
  return Buffer.from(digest).toString("base64");
}

export interface KeepAlive {
  /** One GET on the kept-alive connection. */
  get(path?: string): Promise<{ status: number; body: DenyBody & Record<string, unknown> }>;
  /** How many TCP/TLS connections the client opened so far. */
  connects(): number;
  close(): Promise<void>;
}

/** An HTTP/1.1 keep-alive client presenting `certPem`/`keyPem`, on `host` (SNI and Host). */
export function keepAliveClient(options: {
  port: number;
  host: string;
  ca: string;
  certPem: string;
  keyPem: string;
}): KeepAlive {
  const client = new Client(`https://127.0.0.1:${options.port}`, {
    connect: { servername: options.host, ca: options.ca, cert: options.certPem, key: options.keyPem },
    keepAliveTimeout: 60_000,
  });
  let connects = 0;
  client.on("connect", () => connects++);
  return {
    get: async (path = "/echo") => {
      const r = await client.request({ method: "GET", path, headers: { host: options.host } });
      const text = await r.body.text();
      let body: DenyBody & Record<string, unknown>;
      try {
        body = JSON.parse(text) as DenyBody & Record<string, unknown>;
      } catch {
        body = { raw: text };
      }
      return { status: r.statusCode, body };
    },
    connects: () => connects,
    close: () => client.close(),
  };
}

/** Polls `probe` every `everyMs` until `done` says so or `timeoutMs` passed; returns the last result. */
export async function pollUntil<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await probe();
  while (!done(last) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, everyMs));
    last = await probe();
  }
  return last;
}

/**
 * A stable OCSP URL (to put in certificates' AIA or in `ocsp.responder`) that relays each POST, on a fresh
 * connection, to the responder currently set: `openssl ocsp` serves one connection at a time and picks its
 * own port, so a restarted responder needs a front whose address does not change.
 */
export interface OcspFront {
  readonly url: string;
  readonly server: TestServer;
  /** The responder requests go to from now on. */
  setTarget(url: string): void;
  /** OCSP requests relayed so far. */
  requests(): number;
  close(): Promise<void>;
}

export async function startOcspFront(): Promise<OcspFront> {
  let target: string | undefined;
  let count = 0;
  const relay = (body: Buffer): Promise<{ status: number; body: Buffer }> =>
    new Promise((resolve, reject) => {
      if (target === undefined) {
        reject(new Error("no OCSP responder set"));
        return;
      }
      const req = httpRequest(
        target,
        {
          method: "POST",
          agent: false,
          headers: { "content-type": "application/ocsp-request", "content-length": body.length },
          timeout: 5_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 502, body: Buffer.concat(chunks) }));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error("OCSP responder timed out")));
      req.on("error", reject);
      req.end(body);
    });
  const server = await startServer(async (_req, body) => {
    count++;
    try {
      const answer = await relay(body);
      return { status: answer.status, body: answer.body, contentType: "application/ocsp-response" };
    } catch (err) {
      return { status: 502, body: (err as Error).message, contentType: "text/plain" };
    }
  });
  return {
    url: server.url("/"),
    server,
    setTarget: (url) => {
      target = url;
    },
    requests: () => count,
    close: () => server.close(),
  };
}

interface LogLine {
  readonly msg?: string;
  readonly [key: string]: unknown;
}

/** The gateway's JSON log lines with this `msg`. */
export function logLinesWith(output: string, msg: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const text of output.split("\n")) {
    if (!text.startsWith("{")) continue;
    try {
      const line = JSON.parse(text) as LogLine;
      if (line.msg === msg) lines.push(line);
    } catch {
      // not a log line
    }
  }
  return lines;
}

/** The value of one Prometheus sample (`name{labels}`), or undefined when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const open = line.indexOf("{");
    const close = line.lastIndexOf("}");
    const labelText = open >= 0 && close > open ? line.slice(open + 1, close) : "";
    const have = new Map<string, string>();
    for (const m of labelText.matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      have.set(m[1] ?? "", m[2] ?? "");
    }
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) {
      return Number(line.slice((close > open ? close + 1 : line.indexOf(" ")) || 0).trim());
    }
  }
  return undefined;
}

/** GET an admin endpoint with the bearer token; resolves with status and text. */
export async function adminGet(
  port: number,
  path: string,
  token: string,
): Promise<{ status: number; text: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, text: await r.text() };
}
