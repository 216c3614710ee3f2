// The floor of any gateway built on Node's HTTPS stack: Node's own server asking for a client certificate
// (as Portcullis's application mode does) and answering a fixed 200 itself, with no gateway logic and no
// upstream. `bench/profile.ts --floor` measures it in turns with Portcullis and nginx.
// Env: PORT, DIR (a demo PKI directory: server.crt, server.key, ca-chain.crt), SERVER=h2 for
// `http2.createSecureServer` with `allowHTTP1` (what Portcullis listeners are) instead of `node:https`.
import { readFileSync } from "node:fs";
import { createSecureServer } from "node:http2";
import { createServer } from "node:https";
import { join } from "node:path";

const { PORT = "0", DIR = ".", SERVER = "https" } = process.env;
const BODY = Buffer.from('{"ok":true}');
const tls = {
  key: readFileSync(join(DIR, "server.key")),
  cert: readFileSync(join(DIR, "server.crt")),
  ca: readFileSync(join(DIR, "ca-chain.crt")),
  requestCert: true,
  rejectUnauthorized: false,
  minVersion: "TLSv1.2" as const,
};
const answer = (res: {
  writeHead(s: number, h: Record<string, string | number>): unknown;
  end(b: Buffer): unknown;
}) => {
  res.writeHead(200, { "content-type": "application/json", "content-length": BODY.length });
  res.end(BODY);
};
const server =
  SERVER === "h2"
    ? createSecureServer({ ...tls, allowHTTP1: true }, (_req, res) => answer(res))
    : createServer(tls, (_req, res) => answer(res));
server.listen({ port: Number(PORT), host: "127.0.0.1", backlog: 4096 });
