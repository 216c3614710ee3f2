// The load generator, run as a separate process (child_process.fork) so that its CPU is not the server's:
// mTLS connections with a client certificate over node:tls, HTTP/1.1 written and parsed by hand, and
// HTTP/2 through node:http2's client.
import { readFileSync } from "node:fs";
import { type ClientHttp2Session, connect as connectHttp2, constants as h2 } from "node:http2";
import { connect, TLSSocket } from "node:tls";
import type {
  LoadgenReply,
  LoadgenRequest,
  OpenRequest,
  OpenResult,
  RunRequest,
  RunResult,
  Target,
} from "./protocol.ts";

interface Credentials {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

const credentialCache = new Map<string, Credentials>();

function credentials(target: Target): Credentials {
  const id = `${target.certFile}\0${target.keyFile}\0${target.caFile}`;
  let found = credentialCache.get(id);
  if (!found) {
    found = {
      cert: readFileSync(target.certFile),
      key: readFileSync(target.keyFile),
      ca: readFileSync(target.caFile),
    };
    credentialCache.set(id, found);
  }
  return found;
}

function open(target: Target): TLSSocket {
  const { cert, key, ca } = credentials(target);
  return connect({
    host: "127.0.0.1",
    port: target.port,
    servername: target.servername,
    cert,
    key,
    ca,
    ALPNProtocols: ["http/1.1"],
  });
}

function request(target: Target, close: boolean): Buffer {
  const connection = close ? "close" : "keep-alive";
  return Buffer.from(
    `GET ${target.path} HTTP/1.1\r\nHost: ${target.servername}\r\nUser-Agent: portcullis-bench\r\n` +
      `Connection: ${connection}\r\n\r\n`,
  );
}

const HEAD_END = Buffer.from("\r\n\r\n");
const CRLF = Buffer.from("\r\n");

/** Parses one HTTP/1.1 response at a time (Content-Length or chunked) from a byte stream. */
class ResponseReader {
  #buf: Buffer = Buffer.alloc(0);

  /** Feeds bytes; returns the status of a complete response, leaving any bytes after it buffered. */
  feed(chunk: Buffer): number | undefined {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const headEnd = this.#buf.indexOf(HEAD_END);
    if (headEnd < 0) return undefined;
    const head = this.#buf.subarray(0, headEnd).toString("latin1");
    const status = Number(head.slice(9, 12));
    const bodyStart = headEnd + 4;
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let end: number | undefined;
    if (length) {
      end = bodyStart + Number(length[1]);
      if (this.#buf.length < end) return undefined;
    } else if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) {
      end = this.#chunkedEnd(bodyStart);
      if (end === undefined) return undefined;
    } else {
      end = bodyStart;
    }
    this.#buf = this.#buf.subarray(end);
    return status;
  }

  #chunkedEnd(from: number): number | undefined {
    let at = from;
    for (;;) {
      const lineEnd = this.#buf.indexOf(CRLF, at);
      if (lineEnd < 0) return undefined;
      const size = Number.parseInt(this.#buf.subarray(at, lineEnd).toString("latin1"), 16);
      if (size === 0) {
        // No trailers expected: the terminating CRLF follows.
        const end = lineEnd + 4;
        return this.#buf.length >= end ? end : undefined;
      }
      at = lineEnd + 2 + size + 2;
      if (this.#buf.length < at) return undefined;
    }
  }
}

function errorCode(err: unknown): string {
  if (err && typeof err === "object" && "code" in err && typeof err.code === "string") return err.code;
  return err instanceof Error ? err.message : String(err);
}

/** One connection, one request, `Connection: close`; resolves to the outcome once the socket closes. */
function oneShot(target: Target, payload: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const reader = new ResponseReader();
    let outcome: string | undefined;
    const socket = open(target);
    socket.setTimeout(10_000, () => socket.destroy(new Error("timeout")));
    socket.once("secureConnect", () => socket.write(payload));
    socket.on("data", (chunk: Buffer) => {
      if (outcome !== undefined) return;
      const status = reader.feed(chunk);
      if (status === undefined) return;
      outcome = String(status);
      socket.end();
    });
    socket.on("error", (err) => {
      outcome ??= `tls:${errorCode(err)}`;
    });
    socket.once("close", () => resolve(outcome ?? "closed-without-response"));
  });
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

class Latencies {
  #values = new Float64Array(65_536);
  #length = 0;
  add(ms: number): void {
    if (this.#length === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#length++] = ms;
  }
  sorted(): Float64Array {
    return this.#values.slice(0, this.#length).sort();
  }
}

/**
 * Connections left open by a run with `keepOpen` (a warm-up), by mode and target: the next run on the same
 * target starts on them, so that its measured time holds no handshakes. A run without `keepOpen` closes
 * what it took and whatever is left over.
 */
const parked = new Map<string, (TLSSocket | ClientHttp2Session)[]>();

function poolKey(mode: string, target: Target): string {
  return `${mode}\0${target.port}\0${target.path}\0${target.certFile}`;
}

function unpark<T extends TLSSocket | ClientHttp2Session>(pool: T[]): T | undefined {
  for (let c = pool.pop(); c !== undefined; c = pool.pop()) if (!c.destroyed && !c.closed) return c;
  return undefined;
}

const ignore = () => {};

/** A persistent connection sending one request at a time until the deadline; reconnects if closed. */
async function keepAliveWorker(
  target: Target,
  deadline: number,
  count: (outcome: string) => void,
  latencies: Latencies | undefined,
  pool: TLSSocket[],
  keepOpen: boolean,
): Promise<void> {
  const payload = request(target, false);
  while (performance.now() < deadline) {
    const reused = unpark(pool);
    const socket = reused ?? open(target);
    if (!reused) socket.on("error", ignore);
    await new Promise<void>((resolve) => {
      const reader = new ResponseReader();
      let sentAt = 0;
      let inFlight = false;
      const park = () => {
        socket.off("secureConnect", send);
        socket.off("data", onData);
        socket.off("error", onError);
        socket.off("close", onClose);
        pool.push(socket);
        resolve();
      };
      function send() {
        if (performance.now() >= deadline) {
          if (keepOpen) park();
          else socket.end();
          return;
        }
        inFlight = true;
        sentAt = performance.now();
        socket.write(payload);
      }
      function onData(chunk: Buffer) {
        for (let status = reader.feed(chunk); status !== undefined; status = reader.feed(Buffer.alloc(0))) {
          inFlight = false;
          latencies?.add(performance.now() - sentAt);
          count(String(status));
          send();
        }
      }
      function onError(err: Error) {
        if (inFlight) count(`tls:${errorCode(err)}`);
        inFlight = false;
      }
      function onClose() {
        if (inFlight) count("closed-without-response");
        resolve();
      }
      socket.on("data", onData);
      socket.on("error", onError);
      socket.once("close", onClose);
      if (reused) send();
      else socket.once("secureConnect", send);
    });
  }
}

/** An HTTP/2 connection sending one request (stream) at a time until the deadline; reconnects if closed. */
async function http2Worker(
  target: Target,
  deadline: number,
  count: (outcome: string) => void,
  latencies: Latencies | undefined,
  pool: ClientHttp2Session[],
  keepOpen: boolean,
): Promise<void> {
  const { cert, key, ca } = credentials(target);
  const headers = {
    [h2.HTTP2_HEADER_METHOD]: "GET",
    [h2.HTTP2_HEADER_PATH]: target.path,
    [h2.HTTP2_HEADER_AUTHORITY]: target.servername,
    "user-agent": "portcullis-bench",
  };
  while (performance.now() < deadline) {
    const reused = unpark(pool);
    const session =
      reused ??
      connectHttp2(`https://127.0.0.1:${target.port}`, {
        servername: target.servername,
        cert,
        key,
        ca,
        ALPNProtocols: ["h2"],
      });
    if (!reused) session.on("error", ignore);
    await new Promise<void>((resolve) => {
      let inFlight = false;
      const park = () => {
        session.off("connect", send);
        session.off("error", onError);
        session.off("close", onClose);
        pool.push(session);
        resolve();
      };
      function send() {
        if (performance.now() >= deadline || session.destroyed || session.closed) {
          if (keepOpen && !session.destroyed && !session.closed) park();
          else session.close();
          return;
        }
        inFlight = true;
        const sentAt = performance.now();
        let status = "";
        const stream = session.request(headers, { endStream: true });
        stream.on("response", (h) => {
          status = String(h[h2.HTTP2_HEADER_STATUS]);
        });
        stream.on("data", ignore);
        stream.on("error", ignore);
        stream.once("close", () => {
          if (!inFlight) return;
          inFlight = false;
          if (status === "" || stream.rstCode !== h2.NGHTTP2_NO_ERROR) {
            count(status === "" ? "h2:stream-closed-without-response" : `h2:rst-${stream.rstCode}`);
            session.destroy();
            return;
          }
          latencies?.add(performance.now() - sentAt);
          count(status);
          send();
        });
      }
      function onError(err: Error) {
        if (inFlight) count(`tls:${errorCode(err)}`);
        inFlight = false;
      }
      function onClose() {
        if (inFlight) count("closed-without-response");
        resolve();
      }
      session.on("error", onError);
      session.once("close", onClose);
      if (reused) send();
      else session.once("connect", send);
    });
  }
}

async function run(req: RunRequest): Promise<RunResult> {
  const outcomes: Record<string, number> = {};
  let completed = 0;
  const count = (outcome: string) => {
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    completed++;
  };
  const latencies = req.latency ? new Latencies() : undefined;
  const started = performance.now();
  const deadline = started + req.durationMs;
  const workers: Promise<void>[] = [];
  const key = poolKey(req.mode, req.target);
  const pool = parked.get(key) ?? [];
  parked.set(key, pool);
  const keepOpen = req.keepOpen === true;
  for (let i = 0; i < req.concurrency; i++) {
    if (req.mode === "keepalive") {
      workers.push(keepAliveWorker(req.target, deadline, count, latencies, pool as TLSSocket[], keepOpen));
    } else if (req.mode === "h2") {
      workers.push(
        http2Worker(req.target, deadline, count, latencies, pool as ClientHttp2Session[], keepOpen),
      );
    } else {
      const payload = request(req.target, true);
      workers.push(
        (async () => {
          while (performance.now() < deadline) count(await oneShot(req.target, payload));
        })(),
      );
    }
  }
  await Promise.all(workers);
  const elapsedMs = performance.now() - started;
  if (!keepOpen) {
    for (const c of pool.splice(0)) {
      if (c instanceof TLSSocket) c.end();
      else c.close();
    }
  }
  const sorted = latencies?.sorted();
  return {
    kind: "result",
    elapsedMs,
    outcomes,
    completed,
    ...(sorted ? { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) } : {}),
  };
}

let held: TLSSocket[] = [];

/** Opens the connections a few dozen at a time; each counts once its handshake is done. */
async function openIdle(req: OpenRequest): Promise<OpenResult> {
  const started = performance.now();
  let failed = 0;
  const sockets: TLSSocket[] = [];
  let next = 0;
  const opener = async () => {
    while (next < req.count) {
      next++;
      const socket = open(req.target);
      socket.on("error", () => {});
      const ok = await new Promise<boolean>((resolve) => {
        socket.once("secureConnect", () => resolve(true));
        socket.once("close", () => resolve(false));
      });
      if (ok) sockets.push(socket);
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: 32 }, opener));
  held = sockets;
  return { kind: "opened", open: sockets.length, failed, elapsedMs: performance.now() - started };
}

function reply(message: LoadgenReply): void {
  process.send?.(message);
}

process.on("message", (message: LoadgenRequest) => {
  const handle = async (): Promise<LoadgenReply> => {
    switch (message.kind) {
      case "run":
        return run(message);
      case "open":
        return openIdle(message);
      case "close": {
        const stillOpen = held.filter((s) => !s.destroyed).length;
        for (const socket of held) socket.destroy();
        held = [];
        return { kind: "closed", stillOpen };
      }
    }
  };
  handle().then(reply, (err: unknown) =>
    reply({ kind: "error", message: err instanceof Error ? err.message : String(err) }),
  );
});
// Never outlive the benchmark.
process.on("disconnect", () => process.exit(0));
