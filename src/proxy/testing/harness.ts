// Test helper: real local upstreams and a minimal gateway front around Upstream.forward(), all closed in one call.
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type RequestListener } from "node:http";
import type { Http2ServerRequest } from "node:http2";
import type { AddressInfo, Server as NetServer, Socket } from "node:net";
import { Agent } from "undici";
import type { AnyResponse } from "../../gateway/respond.ts";
import { Upstream, type UpstreamOptions } from "../upstream.ts";

export const TEST_IDENTITY_HEADERS = { "x-device-id": "device-001", "x-forwarded-client-cert": "Hash=abc" };

/** Answers JSON with what it received: method, url, headers, body size and SHA-256. */
export const echo: RequestListener = (req, res) => {
  const hash = createHash("sha256");
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
  });
  req.on("end", () => {
    res.setHeader("content-type", "application/json");
    res.setHeader("x-upstream", "echo");
    res.end(
      JSON.stringify({
        method: req.method,
        url: req.url,
        headers: req.headers,
        size,
        sha256: hash.digest("hex"),
      }),
    );
  });
};

export interface EchoBody {
  method: string;
  url: string;
  headers: Record<string, string>;
  size: number;
  sha256: string;
}

export class ProxyHarness {
  /** The client side: its own agent so that no keep-alive socket outlives the tests. */
  readonly client = new Agent({ keepAliveTimeout: 1000 });
  #cleanups: (() => unknown)[] = [];

  /** Listens on a random loopback port; the server is torn down, live connections included, by close(). */
  async listen(server: NetServer, scheme: "http" | "https" = "http"): Promise<URL> {
    const sockets = new Set<Socket>();
    server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    this.#cleanups.push(() => {
      const closed = new Promise((resolve) => server.close(resolve));
      for (const socket of sockets) socket.destroy();
      return closed;
    });
    return new URL(`${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }

  /** Registers extra teardown, run in reverse order by close(). */
  onClose(cleanup: () => unknown): void {
    this.#cleanups.push(cleanup);
  }

  startUpstream(handler: RequestListener): Promise<URL> {
    return this.listen(createServer(handler));
  }

  /** A port that refuses connections: bound once, then released. */
  async closedPort(): Promise<URL> {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return new URL(`http://127.0.0.1:${port}`);
  }

  upstream(targets: URL[], overrides: Partial<UpstreamOptions> = {}): Upstream {
    const upstream = new Upstream({
      name: "svc",
      targets,
      connectTimeoutMs: 1000,
      readTimeoutMs: 2000,
      retries: 0,
      preserveHost: false,
      ...overrides,
    });
    this.#cleanups.push(() => upstream.close());
    return upstream;
  }

  /** The request handler of a gateway front that does nothing but forward. */
  forwarder(upstream: Upstream): (req: IncomingMessage | Http2ServerRequest, res: AnyResponse) => void {
    return (req, res) => {
      upstream.forward({
        req,
        res,
        method: req.method ?? "GET",
        path: req.url ?? "/",
        host: "localhost",
        clientAddress: req.socket.remoteAddress ?? "",
        identityHeaders: TEST_IDENTITY_HEADERS,
        startedAt: performance.now(),
      });
    };
  }

  /** An HTTP/1.1 gateway front for `upstream`. */
  startGateway(upstream: Upstream): Promise<URL> {
    return this.listen(createServer(this.forwarder(upstream)));
  }

  async close(): Promise<void> {
    for (const cleanup of this.#cleanups.reverse()) await cleanup();
    await this.client.close();
  }
}
