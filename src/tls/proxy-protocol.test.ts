import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createSecureServer, connect as h2connect } from "node:http2";
import { type AddressInfo, connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import { after, before, describe, test } from "node:test";
import { createServer, type Server, type TLSSocket, connect as tlsConnect } from "node:tls";
import type { CompiledListener } from "../config/compiled.ts";
import { configSchema } from "../config/schema.ts";
import { TrustedProxies } from "../proxy/trusted-proxies.ts";
import {
  acceptProxyProtocol,
  MAX_HEADER_BYTES,
  type ParseResult,
  type ProxyHeader,
  type ProxyProtocolResult,
  parseProxyHeader,
} from "./proxy-protocol.ts";

const SIG = Buffer.from("0d0a0d0a000d0a515549540a", "hex");

/** A v2 header: version/command byte, family/transport byte, then the address block and TLVs. */
function v2(command: number, familyTransport: number, block: Buffer, tlvs: Buffer = Buffer.alloc(0)): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(block.length + tlvs.length);
  return Buffer.concat([SIG, Buffer.from([0x20 | command, familyTransport]), len, block, tlvs]);
}

function ipv4Block(src: number[], dst: number[], sport: number, dport: number): Buffer {
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sport, 0);
  ports.writeUInt16BE(dport, 2);
  return Buffer.concat([Buffer.from(src), Buffer.from(dst), ports]);
}

function ipv6Block(src: string, dst: string, sport: number, dport: number): Buffer {
  const bytes = (hex: string) => Buffer.from(hex.replaceAll(":", ""), "hex");
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(sport, 0);
  ports.writeUInt16BE(dport, 2);
  return Buffer.concat([bytes(src), bytes(dst), ports]);
}

function tlv(type: number, value: Buffer | string): Buffer {
  const v = typeof value === "string" ? Buffer.from(value) : value;
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(v.length, 1);
  return Buffer.concat([head, v]);
}

function header(result: ParseResult): ProxyHeader {
  assert.equal(result.kind, "header", JSON.stringify(result));
  return (result as { header: ProxyHeader }).header;
}

function invalidReason(result: ParseResult): string {
  assert.equal(result.kind, "invalid", JSON.stringify(result));
  return (result as { reason: string }).reason;
}

const CLIENT_HELLO_START = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);

describe("PROXY protocol v1", () => {
  test("TCP4: source and destination, and the header's length (what follows is TLS)", () => {
    const line = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n";
    const h = header(parseProxyHeader(Buffer.concat([Buffer.from(line), CLIENT_HELLO_START])));
    assert.equal(h.version, 1);
    assert.equal(h.length, line.length);
    assert.equal(h.command, "proxy");
    if (h.command !== "proxy") return;
    assert.deepEqual(h.source, { address: "192.0.2.7", port: 56324, family: "IPv4" });
    assert.deepEqual(h.destination, { address: "198.51.100.1", port: 443, family: "IPv4" });
  });

  test("TCP6: addresses in Node's canonical text", () => {
    const h = header(parseProxyHeader(Buffer.from("PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 65535 0\r\n")));
    assert.equal(h.command, "proxy");
    if (h.command !== "proxy") return;
    assert.deepEqual(h.source, { address: "2001:db8::1", port: 65535, family: "IPv6" });
    assert.deepEqual(h.destination, { address: "::1", port: 0, family: "IPv6" });
    const mapped = header(parseProxyHeader(Buffer.from("PROXY TCP6 ::ffff:192.0.2.7 ::1 1 2\r\n")));
    assert.equal(mapped.command === "proxy" && mapped.source.address, "::ffff:192.0.2.7");
  });

  test("UNKNOWN: the connection's own address stands, whatever follows on the line", () => {
    assert.equal(header(parseProxyHeader(Buffer.from("PROXY UNKNOWN\r\n"))).command, "local");
    const h = header(parseProxyHeader(Buffer.from("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n")));
    assert.equal(h.command, "local");
    assert.equal(h.length, "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n".length);
  });

  test("malformed lines are refused", () => {
    const bad = [
      "PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n", // a port missing
      "PROXY TCP4 192.0.2.7 198.51.100.1 56324 443 9\r\n",
      "PROXY TCP4 2001:db8::1 198.51.100.1 1 2\r\n", // wrong family
      "PROXY TCP6 192.0.2.7 ::1 1 2\r\n",
      "PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",
      "PROXY TCP4 192.0.2.7 198.51.100.1 0443 443\r\n", // leading zero
      "PROXY TCP4 192.0.2.7 198.51.100.1 -1 443\r\n",
      "PROXY TCP4  192.0.2.7 198.51.100.1 1 443\r\n", // two spaces
      "PROXY TCP4 192.0.2.7 198.51.100.1 1 443\rX",
      "PROXY UDP4 192.0.2.7 198.51.100.1 1 443\r\n",
      "PROXY TCP4 192.0.2.256 198.51.100.1 1 443\r\n",
      "PROXY TCP4 192.0.2.7\t198.51.100.1 1 443\r\n",
      "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
    ];
    for (const line of bad) invalidReason(parseProxyHeader(Buffer.from(line, "latin1")));
  });

  test("a line without CRLF within 107 bytes is refused; a shorter one is only incomplete", () => {
    const long = `PROXY TCP6 ${"a".repeat(120)}`;
    assert.match(invalidReason(parseProxyHeader(Buffer.from(long))), /107/);
    assert.equal(parseProxyHeader(Buffer.from("PROXY TCP4 192.0.2.7 198.5")).kind, "incomplete");
    // The longest valid line (TCP6, full-length addresses) fits.
    const max =
      "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert.equal(max.length, 104);
    assert.equal(header(parseProxyHeader(Buffer.from(max))).command, "proxy");
  });
});

describe("PROXY protocol v2", () => {
  test("PROXY over IPv4 with TLVs (ALPN, authority): the address, the TLVs, and the length", () => {
    const tlvs = Buffer.concat([tlv(0x01, "h2"), tlv(0x02, "device.example")]);
    const data = v2(1, 0x11, ipv4Block([192, 0, 2, 7], [10, 0, 0, 1], 40000, 8443), tlvs);
    const h = header(parseProxyHeader(Buffer.concat([data, CLIENT_HELLO_START])));
    assert.equal(h.version, 2);
    assert.equal(h.length, data.length);
    assert.equal(h.command, "proxy");
    if (h.command !== "proxy") return;
    assert.deepEqual(h.source, { address: "192.0.2.7", port: 40000, family: "IPv4" });
    assert.deepEqual(h.destination, { address: "10.0.0.1", port: 8443, family: "IPv4" });
    assert.deepEqual(
      h.tlvs.map((t) => [t.type, t.value.toString()]),
      [
        [1, "h2"],
        [2, "device.example"],
      ],
    );
  });

  test("PROXY over IPv6", () => {
    const block = ipv6Block(
      "20010db8000000000000000000000001",
      "00000000000000000000ffffc0000207",
      1234,
      443,
    );
    const h = header(parseProxyHeader(v2(1, 0x21, block)));
    assert.equal(h.command, "proxy");
    if (h.command !== "proxy") return;
    assert.deepEqual(h.source, { address: "2001:db8::1", port: 1234, family: "IPv6" });
    assert.deepEqual(h.destination, { address: "::ffff:192.0.2.7", port: 443, family: "IPv6" });
  });

  test("LOCAL (a health check): the connection's own address, address block or not", () => {
    assert.equal(header(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0)))).command, "local");
    const withBlock = v2(0, 0x11, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), tlv(0x04, Buffer.alloc(4)));
    const h = header(parseProxyHeader(withBlock));
    assert.equal(h.command, "local");
    assert.equal(h.tlvs.length, 1);
    // PROXY of an unspecified family: nothing to take either.
    assert.equal(header(parseProxyHeader(v2(1, 0x00, Buffer.alloc(0)))).command, "local");
  });

  test("malformed headers are refused", () => {
    const ok = ipv4Block([192, 0, 2, 7], [10, 0, 0, 1], 1, 2);
    const versionOne = v2(1, 0x11, ok);
    versionOne[12] = 0x11;
    invalidReason(parseProxyHeader(versionOne));
    invalidReason(parseProxyHeader(v2(2, 0x11, ok))); // unknown command
    invalidReason(parseProxyHeader(v2(1, 0x41, ok))); // unknown family
    invalidReason(parseProxyHeader(v2(1, 0x13, ok))); // unknown transport
    invalidReason(parseProxyHeader(v2(1, 0x12, ok))); // UDP
    invalidReason(parseProxyHeader(v2(1, 0x21, ok))); // an IPv6 family with an IPv4-sized block
    invalidReason(parseProxyHeader(v2(1, 0x11, ok, Buffer.from([0x01, 0x00, 0x05, 0x68])))); // TLV past the end
    invalidReason(parseProxyHeader(v2(1, 0x11, ok, Buffer.from([0x01, 0x00])))); // a TLV cut short
  });

  test("a header longer than the cap is refused from its first 16 bytes", () => {
    const big = v2(1, 0x11, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), tlv(0xe0, Buffer.alloc(600)));
    assert.match(invalidReason(parseProxyHeader(big.subarray(0, 16))), /more than 536/);
    const fits = v2(
      1,
      0x11,
      ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2),
      tlv(0xe0, Buffer.alloc(MAX_HEADER_BYTES - 31)),
    );
    assert.equal(fits.length, MAX_HEADER_BYTES);
    assert.equal(header(parseProxyHeader(fits)).command, "proxy");
    assert.equal(parseProxyHeader(fits, 100).kind, "invalid");
  });
});

describe("parsing byte by byte", () => {
  test("incomplete until the last byte of every kind of header, then the same header as at once", () => {
    const headers = [
      Buffer.from("PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n"),
      Buffer.from("PROXY UNKNOWN\r\n"),
      v2(1, 0x11, ipv4Block([192, 0, 2, 7], [10, 0, 0, 1], 1, 2), tlv(1, "h2")),
      v2(1, 0x21, ipv6Block("20010db8000000000000000000000001", "0".repeat(32), 1, 2)),
      v2(0, 0x00, Buffer.alloc(0)),
    ];
    for (const data of headers) {
      for (let n = 0; n < data.length; n++) {
        assert.equal(parseProxyHeader(data.subarray(0, n)).kind, "incomplete", `${n} of ${data.length}`);
      }
      assert.deepEqual(parseProxyHeader(data), parseProxyHeader(Buffer.concat([data, CLIENT_HELLO_START])));
    }
  });

  test("anything else is refused at its first byte: a ClientHello, HTTP, a near-signature", () => {
    assert.match(invalidReason(parseProxyHeader(CLIENT_HELLO_START.subarray(0, 1))), /no PROXY/);
    invalidReason(parseProxyHeader(Buffer.from("GET / HTTP/1.1\r\n")));
    invalidReason(parseProxyHeader(Buffer.from("PROXZ")));
    invalidReason(parseProxyHeader(Buffer.from("proxy TCP4")));
    invalidReason(
      parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x55])),
    );
  });
});

// --- On a real TLS server: the address the TLSSocket (and an HTTP/2 session's socket) reports ----------------

describe("acceptProxyProtocol on TLS and HTTP/2 servers", () => {
  let dir: string;
  let key: string;
  let cert: string;
  const reports: [ProxyProtocolResult, string | undefined][] = [];
  let trusted = "127.0.0.1/32";
  const listener = () =>
    ({
      name: "test",
      limits: { handshakeTimeout: 1_000 },
      proxyProtocol: { trustedSources: new TrustedProxies([trusted]) },
    }) as unknown as CompiledListener;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "portcullis-pp-"));
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-days",
        "1",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    key = readFileSync(join(dir, "key.pem"), "utf8");
    cert = readFileSync(join(dir, "cert.pem"), "utf8");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function listen(server: Server): Promise<number> {
    acceptProxyProtocol(server, listener, (_l, result, details) => reports.push([result, details.client]));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as AddressInfo).port;
  }

  /** A TCP connection that writes `head` first, then speaks TLS over it. */
  function viaBalancer(port: number, head: Buffer, alpn?: string[]): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const raw: Socket = netConnect(port, "127.0.0.1", () => {
        raw.write(head);
        const socket = tlsConnect({ socket: raw, rejectUnauthorized: false, ALPNProtocols: alpn });
        socket.once("secureConnect", () => resolve(socket));
        socket.once("error", reject);
      });
      raw.once("error", reject);
    });
  }

  /** Resolves when the server closes the connection, with whatever it sent (nothing, for a refusal). */
  function closedBy(port: number, head: Buffer): Promise<number> {
    return new Promise((resolve) => {
      let got = 0;
      const raw = netConnect(port, "127.0.0.1", () => raw.write(head));
      raw.on("data", (d: Buffer) => {
        got += d.length;
      });
      raw.on("error", () => {});
      raw.on("close", () => resolve(got));
    });
  }

  test("TLS: the TLSSocket reports the header's source; LOCAL keeps the connection's own", async () => {
    const server = createServer({ key, cert });
    const seen: string[] = [];
    server.on("secureConnection", (s: TLSSocket) => {
      seen.push(`${s.remoteAddress}:${s.remotePort}:${s.remoteFamily}`);
      s.end("hi");
    });
    const port = await listen(server);
    try {
      // The server's secureConnection comes after the client's (TLS 1.3): its "hi" says it has run.
      const greeted = async (socket: Promise<TLSSocket>) => {
        const s = await socket;
        await new Promise((r) => s.once("data", r));
        return s;
      };
      const a = await greeted(viaBalancer(port, Buffer.from("PROXY TCP4 192.0.2.7 10.0.0.1 40000 443\r\n")));
      a.destroy();
      const block = ipv6Block("20010db8000000000000000000000042", "0".repeat(32), 5555, 443);
      const b = await greeted(viaBalancer(port, v2(1, 0x21, block, tlv(1, "h2"))));
      b.destroy();
      const c = await greeted(viaBalancer(port, v2(0, 0x00, Buffer.alloc(0))));
      const local = c.localPort;
      c.destroy();
      assert.deepEqual(seen, ["192.0.2.7:40000:IPv4", "2001:db8::42:5555:IPv6", `127.0.0.1:${local}:IPv4`]);
    } finally {
      server.close();
    }
  });

  test("HTTP/2: the session's socket reports the header's source", async () => {
    const server = createSecureServer({ key, cert, allowHTTP1: true });
    server.on("stream", (stream) => {
      const socket = stream.session?.socket;
      stream.respond({ ":status": 200 });
      stream.end(`${socket?.remoteAddress} ${socket?.remotePort}`);
    });
    const port = await listen(server as unknown as Server);
    try {
      const socket = await viaBalancer(port, Buffer.from("PROXY TCP4 203.0.113.9 10.0.0.1 1234 443\r\n"), [
        "h2",
      ]);
      const session = h2connect(`https://127.0.0.1:${port}`, { createConnection: () => socket });
      const body = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ":path": "/" });
        let text = "";
        req.setEncoding("utf8");
        req.on("data", (d: string) => {
          text += d;
        });
        req.on("end", () => resolve(text));
        req.on("error", reject);
      });
      session.close();
      assert.equal(body, "203.0.113.9 1234");
    } finally {
      server.close();
    }
  });

  test("refused: an untrusted source, a trusted one without a header, a malformed or oversized header", async () => {
    const server = createServer({ key, cert });
    server.on("secureConnection", (s: TLSSocket) => s.end("hi"));
    const port = await listen(server);
    try {
      reports.length = 0;
      // A ClientHello's first bytes straight away: refused without waiting for the timeout.
      assert.equal(await closedBy(port, CLIENT_HELLO_START), 0);
      assert.equal(await closedBy(port, Buffer.from("PROXY TCP4 1.2.3.4\r\n")), 0);
      assert.equal(
        await closedBy(
          port,
          v2(1, 0x11, ipv4Block([1, 2, 3, 4], [5, 6, 7, 8], 1, 2), tlv(0xe0, Buffer.alloc(600))),
        ),
        0,
      );
      // Half a header, then nothing: closed at the listener's handshakeTimeout.
      const started = Date.now();
      assert.equal(await closedBy(port, Buffer.from("PROXY TCP4 ")), 0);
      assert.ok(Date.now() - started >= 900, "held until the timeout");
      trusted = "10.0.0.0/8";
      assert.equal(await closedBy(port, Buffer.from("PROXY TCP4 192.0.2.7 10.0.0.1 40000 443\r\n")), 0);
      assert.deepEqual(
        reports.map(([r]) => r),
        ["malformed", "malformed", "malformed", "malformed", "untrusted_source"],
      );
    } finally {
      trusted = "127.0.0.1/32";
      server.close();
    }
  });

  test("a header split across many small writes, with the ClientHello in the last one", async () => {
    const server = createServer({ key, cert });
    let seen = "";
    server.on("secureConnection", (s: TLSSocket) => {
      seen = `${s.remoteAddress}`;
      s.end("hi");
    });
    const port = await listen(server);
    try {
      const head = v2(1, 0x11, ipv4Block([198, 51, 100, 77], [10, 0, 0, 1], 9, 443), tlv(2, "example"));
      const socket = await new Promise<TLSSocket>((resolve, reject) => {
        const raw = netConnect(port, "127.0.0.1", async () => {
          raw.setNoDelay(true);
          for (let i = 0; i < head.length - 3; i++) {
            raw.write(head.subarray(i, i + 1));
            if (i % 7 === 0) await new Promise((r) => setTimeout(r, 2));
          }
          // The header's last bytes go out in one segment with the TLS layer's first bytes.
          const tail = head.subarray(head.length - 3);
          let first = true;
          const wire = new Duplex({
            read() {},
            write(chunk: Buffer, _encoding, callback) {
              raw.write(first ? Buffer.concat([tail, chunk]) : chunk, callback);
              first = false;
            },
          });
          raw.on("data", (d: Buffer) => wire.push(d));
          raw.on("end", () => wire.push(null));
          const s = tlsConnect({ socket: wire, rejectUnauthorized: false });
          s.once("secureConnect", () => resolve(s));
          s.once("error", reject);
        });
        raw.once("error", reject);
      });
      socket.destroy();
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(seen, "198.51.100.77");
    } finally {
      server.close();
    }
  });
});

describe("the listener key proxyProtocol", () => {
  const base = {
    name: "fleet",
    port: 0,
    clientAuth: "application",
    certificates: [{ cert: "server.crt", key: "server.key" }],
  };
  const parse = (extra: object) => configSchema.shape.listeners.element.safeParse({ ...base, ...extra });

  test("absent: off; a list of addresses and CIDR ranges, IPv4 and IPv6", () => {
    const off = parse({});
    assert.ok(off.success);
    assert.equal(off.data.proxyProtocol, undefined);
    const on = parse({ proxyProtocol: { trustedSources: ["10.0.0.0/8", "192.0.2.1", "fd00::/8"] } });
    assert.ok(on.success);
    assert.deepEqual(on.data.proxyProtocol?.trustedSources, ["10.0.0.0/8", "192.0.2.1", "fd00::/8"]);
  });

  test("refused: an empty list, a name, a bad prefix, an unknown key", () => {
    for (const proxyProtocol of [
      { trustedSources: [] },
      { trustedSources: ["lb.example.com"] },
      { trustedSources: ["10.0.0.0/33"] },
      { trustedSources: ["10.0.0.0/8"], version: 2 },
      {},
    ]) {
      assert.equal(parse({ proxyProtocol }).success, false, JSON.stringify(proxyProtocol));
    }
  });
});
