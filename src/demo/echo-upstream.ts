// The demo's built-in upstream: answers every request with JSON holding the method, the path, every
// header it received, and the size and SHA-256 of the body it read.
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface EchoUpstream {
  readonly server: Server;
  readonly url: string;
  close(): Promise<void>;
}

export function startEchoUpstream(port = 0, host = "127.0.0.1"): Promise<EchoUpstream> {
  const server = createServer((req, res) => {
    const hash = createHash("sha256");
    let bytes = 0;
    req.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on("end", () => {
      const body = JSON.stringify(
        {
          method: req.method,
          path: req.url,
          headers: req.headers,
          body: { bytes, sha256: hash.digest("hex") },
        },
        null,
        2,
      );
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    });
    req.on("error", () => res.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      const { port: bound } = server.address() as AddressInfo;
      resolve({
        server,
        url: `http://${host}:${bound}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
