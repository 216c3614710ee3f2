// Upstream traffic policies through `portcullis start` with real upstreams: round-robin, consistent hashing on
// the device id, active health checks (a target out and back, all down → 503 no_healthy_upstream), outlier
// ejection, a route's own timeout, and TLS to an upstream that requires the gateway's client certificate.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { TLSSocket } from "node:tls";
import type { ConfigInput } from "../../src/config/schema.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { type CurlOptions, type CurlResult, curl } from "../helpers/clients.ts";
import { type GatewayProcess, startGateway, tempDir } from "../helpers/gateway-process.ts";

interface Tagged {
  tag: string;
  device?: string;
}

/** Listens on a random loopback port; `scheme` only names the URL. */
async function listen(server: Server, scheme = "http"): Promise<{ url: string; close(): Promise<void> }> {
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  return {
    url: `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}

/** Answers `{tag, device}` (the device from the gateway's x-device-id); `/health` with `health()`. */
function tagged(
  tag: string,
  health: () => number = () => 200,
  status: () => number = () => 200,
): RequestListener {
  return (req, res) => {
    req.resume();
    if (req.url === "/health") {
      res.writeHead(health()).end();
      return;
    }
    const body = JSON.stringify({ tag, device: req.headers["x-device-id"] });
    res.writeHead(status(), { "content-type": "application/json" }).end(body);
  };
}

describe("upstream balancing, health checks, outlier detection and TLS (portcullis start)", () => {
  const tmp = tempDir();
  const closers: (() => Promise<void>)[] = [];
  const health = { h1: 200, h2: 200 };
  let gw: GatewayProcess;
  let port = 0;
  const request = (options: Omit<CurlOptions, "port" | "dir">): Promise<CurlResult> =>
    curl({ port, dir: tmp.dir, device: "device", http: "1.1", ...options });

  /** Polls `check` until it holds, with a generous deadline (health checks run on their own clock). */
  async function eventually(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
      await sleep(100);
    }
  }

  before(async () => {
    await ensureDemoPki(tmp.dir);
    const start = async (handler: RequestListener) => {
      const s = await listen(createServer(handler));
      closers.push(s.close);
      return s.url;
    };
    const rr = [await start(tagged("a")), await start(tagged("b"))];
    const hashed = [await start(tagged("x")), await start(tagged("y")), await start(tagged("z"))];
    const checked = [await start(tagged("h1", () => health.h1)), await start(tagged("h2", () => health.h2))];
    const outlier = [await start(tagged("flaky", undefined, () => 500)), await start(tagged("steady"))];
    // An https upstream that requires a client certificate from the demo CA: the gateway's own (device.crt).
    const tls = await listen(
      createHttpsServer(
        {
          cert: readFileSync(join(tmp.dir, "server.crt")),
          key: readFileSync(join(tmp.dir, "server.key")),
          ca: readFileSync(join(tmp.dir, "ca-chain.crt")),
          requestCert: true,
          rejectUnauthorized: true,
        },
        (req, res) => {
          req.resume();
          const peer = (req.socket as TLSSocket).getPeerCertificate();
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ tag: "tls", device: peer.subject?.CN }));
        },
      ),
      "https",
    );
    closers.push(tls.close);
    const slow = await start((req) => req.resume()); // never answers

    const auth = { trustStores: ["devices"] };
    const config: ConfigInput = {
      listeners: [
        {
          name: "main",
          port: 0,
          clientAuth: "application",
          certificates: [{ cert: "server.crt", key: "server.key" }],
        },
      ],
      trustStores: [{ name: "devices", ca: "ca-chain.crt" }],
      services: [
        { name: "rr", targets: rr },
        { name: "hashed", targets: hashed, balancing: "consistent-hash" },
        {
          name: "checked",
          targets: checked,
          healthCheck: {
            path: "/health",
            interval: "100ms",
            timeout: "1s",
            healthyThreshold: 1,
            unhealthyThreshold: 2,
          },
        },
        {
          name: "outlier",
          targets: outlier,
          retries: 0,
          outlierDetection: { consecutiveFailures: 2, ejectionTime: "1m" },
        },
        { name: "slow", targets: [slow], readTimeout: "1m" },
        {
          name: "tls",
          targets: [tls.url],
          tls: { ca: "ca-chain.crt", cert: "device.crt", key: "device.key" },
        },
      ],
      routes: [
        ...["rr", "hashed", "checked", "outlier", "tls"].map((name) => ({
          name,
          paths: [`/${name}`],
          service: name,
          auth,
        })),
        { name: "impatient", paths: ["/impatient"], service: "slow", auth, timeout: "300ms" },
      ],
    };
    gw = await startGateway(tmp.dir, config);
    port = gw.ports.main ?? 0;
    assert.notEqual(port, 0);
  });

  after(async () => {
    const code = await gw?.stop();
    await Promise.all(closers.map((close) => close()));
    tmp.cleanup();
    assert.equal(code, 0, "graceful stop exits 0");
  });

  test("round-robin spreads requests over both targets in turn", async () => {
    const tags: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await request({ path: "/rr", http: i % 2 === 0 ? "2" : "1.1" });
      assert.equal(r.status, 200, r.body);
      tags.push(r.json<Tagged>().tag);
    }
    assert.deepEqual(new Set(tags), new Set(["a", "b"]), tags.join(","));
    for (let i = 1; i < tags.length; i++) assert.notEqual(tags[i], tags[i - 1], tags.join(","));
  });

  test("consistent hashing keeps each device on one target", async () => {
    for (const device of ["device", "unregistered-device"]) {
      const seen = new Set<string>();
      let id: string | undefined;
      for (let i = 0; i < 6; i++) {
        const r = await request({ path: "/hashed", device, http: i % 2 === 0 ? "2" : "1.1" });
        assert.equal(r.status, 200, r.body);
        const body = r.json<Tagged>();
        seen.add(body.tag);
        id = body.device;
      }
      assert.equal(seen.size, 1, `${device} (${id}) went to ${[...seen].join(", ")}`);
      assert.ok(id, "the upstream was told which device");
    }
  });

  test("a health check takes out a target whose /health answers 500, all down is a 503, and it comes back", async () => {
    const tagOf = async () => {
      const r = await request({ path: "/checked" });
      return r.status === 200 ? r.json<Tagged>().tag : String(r.status);
    };
    health.h1 = 500;
    await eventually("h1 out of balancing", async () => {
      const tags = [await tagOf(), await tagOf(), await tagOf(), await tagOf()];
      return tags.every((t) => t === "h2");
    });
    health.h2 = 500;
    let down: CurlResult | undefined;
    await eventually("all down", async () => {
      down = await request({ path: "/checked" });
      return down.status === 503;
    });
    assert.match(down?.headers["content-type"] ?? "", /^application\/json/);
    assert.deepEqual(down?.json(), {
      message: "Failure to get a peer from the ring-balancer",
      reason: "no_healthy_upstream",
    });
    health.h1 = 200;
    health.h2 = 200;
    await eventually("both back", async () => {
      const tags = new Set([await tagOf(), await tagOf(), await tagOf(), await tagOf()]);
      return tags.size === 2 && tags.has("h1") && tags.has("h2");
    });
    const output = gw.output();
    assert.match(output, /"msg":"upstream target unhealthy"/);
    assert.match(output, /"msg":"upstream target healthy"/);
  });

  test("outlier detection ejects a target after consecutive 5xx answers", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await request({ path: "/outlier" })).status);
    // flaky (500), steady, flaky (500, the second in a row: ejected), steady
    assert.deepEqual(statuses, [500, 200, 500, 200]);
    for (let i = 0; i < 6; i++) {
      const r = await request({ path: "/outlier", http: i % 2 === 0 ? "2" : "1.1" });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.json<Tagged>().tag, "steady");
    }
    assert.match(gw.output(), /"msg":"upstream target ejected"/);
  });

  test("TLS to an upstream that requires a client certificate: the gateway presents its own", async () => {
    const r = await request({ path: "/tls" });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json<Tagged>(), { tag: "tls", device: "device-001" });
  });

  test("a route's own timeout replaces its service's readTimeout", async () => {
    const started = performance.now();
    const r = await request({ path: "/impatient" });
    const elapsed = performance.now() - started;
    assert.equal(r.status, 504, r.body);
    assert.ok(
      elapsed >= 250 && elapsed < 5_000,
      `504 after ${Math.round(elapsed)} ms, not the service's minute`,
    );
  });
});
