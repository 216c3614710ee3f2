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

  /** The gateway's JSON log lines so far (the demo writes them to stderr). */
  const logLines = () =>
    gw
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map(
        (l) =>
          JSON.parse(l) as {
            msg?: string;
            worker?: number;
            port?: number;
            closed?: number;
            deviceId?: string;
          },
      );
  const listening = () => logLines().filter((l) => l.msg === "listening");

  /** Resolves once `done()` holds, checked again on each chunk of the gateway's output. */
  const outputUntil = async (done: () => boolean): Promise<void> => {
    while (!done()) {
      await new Promise<void>((resolve) => {
        const onData = () => {
          gw.child.stdout?.off("data", onData);
          gw.child.stderr?.off("data", onData);
          resolve();
        };
        gw.child.stdout?.on("data", onData);
        gw.child.stderr?.on("data", onData);
      });
    }
  };

  before(
    async () => {
      gw = await startDemo(tmp.dir, ["--workers", "2"]);
      token = readFileSync(join(tmp.dir, "admin.token"), "utf8").trim();
      // The demo announces itself once the first worker listens; every test here needs both.
      await outputUntil(() => listening().length >= 2);
    },
    { timeout: 60_000 },
  );
  after(async () => {
    await gw.stop();
    tmp.cleanup();
  });

  test("both workers serve the port; the primary's admin API speaks for both (status, decisions, metrics)", {
    timeout: 30_000,
  }, async () => {
    const status = (await (await admin("/status")).json()) as {
      workers?: number;
      listeners: { port: number }[];
    };
    assert.equal(status.workers, 2);
    assert.equal(status.listeners[0]?.port, gw.ports.demo);
    // Fresh connections are handed to the workers in turn; each request is decided by one of them, which
    // forwards its decisions in batches (every 200 ms): request and read until both have arrived.
    const seen = new Set<number>();
    for (;;) {
      const r = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "device" });
      assert.equal(r.status, 200, r.body);
      const decisions = (await (await admin("/decisions?limit=1000")).json()) as
        | { worker?: number }[]
        | { decisions: { worker?: number }[] };
      const list = Array.isArray(decisions) ? decisions : decisions.decisions;
      for (const d of list) if (d.worker !== undefined) seen.add(d.worker);
      if (seen.size >= 2) break;
    }
    assert.equal(seen.size, 2, `decisions from workers: ${[...seen].join(", ")}`);
    const metrics = await (await admin("/metrics")).text();
    const workers = new Set(
      [...metrics.matchAll(/portcullis_decisions_total\{[^}]*worker="(\d+)"/g)].map((m) => m[1]),
    );
    assert.equal(workers.size, 2, "the metrics of both workers, aggregated by the primary");
  });

  test("the primary logs `admin listening`; every worker's log lines carry its worker id", {
    timeout: 30_000,
  }, async () => {
    // Both workers logged "listening" (before() waited for them).
    const workers = new Set(listening().map((l) => l.worker));
    assert.equal(workers.size, 2, `worker ids on "listening": ${[...workers].join(", ")}`);
    assert.ok(
      [...workers].every((w) => Number.isInteger(w)),
      "each line names its worker",
    );
    const adminLine = () => logLines().filter((l) => l.msg === "admin listening");
    await outputUntil(() => adminLine().length > 0);
    const admin = adminLine();
    assert.equal(admin.length, 1, "the primary, which hosts the admin API, says where");
    assert.equal(admin[0]?.port, gw.adminPort);
    assert.equal(admin[0]?.worker, undefined, "written by the primary");
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

  test("suspending a device closes its connections on every worker, and re-activating lets it back", {
    timeout: 60_000,
  }, async () => {
    const port = gw.ports.demo ?? 0;
    /** The "closed device connections" lines for device-001 written so far: worker id and count. */
    const closures = () =>
      gw
        .output()
        .split("\n")
        .filter((l) => l.startsWith("{") && l.includes('"msg":"closed device connections"'))
        .map((l) => JSON.parse(l) as { worker?: number; closed: number; deviceId: string })
        .filter((l) => l.deviceId === "device-001");
    const closedBefore = closures().length;
    // Four connections: the primary hands them to the workers in turn, so both hold some.
    const clients = Array.from({ length: 4 }, () => keepAliveClient(port, tmp.dir, "device"));
    try {
      for (const c of clients) assert.equal((await c.get()).status, 200);
      const patched = await admin("/devices/device-001", {
        method: "PATCH",
        body: JSON.stringify({ status: "suspended" }),
      });
      assert.equal(patched.status, 200);
      // Each worker closes the connections it holds and says so (the other learns of the change from the
      // store's change feed): wait for both lines.
      const closedOnWorkers = () => closures().slice(closedBefore);
      await outputUntil(() => closedOnWorkers().reduce((n, l) => n + l.closed, 0) >= clients.length);
      const lines = closedOnWorkers();
      assert.equal(
        new Set(lines.map((l) => l.worker)).size,
        2,
        `closed on both workers: ${JSON.stringify(lines)}`,
      );
      assert.equal(
        lines.reduce((n, l) => n + l.closed, 0),
        clients.length,
        "every connection of the device was closed",
      );
      // A closed connection's request fails or is retried on a new connection; either way it is refused now.
      const statusOf = async (c: (typeof clients)[number]) => {
        for (;;) {
          const r = await c.get().catch(() => undefined);
          if (r) return r.status;
        }
      };
      assert.deepEqual(await Promise.all(clients.map(statusOf)), [403, 403, 403, 403]);
      for (const c of clients) assert.equal(c.connects, 2, "the first connection was closed by the gateway");
      await admin("/devices/device-001", { method: "PATCH", body: JSON.stringify({ status: "active" }) });
      // Both workers learn of it from the store's change feed (SQLite: polled every 250 ms): every
      // connection is let back in once its worker knows.
      let again = await curl({ port, dir: tmp.dir, device: "device" });
      while (again.status !== 200) {
        assert.equal(again.status, 403, again.body);
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
