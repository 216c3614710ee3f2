// The demo's built-in upstream: answers every request with JSON holding the method, the path, every
// header it received, and the size and SHA-256 of the body it read. A WebSocket upgrade is accepted on any
// path: a first text message (JSON, `type: "greeting"`) holds the path and the headers of the upgrade request
// (so the device's identity headers show), then every message is echoed back as it came (text or binary).
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer } from "ws";

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
  const sockets = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    socket.on("error", () => socket.destroy());
    sockets.handleUpgrade(req, socket, head, (ws) => {
      ws.on("error", () => ws.terminate());
      ws.send(JSON.stringify({ type: "greeting", path: req.url, headers: req.headers }));
      ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
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
            for (const ws of sockets.clients) ws.terminate();
            sockets.close();
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
