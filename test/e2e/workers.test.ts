// --workers N: several gateway processes (node:cluster) on one port. Every worker serves the demo, a TLS
// session made on one worker resumes on another (shared ticket keys), a device suspended through the
// admin API loses its connections on every worker, and SIGTERM stops them all with exit code 0.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startDemo, tempDir } from "../helpers/gateway-process.ts";
import { keepAliveClient } from "../helpers/keep-alive.ts";
import { lastSession, tlsHttp } from "../helpers/tls-http.ts";

const HOST = "mtls.auth.local.com";

describe("portcullis demo --workers 2", () => {
  const tmp = tempDir();
  let gw: GatewayProcess;
  let token = "";
  const admin = (path: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${gw.adminPort}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...init.headers },
    });

  before(async () => {
    gw = await startDemo(tmp.dir, ["--workers", "2"]);
    token = readFileSync(join(tmp.dir, "admin.token"), "utf8").trim();
  });
  after(async () => {
    await gw.stop();
    tmp.cleanup();
  });

  test("both workers serve the port; the primary's admin API speaks for both (status, decisions, metrics)", async () => {
    const status = (await (await admin("/status")).json()) as {
      workers?: number;
      listeners: { port: number }[];
    };
    assert.equal(status.workers, 2);
    assert.equal(status.listeners[0]?.port, gw.ports.demo);
    // Fresh connections are spread over the workers by the kernel; each request is decided by one of them.
    const seen = new Set<number>();
    for (let i = 0; i < 40 && seen.size < 2; i++) {
      const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "device" });
      assert.equal(r.status, 200, r.body);
      await new Promise((resolve) => setTimeout(resolve, 250)); // workers forward decisions every 200 ms
      const decisions = (await (await admin("/decisions?limit=1000")).json()) as
        | { worker?: number }[]
        | {
            decisions: { worker?: number }[];
          };
      const list = Array.isArray(decisions) ? decisions : decisions.decisions;
      for (const d of list) if (d.worker !== undefined) seen.add(d.worker);
    }
    assert.equal(seen.size, 2, `decisions from workers: ${[...seen].join(", ")}`);
    const metrics = await (await admin("/metrics")).text();
    const workers = new Set(
      [...metrics.matchAll(/portcullis_decisions_total\{[^}]*worker="(\d+)"/g)].map((m) => m[1]),
    );
    assert.equal(workers.size, 2, "the metrics of both workers, aggregated by the primary");
  });

  test("a TLS session resumes on any worker: the ticket keys are shared", async () => {
    const port = gw.ports.demo ?? 0;
    const cert = readFileSync(join(tmp.dir, "device.crt"), "utf8");
    const key = readFileSync(join(tmp.dir, "device.key"), "utf8");
    const first = await tlsHttp({ port, servername: HOST, path: "/echo", cert, key });
    assert.equal(first.http?.status, 200);
    let session = lastSession(first);
    // Connections are spread over both workers; every one of these must resume.
    for (let i = 0; i < 8; i++) {
      const again = await tlsHttp({ port, servername: HOST, path: "/echo", cert, key, session });
      assert.equal(again.reused, true, `resumption ${i + 1}`);
      assert.equal(again.http?.status, 200);
      session = again.sessions.at(-1) ?? session;
    }
  });

  test("suspending a device closes its connections on every worker, and re-activating lets it back", async () => {
    const port = gw.ports.demo ?? 0;
    const clients = Array.from({ length: 4 }, () => keepAliveClient(port, tmp.dir, "device"));
    try {
      for (const c of clients) assert.equal((await c.get()).status, 200);
      const patched = await admin("/devices/device-001", {
        method: "PATCH",
        body: JSON.stringify({ status: "suspended" }),
      });
      assert.equal(patched.status, 200);
      // Each connection is closed by its worker (a request on it fails), then a new one is refused.
      const deadline = Date.now() + 3_000;
      const statusOf = async (c: (typeof clients)[number]) => {
        for (;;) {
          const r = await c.get().catch(() => undefined);
          if (r) return r.status;
        }
      };
      let statuses: number[] = [];
      do {
        statuses = await Promise.all(clients.map(statusOf));
      } while (statuses.some((s) => s === 200) && Date.now() < deadline);
      assert.deepEqual(statuses, [403, 403, 403, 403]);
      await admin("/devices/device-001", { method: "PATCH", body: JSON.stringify({ status: "active" }) });
      // The other worker learns of the change from the store's change feed (SQLite: polled every 250 ms).
      const until = Date.now() + 3_000;
      let again = await curl({ port, dir: tmp.dir, device: "device" });
      while (again.status !== 200 && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100));
        again = await curl({ port, dir: tmp.dir, device: "device" });
      }
      assert.equal(again.status, 200, again.body);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  test("SIGTERM stops every worker and the primary exits 0", async () => {
    assert.equal(await gw.stop(), 0);
    const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "device" });
    assert.equal(r.status, 0, "nothing listens any more");
  });
});
