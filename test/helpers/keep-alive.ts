// One keep-alive HTTPS connection with a device certificate (undici Client), counting its connects, so a
// test can prove that several requests — and a verdict that changed between them — used one connection.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "undici";

export interface KeepAliveClient {
  get(path?: string): Promise<{ status: number; body: { reason?: string } & Record<string, unknown> }>;
  /** How many TLS connections the client has made so far. */
  readonly connects: number;
  close(): Promise<void>;
}

/** `device` is a file prefix in `dir` (e.g. "device" for device.crt / device.key). */
export function keepAliveClient(
  port: number,
  dir: string,
  device: string,
  host = "mtls.auth.local.com",
): KeepAliveClient {
  const client = new Client(`https://127.0.0.1:${port}`, {
    connect: {
      servername: host,
      ca: readFileSync(join(dir, "ca-chain.crt")),
      cert: readFileSync(join(dir, `${device}.crt`)),
      key: readFileSync(join(dir, `${device}.key`)),
    },
  });
  let connects = 0;
  client.on("connect", () => connects++);
  return {
    async get(path = "/echo") {
      const r = await client.request({ method: "GET", path, headers: { host } });
      return {
        status: r.statusCode,
        body: (await r.body.json()) as { reason?: string } & Record<string, unknown>,
      };
    },
    get connects() {
      return connects;
    },
    close: () => client.close(),
  };
}
