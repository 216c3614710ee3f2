// Observing what a TLS client offered: a TCP relay in front of a port that keeps each connection's
// ClientHello, and a parser telling whether that ClientHello offered a session for resumption
// (a non-empty session_ticket extension on TLS 1.2, a pre_shared_key extension on TLS 1.3).
// Node's client silently stops offering a session whose SNI differs from the new one, so a cross-SNI
// test needs this to prove that the server, not the client, made the decision.
import { connect, createServer, type Server, type Socket } from "node:net";

const EXT_SESSION_TICKET = 35;
const EXT_PRE_SHARED_KEY = 41;

/** Extension type → extension data length, from the first TLS record holding a ClientHello. */
export function clientHelloExtensions(bytes: Buffer): Map<number, number> | undefined {
  if (bytes.length < 5 || bytes[0] !== 0x16) return undefined;
  const recordEnd = 5 + bytes.readUInt16BE(3);
  if (bytes.length < recordEnd || bytes[5] !== 0x01) return undefined;
  let at = 5 + 4 + 2 + 32; // record header, handshake header, client_version, random
  const sessionIdLength = bytes[at] ?? 0;
  at += 1 + sessionIdLength;
  at += 2 + bytes.readUInt16BE(at); // cipher_suites
  at += 1 + (bytes[at] ?? 0); // compression_methods
  const extensionsEnd = at + 2 + bytes.readUInt16BE(at);
  at += 2;
  const out = new Map<number, number>();
  while (at + 4 <= extensionsEnd && at + 4 <= recordEnd) {
    const type = bytes.readUInt16BE(at);
    const length = bytes.readUInt16BE(at + 2);
    out.set(type, length);
    at += 4 + length;
  }
  return out;
}

/** Did this ClientHello offer a session (ticket or PSK) for resumption? */
export function offersSession(clientHello: Buffer): boolean {
  const ext = clientHelloExtensions(clientHello);
  if (!ext) throw new Error("not a ClientHello");
  return (ext.get(EXT_SESSION_TICKET) ?? 0) > 0 || ext.has(EXT_PRE_SHARED_KEY);
}

export interface HelloRelay {
  readonly port: number;
  /** The ClientHello record of each connection, in order. */
  readonly hellos: Buffer[];
  close(): Promise<void>;
}

/** A loopback TCP relay to `targetPort` that records each connection's first TLS record. */
export function startHelloRelay(targetPort: number): Promise<HelloRelay> {
  const hellos: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.once("close", () => sockets.delete(s));
    }
    let head: Buffer | undefined = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      if (head !== undefined) {
        head = Buffer.concat([head, chunk]);
        if (head.length >= 5 && head.length >= 5 + head.readUInt16BE(3)) {
          hellos.push(head.subarray(0, 5 + head.readUInt16BE(3)));
          head = undefined;
        }
      }
      upstream.write(chunk);
    });
    upstream.pipe(client);
    client.once("close", () => upstream.destroy());
    upstream.once("close", () => client.destroy());
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      resolve({
        port,
        hellos,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

const NODE_SESSION_MAGIC = Buffer.from("\0nodejs:tls:session:1\0", "latin1");

/**
 * A client session (as Node's `session` event gives it) retargeted to another SNI, so that the client
 * offers it under that name. Node wraps the OpenSSL session as `\0nodejs:tls:session:1\0`, a 16-bit
 * length, the servername, then the SSL_SESSION DER; a client only offers a session whose servername is
 * the one it connects with. Only that servername changes: the server's own state, inside the encrypted
 * ticket, is untouched, so the server alone decides whether the session resumes.
 */
export function retargetSession(session: Buffer, from: string, to: string): Buffer {
  if (!session.subarray(0, NODE_SESSION_MAGIC.length).equals(NODE_SESSION_MAGIC)) {
    throw new Error("not a Node session buffer");
  }
  const at = NODE_SESSION_MAGIC.length;
  const length = session.readUInt16BE(at);
  const name = session.subarray(at + 2, at + 2 + length).toString("latin1");
  if (name !== from) throw new Error(`session is for "${name}", not "${from}"`);
  const header = Buffer.alloc(2);
  header.writeUInt16BE(to.length);
  return Buffer.concat([
    session.subarray(0, at),
    header,
    Buffer.from(to, "latin1"),
    session.subarray(at + 2 + length),
  ]);
}
