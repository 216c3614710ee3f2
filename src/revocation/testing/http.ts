// Test helper: a plain local HTTP server with scripted routes (body, status, delay), used to serve CRLs
// and, with a handler, OCSP responses; plus a logger that records what the service says.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { RevocationLogger } from "../logger.ts";

export interface Route {
  readonly body?: string | Uint8Array;
  readonly status?: number;
  /** Wait this long before answering (a slow server). */
  readonly delayMs?: number;
  readonly contentType?: string;
}

export type Handler = (request: IncomingMessage, body: Buffer) => Route | Promise<Route>;

export interface TestServer {
  readonly origin: string;
  url(path: string): string;
  /** Serves `route` at `path` from now on. */
  set(path: string, route: Route): void;
  /** Requests received per path. */
  hits(path: string): number;
  close(): Promise<void>;
}

export async function startServer(handler?: Handler): Promise<TestServer> {
  const routes = new Map<string, Route>();
  const hits = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const path = req.url ?? "/";
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const route = handler
        ? await handler(req, Buffer.concat(chunks))
        : (routes.get(path) ?? { status: 404 });
      const send = () => {
        res.writeHead(route.status ?? 200, { "content-type": route.contentType ?? "application/pkix-crl" });
        res.end(route.body ?? "");
      };
      if (!route.delayMs) return send();
      const timer = setTimeout(() => {
        timers.delete(timer);
        send();
      }, route.delayMs);
      timers.add(timer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    url: (path) => `${origin}${path}`,
    set: (path, route) => routes.set(path, route),
    hits: (path) => hits.get(path) ?? 0,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A free TCP port, for servers (openssl ocsp) that cannot be told to pick one themselves. */
/**
 * A URL nothing answers (connection refused): port 9 (discard) on loopback lies below the ephemeral range,
 * so no test server bound to port 0 can ever take it — unlike a port found free and released.
 */
export const REFUSED_URL = "http://127.0.0.1:9/";

/** A port free right now; another process may bind it before the caller does (retry on EADDRINUSE). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface LogLine {
  readonly level: "info" | "warn" | "error";
  readonly obj: object;
  readonly msg: string;
}

export function recordingLogger(): RevocationLogger & { readonly lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    lines,
    info: (obj, msg) => lines.push({ level: "info", obj, msg }),
    warn: (obj, msg) => lines.push({ level: "warn", obj, msg }),
    error: (obj, msg) => lines.push({ level: "error", obj, msg }),
  };
}
