// A share of a simulated device fleet, run as a child process (child_process.fork) so that a fleet larger
// than one process's file limit is spread over several: each device makes an mTLS connection with the
// device certificate (one client SecureContext shared by all), sends one request (HTTP/1.1 by hand, or
// HTTP/2 through node:http2), then stays connected and idle. A storm drops some devices and reconnects
// them all at once, with full handshakes or resuming the TLS session each device got last.
import { readFileSync } from "node:fs";
import { type ClientHttp2Session, connect as h2connect } from "node:http2";
import {
  type ConnectionOptions,
  connect,
  createSecureContext,
  type SecureContext,
  type TLSSocket,
} from "node:tls";
import type {
  Attempts,
  FleetReply,
  FleetRequest,
  FleetStatus,
  FleetTarget,
  OpenDevices,
  StormDevices,
} from "./fleet-protocol.ts";

interface Device {
  readonly localAddress: string;
  socket: TLSSocket | undefined;
  session: ClientHttp2Session | undefined;
  /** The last TLS session the server gave this device (offered again by a resuming storm). */
  tlsSession: Uint8Array | undefined;
}

let target: FleetTarget | undefined;
let context: SecureContext | undefined;
let requestBytes: Buffer | undefined;
const devices: Device[] = [];
let dropped = 0;

function contextFor(t: FleetTarget): SecureContext {
  if (!context) {
    context = createSecureContext({
      cert: readFileSync(t.certFile),
      key: readFileSync(t.keyFile),
      ca: readFileSync(t.caFile),
    });
  }
  return context;
}

function errorCode(err: unknown): string {
  if (err && typeof err === "object" && "code" in err && typeof err.code === "string") return err.code;
  return err instanceof Error ? err.message : String(err);
}

const HEAD_END = Buffer.from("\r\n\r\n");

/** The status of one complete HTTP/1.1 answer with a Content-Length body, undefined until it is all in. */
function completeStatus(buf: Buffer): number | undefined {
  const headEnd = buf.indexOf(HEAD_END);
  if (headEnd < 0) return undefined;
  const head = buf.subarray(0, headEnd).toString("latin1");
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (length && buf.length < headEnd + 4 + Number(length[1])) return undefined;
  return Number(head.slice(9, 12));
}

interface Outcome {
  /** "200", another status, "tls:<code>", "timeout" or "closed". */
  readonly result: string;
  readonly resumed: boolean;
  readonly ms: number;
}

/** Connects the device, sends one request and resolves with the answer; on success it stays connected. */
function connectDevice(device: Device, t: FleetTarget, resume: boolean, timeoutMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    let settled = false;
    let resumed = false;
    // tls.connect hands localAddress on to net (its types do not list it).
    const options: ConnectionOptions & { localAddress: string } = {
      host: "127.0.0.1",
      port: t.port,
      localAddress: device.localAddress,
      servername: t.servername,
      secureContext: contextFor(t),
      ALPNProtocols: [t.protocol],
      // The chain is still verified (rejectUnauthorized); the name check is skipped: it parses the whole
      // peer certificate into a JS object per connection, CPU the simulated devices share with the gateway.
      checkServerIdentity: () => undefined,
      ...(resume && device.tlsSession ? { session: Buffer.from(device.tlsSession) } : {}),
    };
    const socket = connect(options);
    device.socket = socket;
    const timer = setTimeout(() => finish("timeout"), timeoutMs);
    const finish = (result: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (result !== "200") {
        device.session?.destroy();
        socket.destroy();
        device.socket = undefined;
        device.session = undefined;
      }
      resolve({ result, resumed, ms: performance.now() - started });
    };
    socket.on("session", (session: Buffer) => {
      device.tlsSession = session;
    });
    socket.on("error", (err) => finish(`tls:${errorCode(err)}`));
    socket.once("close", () => {
      if (!settled) finish("closed");
      else if (device.socket === socket) {
        dropped++;
        device.socket = undefined;
        device.session = undefined;
      }
    });
    socket.once("secureConnect", () => {
      resumed = socket.isSessionReused();
      if (t.protocol === "h2") {
        const session = h2connect(`https://${t.servername}:${t.port}`, { createConnection: () => socket });
        device.session = session;
        session.on("error", (err) => finish(`h2:${errorCode(err)}`));
        if (t.request === false) {
          session.once("remoteSettings", () => finish("200"));
          return;
        }
        const req = session.request({ ":path": t.path, ":authority": t.servername });
        req.on("response", (headers) => {
          const status = String(headers[":status"]);
          req.resume();
          req.once("end", () => finish(status));
        });
        req.on("error", (err) => finish(`h2:${errorCode(err)}`));
        req.end();
        return;
      }
      if (t.request === false) {
        finish("200");
        return;
      }
      let buf: Buffer = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        const status = completeStatus(buf);
        if (status === undefined) return;
        socket.off("data", onData);
        // Keep reading (and discarding): an idle device still sees the server's close.
        socket.resume();
        finish(String(status));
      };
      socket.on("data", onData);
      requestBytes ??= Buffer.from(
        `GET ${t.path} HTTP/1.1\r\nHost: ${t.servername}\r\nUser-Agent: portcullis-fleet\r\n\r\n`,
      );
      socket.write(requestBytes);
    });
  });
}

/** Runs every device through `connectDevice`, at most `concurrency` at a time. */
async function attempt(
  batch: readonly Device[],
  t: FleetTarget,
  resume: boolean,
  concurrency: number,
  timeoutMs: number,
): Promise<Attempts> {
  const started = performance.now();
  const failures: Record<string, number> = {};
  const times: number[] = new Array(batch.length).fill(0);
  let ok = 0;
  let resumed = 0;
  let next = 0;
  const worker = async () => {
    while (next < batch.length) {
      const i = next++;
      const device = batch[i];
      if (!device) continue;
      const outcome = await connectDevice(device, t, resume, timeoutMs);
      times[i] = Math.round(outcome.ms * 10) / 10;
      if (outcome.resumed) resumed++;
      if (outcome.result === "200") ok++;
      else failures[outcome.result] = (failures[outcome.result] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, batch.length) }, worker));
  return { ok, failed: batch.length - ok, failures, resumed, elapsedMs: performance.now() - started, times };
}

async function open(req: OpenDevices): Promise<Attempts> {
  target = req.target;
  const batch: Device[] = [];
  for (let i = 0; i < req.count; i++) {
    const localAddress = req.localAddresses[(devices.length + i) % req.localAddresses.length] ?? "127.0.0.1";
    batch.push({ localAddress, socket: undefined, session: undefined, tlsSession: undefined });
  }
  devices.push(...batch);
  return attempt(batch, req.target, false, req.concurrency, req.timeoutMs);
}

/** Drops the devices' connections and waits until every one is closed. */
async function disconnect(batch: readonly Device[]): Promise<void> {
  await Promise.all(
    batch.map(
      (device) =>
        new Promise<void>((resolve) => {
          const socket = device.socket;
          device.socket = undefined;
          const session = device.session;
          device.session = undefined;
          if (!socket || socket.destroyed) {
            resolve();
            return;
          }
          socket.once("close", () => resolve());
          if (session) session.destroy();
          socket.destroy();
        }),
    ),
  );
}

async function storm(req: StormDevices): Promise<Attempts> {
  if (!target) throw new Error("storm before open");
  const batch = devices.slice(0, req.count);
  await disconnect(batch);
  return attempt(batch, target, req.resume, batch.length, req.timeoutMs);
}

function rssKiB(): number {
  return Math.round(process.memoryUsage.rss() / 1024);
}

function status(): FleetStatus {
  const connected = devices.filter((d) => d.socket && !d.socket.destroyed).length;
  return { kind: "status", connected, dropped, rssKiB: rssKiB() };
}

function reply(message: FleetReply): void {
  process.send?.(message);
}

process.on("message", (message: FleetRequest) => {
  const handle = async (): Promise<FleetReply> => {
    switch (message.kind) {
      case "open":
        return { kind: "opened", ...(await open(message)) };
      case "storm":
        return { kind: "stormed", ...(await storm(message)) };
      case "status":
        return status();
      case "close":
        await disconnect(devices);
        devices.length = 0;
        return { kind: "closed" };
    }
  };
  handle().then(reply, (err: unknown) =>
    reply({ kind: "error", message: err instanceof Error ? err.message : String(err) }),
  );
});
// Never outlive the benchmark.
process.on("disconnect", () => process.exit(0));
