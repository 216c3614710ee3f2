// Hostile clients cannot starve devices (issue 8, findings 1–3), against a real gateway process:
// a connection's limits follow its standing after every request, a flood of idle certificate-less
// connections evicts its own oldest rather than shutting out newcomers, one certificate holds a few
// connections at most, and a connection refused again and again is closed.
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import http2 from "node:http2";
import { after, before, describe, test } from "node:test";
import { connect, type TLSSocket } from "node:tls";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";
import {
  AdminApi,
  HOST,
  type IssuedDevice,
  type RegistryPki,
  registryPki,
  waitFor,
  within,
} from "../helpers/registry.ts";
import { parseHttp } from "../helpers/tls-http.ts";

/** Short enough to wait for, far below the 120 s keep-alive (idleTimeout) it must not fall back to. */
const SHORT_IDLE = "1s";

/** A raw HTTP/1.1 keep-alive connection: requests one at a time, and tells when the server closed it. */
class RawConnection {
  readonly socket: TLSSocket;
  readonly ready: Promise<boolean>;
  readonly closed: Promise<number>;
  #buffer = Buffer.alloc(0);
  #waiting: ((answer: { status: number; body: string } | undefined) => void) | undefined;

  constructor(port: number, credentials?: { cert: string; key: string }) {
    this.socket = connect({
      host: "127.0.0.1",
      port,
      servername: HOST,
      rejectUnauthorized: false,
      ALPNProtocols: ["http/1.1"],
      ...credentials,
    });
    this.socket.on("error", () => {});
    this.ready = new Promise((resolve) => {
      this.socket.once("secureConnect", () => resolve(true));
      this.socket.once("close", () => resolve(false));
    });
    this.closed = new Promise((resolve) =>
      this.socket.once("close", () => {
        this.#waiting?.(undefined);
        resolve(performance.now());
      }),
    );
    this.socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      const end = this.#buffer.indexOf("\r\n\r\n");
      if (end < 0 || !this.#waiting) return;
      const length = Number(
        /content-length: *(\d+)/i.exec(this.#buffer.subarray(0, end).toString())?.[1] ?? 0,
      );
      if (this.#buffer.length < end + 4 + length) return;
      const answer = parseHttp(this.#buffer.subarray(0, end + 4 + length));
      this.#buffer = this.#buffer.subarray(end + 4 + length);
      const resolve = this.#waiting;
      this.#waiting = undefined;
      resolve(answer ? { status: answer.status, body: answer.body } : undefined);
    });
  }

  /** One keep-alive request; undefined when the connection closed without an answer. */
  get(path: string): Promise<{ status: number; body: string } | undefined> {
    return new Promise((resolve) => {
      this.#waiting = resolve;
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    });
  }

  get open(): boolean {
    return !this.socket.destroyed && this.socket.readyState === "open";
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const credentialsOf = (device: IssuedDevice) => ({
  cert: readFileSync(device.certFile, "utf8"),
  key: readFileSync(device.keyFile, "utf8"),
});

describe("hostile clients cannot starve devices", () => {
  const tmp = tempDir();
  let pki: RegistryPki;
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let admin: AdminApi;
  let registered: IssuedDevice;
  let suspended: IssuedDevice;
  let unregistered: IssuedDevice;
  let expired: IssuedDevice;
  const port = (name: string) => {
    const p = gw.ports[name];
    assert.ok(p, `listener ${name} is bound`);
    return p;
  };
  const opened: RawConnection[] = [];
  const open = (listener: string, device?: IssuedDevice) => {
    const c = new RawConnection(port(listener), device && credentialsOf(device));
    opened.push(c);
    return c;
  };

  before(async () => {
    pki = await registryPki(tmp.dir);
    echo = await startEchoUpstream();
    const listener = (name: string, limits: Record<string, unknown>) => ({
      name,
      port: 0,
      clientAuth: "application" as const,
      certificates: [{ cert: "server.crt", key: "server.key" }],
      limits,
    });
    const config: ConfigInput = {
      listeners: [
        // Idle limits: the short idle time must hold after any answer.
        listener("idle", { unauthenticatedIdleTimeout: SHORT_IDLE }),
        // Slot limits: a long idle time, so that only eviction can free a slot.
        listener("flood", { unauthenticatedIdleTimeout: "60s" }),
        listener("capped", { maxConnections: 30, unauthenticatedIdleTimeout: "60s" }),
        listener("refusals", { maxRefusedRequests: 5, unauthenticatedIdleTimeout: "60s" }),
      ],
      trustStores: [{ name: "devices", ca: ["ca-chain.crt"] }],
      services: [{ name: "echo", targets: [echo.url] }],
      routes: [
        {
          name: "echo",
          hosts: [HOST],
          paths: ["/echo"],
          service: "echo",
          auth: { trustStores: ["devices"], registry: "required" },
        },
        { name: "public", hosts: [HOST], paths: ["/public/echo"], service: "echo", public: true },
      ],
      admin: { host: "127.0.0.1", port: 0, tokenFile: "admin.token" },
      store: { url: "sqlite:portcullis.db" },
      log: { level: "info", denials: { interval: "2s", perInterval: 5 } },
    };
    gw = await startGateway(tmp.dir, config);
    admin = new AdminApi(gw.adminPort, pki.token);
    registered = await pki.issue("hc-registered");
    suspended = await pki.issue("hc-suspended");
    unregistered = pki.existing("unregistered-device");
    expired = pki.existing("expired-device");
    await admin.register("hc-registered", registered);
    await admin.register("hc-suspended", suspended, { status: "suspended" });
  });

  after(async () => {
    for (const c of opened) c.destroy();
    const code = await gw?.stop();
    await echo?.close();
    tmp.cleanup();
    assert.equal(code, 0, "the gateway stops gracefully");
  });

  const limitHits = async (listener: string, limit: string, action: string): Promise<number> => {
    const text = (await admin.call("GET", "/metrics")).text;
    const line = text
      .split("\n")
      .find(
        (l) =>
          l.startsWith("portcullis_connection_limit_hits_total{") &&
          l.includes(`listener="${listener}"`) &&
          l.includes(`limit="${limit}"`) &&
          l.includes(`action="${action}"`),
      );
    return line ? Number(line.split(" ").at(-1)) : 0;
  };

  describe("finding 1: the unauthenticated idle timeout holds after a request", () => {
    for (const [what, device, path, status] of [
      ["no certificate, public route", undefined, "/public/echo", 200],
      ["no certificate, device route", undefined, "/echo", 401],
      ["expired certificate", "expired", "/echo", 401],
      ["suspended device", "suspended", "/echo", 403],
      ["unregistered device", "unregistered", "/echo", 401],
    ] as const) {
      test(`HTTP/1.1, ${what}: answered ${status}, then closed after the short idle time`, async () => {
        const devices = { expired, suspended, unregistered };
        const c = open("idle", device && devices[device]);
        assert.equal(await c.ready, true);
        const answer = await c.get(path);
        assert.equal(answer?.status, status, answer?.body);
        const answeredAt = performance.now();
        const closedAt = await within(c.closed, 10_000, "the connection is closed");
        assert.ok(closedAt - answeredAt >= 500, "not before the idle time");
      });
    }

    test("HTTP/2, no certificate and a suspended device: closed after the short idle time; a device is not", async () => {
      const session = (device?: IssuedDevice) =>
        http2.connect(`https://127.0.0.1:${port("idle")}`, {
          servername: HOST,
          rejectUnauthorized: false,
          ...(device && credentialsOf(device)),
        });
      const get = (s: http2.ClientHttp2Session, path: string) =>
        new Promise<number>((resolve, reject) => {
          const stream = s.request({ ":path": path, ":authority": HOST });
          stream.on("response", (h) => resolve(Number(h[":status"])));
          stream.on("error", reject);
          stream.resume();
        });
      const anonymous = session();
      const bad = session(suspended);
      const good = session(registered);
      try {
        const closes = [anonymous, bad].map((s) => new Promise<void>((r) => s.once("close", () => r())));
        let goodClosed = false;
        good.once("close", () => {
          goodClosed = true;
        });
        assert.equal(await get(anonymous, "/public/echo"), 200);
        assert.equal(await get(bad, "/echo"), 403);
        assert.equal(await get(good, "/echo"), 200);
        await within(Promise.all(closes), 10_000, "both unauthenticated sessions are closed");
        assert.equal(goodClosed, false, "the registered device's session stays open");
        assert.equal(await get(good, "/echo"), 200);
      } finally {
        for (const s of [anonymous, bad, good]) s.destroy();
      }
    });

    test("an allowed request restores the standing: a registered device's connection stays open", async () => {
      const c = open("idle", registered);
      assert.equal(await c.ready, true);
      assert.equal((await c.get("/echo"))?.status, 200);
      const closed = await Promise.race([c.closed, new Promise((r) => setTimeout(() => r("open"), 2_500))]);
      assert.equal(closed, "open", "an authenticated connection keeps the long idle timeout");
      assert.equal((await c.get("/echo"))?.status, 200);
      c.destroy();
    });
  });

  describe("finding 2: a flood of idle certificate-less connections cannot starve the public route", () => {
    test("300 idle connections after one public request each: newcomers still get 200 and 401 explanations", async () => {
      const flood: RawConnection[] = [];
      for (let i = 0; i < 300; i += 25) {
        const batch = Array.from({ length: 25 }, () => open("flood"));
        await Promise.all(
          batch.map(async (c) => {
            if (await c.ready) await c.get("/public/echo");
          }),
        );
        flood.push(...batch);
      }
      // The public route answers a new certificate-less client, and an expired device learns why.
      const newcomer = open("flood");
      assert.equal(await newcomer.ready, true);
      assert.equal((await newcomer.get("/public/echo"))?.status, 200);
      const late = open("flood", expired);
      assert.equal(await late.ready, true);
      const explained = await late.get("/echo");
      assert.equal(explained?.status, 401);
      assert.equal(
        (JSON.parse(explained?.body ?? "{}") as { reason?: string }).reason,
        "certificate_expired",
      );
      // The oldest idle connections made room, and the metric counts them.
      await waitFor(() => flood.filter((c) => c.open).length <= 256, 5_000, "at most 256 stay open");
      assert.ok(!flood[0]?.open, "the oldest idle connection was evicted");
      assert.ok((await limitHits("flood", "maxUnauthenticatedConnections", "evicted")) >= 44);
      // A device is not counted in the unauthenticated pool at all.
      const device = open("flood", registered);
      assert.equal((await device.get("/echo"))?.status, 200);
      for (const c of flood) c.destroy();
    });
  });

  describe("finding 3: one certificate cannot take every slot", () => {
    test("a suspended device's extra connections are closed: at most 8 stay open", async () => {
      const conns: RawConnection[] = [];
      for (let i = 0; i < 12; i++) {
        const c = open("flood", suspended);
        assert.equal(await c.ready, true);
        assert.equal((await c.get("/echo"))?.status, 403);
        conns.push(c);
      }
      await waitFor(() => conns.filter((c) => c.open).length <= 8, 5_000, "at most 8 stay open");
      assert.ok(
        conns.slice(0, 4).every((c) => !c.open),
        "the oldest idle ones were evicted",
      );
      assert.ok((await limitHits("flood", "maxConnectionsPerIdentity", "evicted")) >= 4);
      for (const c of conns) c.destroy();
    });

    test("with maxConnections: 30, an unregistered certificate cannot fill the listener: a device is served", async () => {
      const conns = Array.from({ length: 40 }, () => open("capped", unregistered));
      await Promise.all(conns.map((c) => c.ready));
      await waitFor(() => conns.filter((c) => c.open).length <= 8, 5_000, "at most 8 stay open");
      const device = open("capped", registered);
      assert.equal(await device.ready, true);
      assert.equal((await device.get("/echo"))?.status, 200);
      for (const c of conns) c.destroy();
    });
  });

  describe("refusals are logged sampled per source, with counts", () => {
    test("30 denials from one address write at most 5 lines; the next interval's line says how many were held back", async () => {
      const denied = (from: number) =>
        gw
          .output()
          .slice(from)
          .split("\n")
          .filter((l) => l.includes('"msg":"request denied"') && l.includes('"listener":"refusals"'));
      await new Promise((r) => setTimeout(r, 2_100)); // a fresh interval for this address
      const from = gw.output().length;
      for (let i = 0; i < 6; i++) {
        const c = open("refusals");
        assert.equal(await c.ready, true);
        for (let j = 0; j < 5; j++) assert.equal((await c.get("/echo"))?.status, 401);
        c.destroy();
      }
      await waitFor(() => denied(from).length >= 5, 5_000, "the first lines are logged");
      const lines = denied(from);
      assert.ok(lines.length <= 5, `at most 5 lines, got ${lines.length}`);
      assert.match(lines[0] ?? "", /"peer":"[^"]+"/, "a line names the client's address");
      const text = (await admin.call("GET", "/metrics")).text;
      const held = Number(
        /portcullis_log_lines_suppressed_total\{event="request denied"\} (\d+)/.exec(text)?.[1],
      );
      assert.ok(held >= 25, `the rest are counted (${held})`);
      await new Promise((r) => setTimeout(r, 2_100));
      const after = gw.output().length;
      const c = open("refusals");
      assert.equal((await c.get("/echo"))?.status, 401);
      c.destroy();
      await waitFor(() => denied(after).length >= 1, 5_000, "the next interval logs again");
      const reported = JSON.parse(denied(after)[0] ?? "{}") as { suppressed?: number };
      assert.ok((reported.suppressed ?? 0) >= 25, `suppressed: ${reported.suppressed}`);
    });
  });

  test("the registry's SQLite files are owner-only, as keys and the admin token are", () => {
    for (const file of ["portcullis.db", "portcullis.db-wal", "portcullis.db-shm"]) {
      const path = `${tmp.dir}/${file}`;
      if (file !== "portcullis.db" && !existsSync(path)) continue;
      assert.equal(statSync(path).mode & 0o777, 0o600, `${file} is 0600`);
    }
  });

  describe("a connection refused again and again is closed", () => {
    test("after maxRefusedRequests refusals in a row (401, 404), the last one answered", async () => {
      const c = open("refusals", expired);
      assert.equal(await c.ready, true);
      for (const path of ["/echo", "/nowhere", "/echo", "/nowhere"]) {
        assert.ok([401, 404].includes((await c.get(path))?.status ?? 0));
      }
      assert.ok(c.open, "four refusals keep it open");
      const fifth = await c.get("/echo");
      assert.equal(fifth?.status, 401, "the fifth is answered");
      await within(c.closed, 5_000, "then the connection is closed");
      assert.ok((await limitHits("refusals", "maxRefusedRequests", "closed")) >= 1);
    });

    test("an answer that passes resets the count", async () => {
      const c = open("refusals");
      assert.equal(await c.ready, true);
      for (let i = 0; i < 3; i++) {
        for (let j = 0; j < 4; j++) assert.equal((await c.get("/echo"))?.status, 401);
        assert.equal((await c.get("/public/echo"))?.status, 200);
      }
      assert.ok(c.open, "never five refusals in a row");
      c.destroy();
    });
  });
});
