// PROXY protocol on listeners: behind a TCP load balancer the client's address comes from the header the balancer
// writes before the ClientHello (v1 text, v2 binary), for the access log and X-Forwarded-For alike, on HTTP/1.1 and
// HTTP/2. A peer outside trustedSources is closed at once, header or not; a trusted peer without a header too.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect as h2connect } from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { type DemoPki, ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import { lines, waitForLine } from "../helpers/log-lines.ts";

const HOST = "mtls.auth.local.com";
const SIG = Buffer.from("0d0a0d0a000d0a515549540a", "hex");

/** A v2 PROXY header for a TCP/IPv4 connection from `src`:`sport`. */
function v2Header(src: [number, number, number, number], sport: number): Buffer {
  const block = Buffer.alloc(12);
  Buffer.from(src).copy(block, 0);
  Buffer.from([10, 0, 0, 1]).copy(block, 4);
  block.writeUInt16BE(sport, 8);
  block.writeUInt16BE(443, 10);
  const tlv = Buffer.from([0x02, 0x00, HOST.length, ...Buffer.from(HOST)]); // PP2_TYPE_AUTHORITY
  const len = Buffer.alloc(2);
  len.writeUInt16BE(block.length + tlv.length);
  return Buffer.concat([SIG, Buffer.from([0x21, 0x11]), len, block, tlv]);
}

function v2Local(): Buffer {
  return Buffer.concat([SIG, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
}

interface Echoed {
  readonly status: number;
  readonly headers: Record<string, string>;
}

/** TCP to the listener, `head` written first (as a balancer does), then TLS and an HTTP/1.1 request. */
function http1Via(port: number, ca: string, head: Buffer | undefined): Promise<Echoed> {
  return new Promise((resolve, reject) => {
    const raw: Socket = netConnect(port, "127.0.0.1", () => {
      if (head) raw.write(head);
      const socket = tlsConnect({ socket: raw, servername: HOST, ca, ALPNProtocols: ["http/1.1"] });
      socket.once("secureConnect", () =>
        socket.write(`GET /echo HTTP/1.1\r\nhost: ${HOST}\r\nconnection: close\r\n\r\n`),
      );
      let text = "";
      socket.setEncoding("utf8");
      socket.on("data", (d: string) => {
        text += d;
      });
      socket.once("end", () => {
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
        if (!status) {
          reject(new Error(`closed without an answer: ${JSON.stringify(text)}`));
          return;
        }
        const body = text.slice(text.indexOf("\r\n\r\n") + 4);
        resolve({ status, headers: (JSON.parse(body) as { headers: Record<string, string> }).headers });
      });
      socket.once("error", reject);
    });
    raw.once("error", reject);
  });
}

/** The same over HTTP/2. */
function http2Via(port: number, ca: string, head: Buffer): Promise<Echoed> {
  return new Promise((resolve, reject) => {
    const raw: Socket = netConnect(port, "127.0.0.1", () => {
      raw.write(head);
      const socket: TLSSocket = tlsConnect({ socket: raw, servername: HOST, ca, ALPNProtocols: ["h2"] });
      socket.once("error", reject);
      socket.once("secureConnect", () => {
        const session = h2connect(`https://${HOST}`, { createConnection: () => socket });
        session.once("error", reject);
        const req = session.request({ ":path": "/echo" });
        let status = 0;
        let body = "";
        req.setEncoding("utf8");
        req.on("response", (h) => {
          status = Number(h[":status"]);
        });
        req.on("data", (d: string) => {
          body += d;
        });
        req.on("end", () => {
          session.close();
          resolve({ status, headers: (JSON.parse(body) as { headers: Record<string, string> }).headers });
        });
        req.on("error", reject);
      });
    });
    raw.once("error", reject);
  });
}

/** Resolves once the gateway closes a connection that wrote `head`: true when it sent nothing at all. */
function closedSilently(port: number, head: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    let got = 0;
    const raw = netConnect(port, "127.0.0.1", () => raw.write(head));
    raw.on("data", (d: Buffer) => {
      got += d.length;
    });
    raw.on("error", () => {});
    raw.on("close", () => resolve(got === 0));
  });
}

describe("PROXY protocol on a listener", () => {
  const tmp = tempDir();
  let pki: DemoPki;
  let ca: string;
  let echo: EchoUpstream;
  let gw: GatewayProcess;

  before(async () => {
    pki = await ensureDemoPki(tmp.dir);
    ca = readFileSync(pki.caCert, "utf8");
    echo = await startEchoUpstream();
    const listener = (name: string, trustedSources: string[]) => ({
      name,
      port: 0,
      clientAuth: "application" as const,
      certificates: [{ cert: "server.crt", key: "server.key" }],
      trustStores: ["devices"],
      limits: { handshakeTimeout: "2s" },
      proxyProtocol: { trustedSources },
    });
    const config: ConfigInput = {
      listeners: [
        listener("lb", ["127.0.0.1/32"]),
        listener("elsewhere", ["10.0.0.0/8", "fd00::/8"]),
        {
          ...listener("mqtt", ["127.0.0.0/8"]),
          protocol: "mqtt" as const,
          mqtt: { broker: "mqtt://127.0.0.1:1883", auth: { trustStores: ["devices"] } },
        },
      ],
      trustStores: [{ name: "devices", ca: ["ca-chain.crt"] }],
      services: [{ name: "echo", targets: [echo.url] }],
      routes: [{ name: "echo", hosts: [HOST], paths: ["/echo"], service: "echo", public: true }],
      admin: { host: "127.0.0.1", port: 0, tokenFile: "admin.token" },
      log: { access: true },
    };
    gw = await startGateway(tmp.dir, config);
  });

  after(async () => {
    const code = await gw?.stop();
    await echo?.close();
    tmp.cleanup();
    assert.equal(code, 0, "the gateway stops gracefully");
  });

  const port = (name: string) => gw.ports[name] ?? 0;

  test("v1 header, HTTP/1.1: the upstream's X-Forwarded-For and the access log have the header's address", async () => {
    const r = await http1Via(port("lb"), ca, Buffer.from("PROXY TCP4 192.0.2.7 10.0.0.1 40001 443\r\n"));
    assert.equal(r.status, 200);
    assert.equal(r.headers["x-forwarded-for"], "192.0.2.7");
    const access = await waitForLine(
      gw,
      (l) => l.msg === "request" && l.peerPort === 40001,
      "for the v1 request",
    );
    assert.equal(access.peer, "192.0.2.7");
    assert.equal(access.listener, "lb");
  });

  test("v1 TCP6 header: an IPv6 client", async () => {
    const r = await http1Via(port("lb"), ca, Buffer.from("PROXY TCP6 2001:db8::7 2001:db8::1 40002 443\r\n"));
    assert.equal(r.status, 200);
    assert.equal(r.headers["x-forwarded-for"], "2001:db8::7");
    const access = await waitForLine(
      gw,
      (l) => l.msg === "request" && l.peerPort === 40002,
      "for the TCP6 request",
    );
    assert.equal(access.peer, "2001:db8::7");
  });

  test("v2 header (with a TLV), HTTP/2: the same", async () => {
    const r = await http2Via(port("lb"), ca, v2Header([198, 51, 100, 23], 40003));
    assert.equal(r.status, 200);
    assert.equal(r.headers["x-forwarded-for"], "198.51.100.23");
    const access = await waitForLine(
      gw,
      (l) => l.msg === "request" && l.peerPort === 40003,
      "for the v2 request",
    );
    assert.equal(access.peer, "198.51.100.23");
  });

  test("v2 LOCAL (a balancer's health check): served under the connection's own address", async () => {
    const r = await http1Via(port("lb"), ca, v2Local());
    assert.equal(r.status, 200);
    assert.equal(r.headers["x-forwarded-for"], "127.0.0.1");
  });

  test("a trusted peer without a header is closed before TLS", async () => {
    await assert.rejects(http1Via(port("lb"), ca, undefined));
    // A ClientHello's first bytes, no header: closed at once, nothing sent back.
    assert.equal(await closedSilently(port("lb"), Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])), true);
    await waitForLine(
      gw,
      (l) => l.msg === "connection refused" && l.reason === "proxy_protocol_malformed" && l.listener === "lb",
      "for the missing header",
    );
  });

  test("a peer outside trustedSources is closed at once, even with a valid header", async () => {
    const started = Date.now();
    assert.equal(
      await closedSilently(port("elsewhere"), Buffer.from("PROXY TCP4 192.0.2.7 10.0.0.1 40004 443\r\n")),
      true,
    );
    assert.ok(Date.now() - started < 1_500, "not held until a timeout");
    await assert.rejects(
      http1Via(port("elsewhere"), ca, Buffer.from("PROXY TCP4 192.0.2.8 10.0.0.1 1 443\r\n")),
    );
    const refused = await waitForLine(
      gw,
      (l) => l.msg === "connection refused" && l.reason === "proxy_protocol_untrusted_source",
      "for the untrusted source",
    );
    assert.equal(refused.peer, "127.0.0.1");
    assert.equal(refused.listener, "elsewhere");
    assert.equal(
      lines(gw).some((l) => l.msg === "request" && l.peer === "192.0.2.8"),
      false,
      "the untrusted header was never believed",
    );
  });

  test("MQTT listener: the header's address is the client's (a CONNECT without a certificate, refused)", async () => {
    const clientId = Buffer.from("pp-test");
    const connect = Buffer.concat([
      Buffer.from([0x10, 10 + 2 + clientId.length, 0x00, 0x04]),
      Buffer.from("MQTT"),
      Buffer.from([0x04, 0x02, 0x00, 0x3c, 0x00, clientId.length]),
      clientId,
    ]);
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const raw: Socket = netConnect(port("mqtt"), "127.0.0.1", () => {
        raw.write(Buffer.from("PROXY TCP4 192.0.2.99 10.0.0.1 40005 8883\r\n"));
        const socket = tlsConnect({ socket: raw, servername: HOST, ca, ALPNProtocols: ["mqtt"] });
        socket.once("secureConnect", () => socket.write(connect));
        socket.once("data", (d: Buffer) => {
          socket.destroy();
          resolve(d);
        });
        socket.once("error", reject);
      });
      raw.once("error", reject);
    });
    assert.equal(answer[0], 0x20, "a CONNACK");
    assert.notEqual(answer[3], 0x00, "refused: no certificate");
    const denied = await waitForLine(
      gw,
      (l) => l.msg === "request denied" && l.listener === "mqtt",
      "for the MQTT CONNECT",
    );
    assert.equal(denied.peer, "192.0.2.99");
  });

  test("metrics: portcullis_proxy_protocol_total by listener and result", async () => {
    const token = readFileSync(join(tmp.dir, "admin.token"), "utf8").trim();
    const res = await fetch(`http://127.0.0.1:${gw.adminPort}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const text = await res.text();
    const value = (listener: string, result: string) =>
      Number(
        text
          .split("\n")
          .find(
            (l) =>
              l.startsWith("portcullis_proxy_protocol_total{") &&
              l.includes(`listener="${listener}"`) &&
              l.includes(`result="${result}"`),
          )
          ?.split(" ")
          .at(-1) ?? 0,
      );
    assert.ok(value("lb", "accepted") >= 4, text);
    assert.ok(value("lb", "malformed") >= 2, text);
    assert.ok(value("elsewhere", "untrusted_source") >= 2, text);
    assert.equal(value("elsewhere", "accepted"), 0);
  });
});
