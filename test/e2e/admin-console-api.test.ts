// The console's server side on a real gateway (`portcullis start`): login and the session cookie's flags,
// cookie authentication with CSRF on changes, a denial made by a real request arriving on the decision
// stream, and the shapes of /trust, /fleet/summary and /status; under --workers, the primary's stream,
// metrics, connection count and trust stores.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { ConfigInput } from "../../src/config/schema.ts";
import { type EchoUpstream, startEchoUpstream } from "../../src/demo/echo-upstream.ts";
import { ensureDemoPki } from "../../src/pki/demo-pki.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, startDemo, startGateway, tempDir } from "../helpers/gateway-process.ts";

const HOST = "mtls.auth.local.com";

function config(upstream: string): ConfigInput {
  return {
    listeners: [
      {
        name: "main",
        port: 0,
        clientAuth: "application",
        certificates: [{ cert: "server.crt", key: "server.key" }],
        trustStores: ["devices"],
      },
    ],
    trustStores: [
      { name: "devices", ca: ["ca-chain.crt"], revocation: { mode: "strict", crl: { files: ["crl.pem"] } } },
    ],
    services: [{ name: "echo", targets: [upstream] }],
    routes: [
      {
        name: "secure",
        hosts: [HOST],
        paths: ["/echo"],
        service: "echo",
        auth: { trustStores: ["devices"], registry: "required" },
      },
    ],
    admin: { port: 0, tokenFile: "admin.token" },
  };
}

describe("admin console API on a running gateway", () => {
  const tmp = tempDir("portcullis-console-api-");
  let echo: EchoUpstream;
  let gw: GatewayProcess;
  let token = "";
  let base = "";
  const call = (path: string, init: RequestInit & { headers?: Record<string, string> } = {}) =>
    fetch(`${base}${path}`, init);
  const bearer = () => ({ authorization: `Bearer ${token}` });
  const login = async () => {
    const r = await call("/console/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token }),
    });
    assert.equal(r.status, 201);
    const body = (await r.json()) as { csrfToken: string; expiresAt: string };
    const setCookie = r.headers.get("set-cookie") ?? "";
    const value = /^portcullis_session=([^;]+)/.exec(setCookie)?.[1] ?? "";
    return { setCookie, cookie: `portcullis_session=${value}`, ...body };
  };

  before(async () => {
    await ensureDemoPki(tmp.dir);
    token = readFileSync(join(tmp.dir, "admin.token"), "utf8").trim();
    echo = await startEchoUpstream();
    gw = await startGateway(tmp.dir, config(echo.url));
    base = `http://127.0.0.1:${gw.adminPort}`;
    const created = await call("/devices", {
      method: "POST",
      headers: { ...bearer(), "content-type": "application/json" },
      body: JSON.stringify({ id: "device-001", groups: ["demo"] }),
    });
    assert.equal(created.status, 201);
  });
  after(async () => {
    await gw.stop();
    await echo.close();
    tmp.cleanup();
  });

  test("login sets an HttpOnly, SameSite=Strict session cookie; a wrong token is 401", async () => {
    const { setCookie, csrfToken, expiresAt } = await login();
    assert.match(setCookie, /^portcullis_session=[A-Za-z0-9_-]{43}; /);
    for (const flag of ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"]) {
      assert.ok(setCookie.split("; ").includes(flag), `${flag} in ${setCookie}`);
    }
    assert.ok(!setCookie.includes("Secure"), "plain HTTP admin listener: no Secure");
    assert.ok(csrfToken.length >= 32);
    assert.ok(Date.parse(expiresAt) > Date.now());
    const wrong = await call("/console/session", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: "not-the-admin-token-at-all" }),
    });
    assert.equal(wrong.status, 401);
    assert.deepEqual(await wrong.json(), { message: "Unauthorized" });
  });

  test("the cookie reads; a change needs the CSRF token; no cookie and no token is 401", async () => {
    const { cookie, csrfToken } = await login();
    const status = await call("/status", { headers: { cookie } });
    assert.equal(status.status, 200);
    assert.equal((await call("/status")).status, 401);
    const patch = (headers: Record<string, string>) =>
      call("/devices/device-001", {
        method: "PATCH",
        headers: { cookie, "content-type": "application/json", ...headers },
        body: JSON.stringify({ status: "suspended" }),
      });
    const without = await patch({});
    assert.equal(without.status, 403);
    assert.deepEqual(await without.json(), { message: "Missing or invalid CSRF token" });
    assert.equal((await patch({ "x-csrf-token": "bad-token" })).status, 403);
    const ok = await patch({ "x-csrf-token": csrfToken, "if-match": '"1"' });
    assert.equal(ok.status, 200);
    assert.equal(((await ok.json()) as { status: string }).status, "suspended");
    const back = await patch({ "x-csrf-token": csrfToken });
    assert.equal(back.status, 200);
    const restore = await call("/devices/device-001", {
      method: "PATCH",
      headers: { ...bearer(), "content-type": "application/json" },
      body: JSON.stringify({ status: "active" }),
    });
    assert.equal(restore.status, 200);
  });

  test("a denial made by a real request arrives on GET /decisions/stream", async () => {
    const { cookie } = await login();
    const controller = new AbortController();
    const res = await call("/decisions/stream?result=deny&route=secure", {
      headers: { cookie },
      signal: controller.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const reader = res.body?.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const read = async (until: (t: string) => boolean) => {
      while (!until(text)) {
        const chunk = await reader?.read();
        assert.ok(chunk && !chunk.done, `stream ended: ${text}`);
        text += decoder.decode(chunk.value, { stream: true });
      }
    };
    await read((t) => t.startsWith("retry: 3000\n\n"));
    const denied = await curl({
      port: gw.ports.main ?? 0,
      dir: tmp.dir,
      device: "unregistered-device",
      http: "1.1",
    });
    assert.equal(denied.status, 401, denied.body);
    await read((t) => /event: decision\ndata: .*\n\n/.test(t));
    const data = /event: decision\ndata: (.*)\n\n/.exec(text)?.[1] ?? "";
    const record = JSON.parse(data) as { allow: boolean; route: string; reason: string };
    assert.equal(record.allow, false);
    assert.equal(record.route, "secure");
    assert.equal(record.reason, "unknown_device");
    controller.abort();
  });

  test("GET /trust, GET /fleet/summary and GET /status shapes", async () => {
    const trust = (await (await call("/trust", { headers: bearer() })).json()) as {
      trustStores: {
        name: string;
        cas: { subject: string; fingerprint: string; notAfter: string; daysLeft: number }[];
        revocation: { mode: string; crls: { source: string; fresh: boolean; revoked: number }[] };
      }[];
    };
    assert.equal(trust.trustStores.length, 1);
    const store = trust.trustStores[0];
    assert.equal(store?.name, "devices");
    assert.equal(store?.cas.length, 2);
    for (const ca of store?.cas ?? []) {
      assert.match(ca.fingerprint, /^[0-9a-f]{64}$/);
      assert.ok(ca.daysLeft > 0 && Number.isInteger(ca.daysLeft));
    }
    assert.equal(store?.revocation.mode, "strict");
    const crl = store?.revocation.crls.find((c) => c.source === `file:${join(tmp.dir, "crl.pem")}`);
    assert.ok(crl, JSON.stringify(store?.revocation));
    assert.equal(crl.fresh, true);
    assert.equal(crl.revoked, 1);

    const summary = await (await call("/fleet/summary", { headers: bearer() })).json();
    assert.deepEqual(summary, { devices: { total: 1, active: 1, suspended: 0, revoked: 0, pending: 0 } });

    const status = (await (await call("/status", { headers: bearer() })).json()) as {
      connections: { open: number };
    };
    assert.equal(typeof status.connections.open, "number");

    const minutes = (await (await call("/decisions/summary?minutes=2", { headers: bearer() })).json()) as {
      minutes: { deny: number }[];
    };
    assert.equal(minutes.minutes.length, 2);
    assert.ok((minutes.minutes.at(-1)?.deny ?? 0) + (minutes.minutes[0]?.deny ?? 0) >= 1);
  });
});

describe("admin console API under --workers (the primary hosts the admin API)", () => {
  const tmp = tempDir("portcullis-console-workers-");
  let gw: GatewayProcess;
  let token = "";
  const call = (path: string, signal?: AbortSignal) =>
    fetch(`http://127.0.0.1:${gw.adminPort}${path}`, {
      headers: { authorization: `Bearer ${token}` },
      signal,
    });

  before(
    async () => {
      gw = await startDemo(tmp.dir, ["--workers", "2"]);
      token = readFileSync(join(tmp.dir, "admin.token"), "utf8").trim();
      // The demo announces itself once the first worker listens; the aggregated metrics need both.
      while ((await call("/metrics")).status !== 200) await new Promise((r) => setTimeout(r, 100));
    },
    { timeout: 60_000 },
  );
  after(async () => {
    await gw.stop();
    tmp.cleanup();
  });

  test("a worker's denial reaches the primary's stream; the stream gauge, connections and trust show", {
    timeout: 30_000,
  }, async () => {
    const controller = new AbortController();
    const res = await call("/decisions/stream?result=deny", controller.signal);
    assert.equal(res.status, 200);
    const reader = res.body?.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const metrics = await (await call("/metrics")).text();
    assert.match(metrics, /^portcullis_admin_event_streams 1$/m);
    assert.match(metrics, /portcullis_decisions_total/, "the workers' metrics are still there");
    const denied = await curl({ port: gw.ports.demo ?? 0, dir: tmp.dir, device: "unregistered-device" });
    assert.notEqual(denied.status, 200);
    while (!/event: decision\ndata: .*\n\n/.test(text)) {
      const chunk = await reader?.read();
      assert.ok(chunk && !chunk.done, `stream ended: ${text}`);
      text += decoder.decode(chunk.value, { stream: true });
    }
    const record = JSON.parse(/event: decision\ndata: (.*)\n\n/.exec(text)?.[1] ?? "") as {
      allow: boolean;
      worker?: number;
    };
    assert.equal(record.allow, false);
    assert.ok(Number.isInteger(record.worker));
    controller.abort();

    const status = (await (await call("/status")).json()) as { connections: { open: number } };
    assert.equal(typeof status.connections.open, "number");
    const trust = (await (await call("/trust")).json()) as {
      trustStores: { name: string; cas: unknown[] }[];
    };
    assert.ok(trust.trustStores.length > 0);
    assert.ok(trust.trustStores.every((s) => s.cas.length > 0));
  });
});
