// GET /decisions/stream: the retry line, filtered decision events, heartbeats, the limit of concurrent
// streams, unsubscription on disconnect and on close, and dropping (then reporting) under backpressure.
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DecisionLog, type DecisionRecord } from "../../gateway/decision-log.ts";
import type { HttpError } from "../errors.ts";
import { startAdmin, TEST_TOKEN } from "../testing/harness.ts";
import { AdminMetrics } from "./admin-metrics.ts";
import { DecisionStreams } from "./event-stream.ts";

const deny = (over: Partial<DecisionRecord> = {}): DecisionRecord => ({
  at: new Date().toISOString(),
  listener: "devices",
  route: "api",
  allow: false,
  enforced: true,
  reason: "unknown_device",
  detail: "not registered",
  ...over,
});

/** An open stream's text so far, and a way to wait for more. */
async function openStream(
  url: string,
  path: string,
  signal?: AbortSignal,
  headers: Record<string, string> = { authorization: `Bearer ${TEST_TOKEN}` },
) {
  const res = await fetch(`${url}${path}`, { headers, signal });
  let text = "";
  const reader = res.body?.getReader();
  const decoder = new TextDecoder();
  const until = async (done: (text: string) => boolean, timeoutMs = 5000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    while (!done(text)) {
      if (Date.now() > deadline) throw new Error(`stream did not get there; got:\n${text}`);
      const chunk = await reader?.read();
      if (!chunk || chunk.done) throw new Error(`stream ended; got:\n${text}`);
      text += decoder.decode(chunk.value, { stream: true });
    }
    return text;
  };
  return { res, until, text: () => text, cancel: () => reader?.cancel() };
}

async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await sleep(10);
  }
  assert.fail(what);
}

describe("GET /decisions/stream over HTTP", () => {
  test("retry first, then only the decisions matching the filter, as `decision` events", async () => {
    const admin = await startAdmin();
    try {
      const stream = await openStream(admin.url, "/decisions/stream?result=deny&route=api");
      assert.equal(stream.res.status, 200);
      assert.equal(stream.res.headers.get("content-type"), "text/event-stream; charset=utf-8");
      assert.equal(stream.res.headers.get("cache-control"), "no-store");
      await stream.until((t) => t.includes("\n\n"));
      assert.ok(stream.text().startsWith("retry: 3000\n\n"));
      admin.decisions.record(deny({ route: "other", deviceId: "wrong-route" }));
      admin.decisions.record({ ...deny({ deviceId: "allowed" }), allow: true });
      admin.decisions.record(deny({ deviceId: "wanted" }));
      const text = await stream.until((t) => t.includes("wanted"));
      const events = text.split("\n\n").filter((e) => e.startsWith("event: "));
      assert.equal(events.length, 1);
      const [event, data] = (events[0] ?? "").split("\n");
      assert.equal(event, "event: decision");
      assert.equal(JSON.parse(data?.replace(/^data: /, "") ?? "").deviceId, "wanted");
      await stream.cancel();
    } finally {
      await admin.close();
    }
  });

  test("filters on reason and device; a bad filter is 400", async () => {
    const admin = await startAdmin();
    try {
      const stream = await openStream(admin.url, "/decisions/stream?reason=device_suspended&device=d-2");
      admin.decisions.record(deny({ deviceId: "d-2" }));
      admin.decisions.record(deny({ deviceId: "d-1", reason: "device_suspended" }));
      admin.decisions.record(deny({ deviceId: "d-2", reason: "device_suspended", detail: "this one" }));
      const text = await stream.until((t) => t.includes("this one"));
      assert.equal(text.match(/event: decision/g)?.length, 1);
      await stream.cancel();
      const bad = await admin.call("GET", "/decisions/stream?result=maybe");
      assert.equal(bad.status, 400);
      assert.equal((await admin.call("GET", "/decisions/stream?nope=1")).status, 400);
    } finally {
      await admin.close();
    }
  });

  test("a `: ping` comment every heartbeat", async () => {
    const admin = await startAdmin({ console: { heartbeatMs: 20 } });
    try {
      const stream = await openStream(admin.url, "/decisions/stream");
      const text = await stream.until((t) => (t.match(/: ping\n\n/g)?.length ?? 0) >= 2);
      assert.ok(text.startsWith("retry: 3000\n\n: ping\n\n"));
      await stream.cancel();
    } finally {
      await admin.close();
    }
  });

  test("more than maxEventStreams is 429; a disconnect frees its place and unsubscribes", async () => {
    const admin = await startAdmin({ console: { maxEventStreams: 2 } });
    try {
      const one = await openStream(admin.url, "/decisions/stream");
      const two = await openStream(admin.url, "/decisions/stream");
      await one.until((t) => t.includes("retry"));
      await two.until((t) => t.includes("retry"));
      const metrics = async () => (await admin.call("GET", "/metrics")).text;
      assert.match(await metrics(), /^portcullis_admin_event_streams 2$/m);
      const third = await admin.call("GET", "/decisions/stream");
      assert.equal(third.status, 429);
      assert.deepEqual(third.json, { message: "Too many event streams" });
      await one.cancel();
      await eventually(async () => /^portcullis_admin_event_streams 1$/m.test(await metrics()), "one closed");
      const again = await openStream(admin.url, "/decisions/stream");
      assert.equal(again.res.status, 200);
      await again.cancel();
      await two.cancel();
      await eventually(async () => /^portcullis_admin_event_streams 0$/m.test(await metrics()), "all closed");
      admin.decisions.record(deny()); // nobody listens any more: nothing to write to
    } finally {
      await admin.close();
    }
  });

  test("a stream opened with a console session ends when the session is logged out; a bearer one goes on", async () => {
    const admin = await startAdmin();
    try {
      const login = await fetch(`${admin.url}/console/session`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token: TEST_TOKEN }),
      });
      assert.equal(login.status, 201);
      const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0] ?? "";
      const { csrfToken } = (await login.json()) as { csrfToken: string };
      const bySession = await openStream(admin.url, "/decisions/stream", undefined, { cookie });
      const byToken = await openStream(admin.url, "/decisions/stream");
      await bySession.until((t) => t.includes("retry"));
      await byToken.until((t) => t.includes("retry"));
      const logout = await fetch(`${admin.url}/console/session`, {
        method: "DELETE",
        headers: { cookie, "x-csrf-token": csrfToken },
      });
      assert.equal(logout.status, 204);
      await assert.rejects(
        bySession.until(() => false),
        /stream ended|terminated|other side closed/,
      );
      admin.decisions.record(deny({ deviceId: "after-logout" }));
      await byToken.until((t) => t.includes("after-logout"));
      await byToken.cancel();
    } finally {
      await admin.close();
    }
  });

  test("closing the admin server ends the open streams", async () => {
    const admin = await startAdmin();
    const stream = await openStream(admin.url, "/decisions/stream");
    await stream.until((t) => t.includes("retry"));
    await admin.close();
    await assert.rejects(
      stream.until(() => false),
      /stream ended|terminated|other side closed/,
    );
  });

  test("a client that stops reading loses decisions, then gets `dropped` with their count", async () => {
    const admin = await startAdmin();
    try {
      const controller = new AbortController();
      const res = await fetch(`${admin.url}/decisions/stream`, {
        headers: { authorization: `Bearer ${TEST_TOKEN}` },
        signal: controller.signal,
      });
      const reader = res.body?.getReader();
      // Not read: the socket's buffers fill up and write() starts to return false.
      const big = "x".repeat(64 * 1024);
      for (let i = 0; i < 2000; i++) admin.decisions.record(deny({ detail: big }));
      const metrics = (await admin.call("GET", "/metrics")).text;
      const dropped = Number(/^portcullis_admin_events_dropped_total (\d+)$/m.exec(metrics)?.[1]);
      assert.ok(dropped > 0, `dropped ${dropped}`);
      let text = "";
      const decoder = new TextDecoder();
      while (!/event: dropped\ndata: \{"count":\d+\}/.test(text)) {
        const chunk = await reader?.read();
        assert.ok(chunk && !chunk.done);
        // Only the tail matters: the decisions themselves are large.
        text = (text + decoder.decode(chunk.value, { stream: true })).slice(-200_000);
      }
      const count = Number(/event: dropped\ndata: \{"count":(\d+)\}/.exec(text)?.[1]);
      assert.equal(count, dropped);
      controller.abort();
    } finally {
      await admin.close();
    }
  });
});

/** A ServerResponse stand-in whose write() returns `accept`, for a deterministic backpressure test. */
class FakeResponse extends EventEmitter {
  accept = true;
  written: string[] = [];
  destroyed = false;
  writableEnded = false;
  status = 0;
  writeHead(status: number): this {
    this.status = status;
    return this;
  }
  write(text: string): boolean {
    this.written.push(text);
    return this.accept;
  }
  end(): void {
    this.writableEnded = true;
    this.emit("close");
  }
}

const fakeRequest = {
  method: "GET",
  socket: { setNoDelay() {}, setKeepAlive() {} },
} as unknown as IncomingMessage;

test("DecisionStreams: drops while blocked, reports the count after drain, and unsubscribes on close", () => {
  const log = new DecisionLog(10);
  const metrics = new AdminMetrics();
  const streams = new DecisionStreams({ decisions: log, maxStreams: 1, metrics });
  const res = new FakeResponse();
  streams.open(fakeRequest, res as unknown as ServerResponse, {});
  assert.equal(res.status, 200);
  assert.deepEqual(res.written, ["retry: 3000\n\n"]);
  assert.throws(
    () => streams.open(fakeRequest, new FakeResponse() as unknown as ServerResponse, {}),
    (e: HttpError) => e.status === 429,
  );
  res.accept = false;
  log.record(deny({ deviceId: "first" })); // written; write() says the buffer is full
  log.record(deny({ deviceId: "dropped-1" }));
  log.record(deny({ deviceId: "dropped-2" }));
  assert.equal(res.written.length, 2);
  assert.match(res.written[1] ?? "", /"deviceId":"first"/);
  res.accept = true;
  res.emit("drain");
  assert.equal(res.written[2], 'event: dropped\ndata: {"count":2}\n\n');
  log.record(deny({ deviceId: "after" }));
  assert.match(res.written[3] ?? "", /"deviceId":"after"/);
  res.emit("drain"); // nothing dropped since: no event
  assert.equal(res.written.length, 4);
  res.emit("close"); // the client went away
  assert.equal(streams.size, 0);
  log.record(deny({ deviceId: "unheard" }));
  assert.equal(res.written.length, 4);
  // Its place is free again.
  const next = new FakeResponse();
  streams.open(fakeRequest, next as unknown as ServerResponse, {});
  assert.equal(streams.size, 1);
  streams.closeAll();
  assert.equal(streams.size, 0);
  assert.equal(next.writableEnded, true);
});

test("DecisionStreams: a session stream ends at the first heartbeat after its session has ended", async () => {
  const log = new DecisionLog(10);
  const streams = new DecisionStreams({ decisions: log, heartbeatMs: 20 });
  let live = true;
  const bySession = new FakeResponse();
  const byToken = new FakeResponse();
  streams.open(fakeRequest, bySession as unknown as ServerResponse, {}, () => live);
  streams.open(fakeRequest, byToken as unknown as ServerResponse, {});
  await sleep(60);
  assert.equal(bySession.writableEnded, false);
  live = false; // expired, or evicted by newer logins
  for (let i = 0; i < 50 && !bySession.writableEnded; i++) await sleep(20);
  assert.equal(bySession.writableEnded, true);
  assert.equal(byToken.writableEnded, false);
  assert.equal(streams.size, 1);
  streams.closeAll();
});
