// The admin listener: its own HTTP server (loopback by default), every call behind the bearer token,
// JSON in and out. This first version serves GET /status.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { sendJson } from "../gateway/respond.ts";
import { bearerTokenMatches } from "./auth.ts";

export interface AdminStatus {
  readonly status: "ok" | "draining";
  readonly version: string;
  readonly uptimeSeconds: number;
  readonly listeners: readonly { name: string; address: string; port: number; clientAuth: string }[];
}

export interface AdminOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  readonly status: () => AdminStatus;
}

export class AdminServer {
  readonly #server: Server;

  constructor(options: AdminOptions) {
    this.#server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) =>
      this.#handle(req, res, options),
    );
  }

  #handle(req: IncomingMessage, res: ServerResponse, options: AdminOptions): void {
    const startedAt = performance.now();
    if (!bearerTokenMatches(req, options.token)) {
      sendJson(res, 401, { message: "Unauthorized" }, startedAt, {
        "www-authenticate": 'Bearer realm="portcullis"',
      });
      return;
    }
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/status") {
      if (req.method !== "GET" && req.method !== "HEAD") {
        sendJson(res, 405, { message: "Method not allowed" }, startedAt, { allow: "GET, HEAD" });
        return;
      }
      sendJson(res, 200, options.status(), startedAt);
      return;
    }
    sendJson(res, 404, { message: "Not found" }, startedAt);
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, host, () => {
        this.#server.off("error", reject);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
