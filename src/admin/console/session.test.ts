// Console sessions: the store's lifetimes and eviction, the login limit, cookies, and over HTTP the login,
// cookie authentication, CSRF and Origin checks, logout, and admin.console.enabled false.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type AdminHarness, startAdmin, TEST_TOKEN } from "../testing/harness.ts";
import { readCookie, SESSION_COOKIE, serializeCookie } from "./cookies.ts";
import { LoginLimiter } from "./login-limiter.ts";
import { SessionStore } from "./session-store.ts";

describe("SessionStore", () => {
  test("ids are 32 random bytes base64url; a session ends at its absolute lifetime however used", () => {
    let now = 0;
    const store = new SessionStore({ ttlMs: 1000, idleMs: 600, maxSessions: 4 }, () => now);
    const { id, session } = store.create();
    assert.match(id, /^[A-Za-z0-9_-]{43}$/);
    assert.match(session.csrfToken, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(store.create().id, id);
    for (now = 0; now < 1000; now += 500) assert.ok(store.use(id), `alive at ${now}`);
    now = 1000;
    assert.equal(store.use(id), undefined, "past the absolute lifetime");
    assert.equal(store.use(id), undefined, "and forgotten");
  });

  test("a session unused for the idle timeout ends; use restarts the idle clock", () => {
    let now = 0;
    const store = new SessionStore({ ttlMs: 10_000, idleMs: 100, maxSessions: 4 }, () => now);
    const { id } = store.create();
    now = 99;
    assert.ok(store.use(id));
    now = 198;
    assert.ok(store.use(id));
    now = 298;
    assert.equal(store.use(id), undefined);
  });

  test("at most maxSessions: a new one evicts the oldest", () => {
    const store = new SessionStore({ ttlMs: 10_000, idleMs: 10_000, maxSessions: 2 });
    const a = store.create().id;
    const b = store.create().id;
    const c = store.create().id;
    assert.equal(store.size, 2);
    assert.equal(store.use(a), undefined);
    assert.ok(store.use(b));
    assert.ok(store.use(c));
    assert.equal(store.use("not-a-session"), undefined);
    assert.equal(store.use(undefined), undefined);
    assert.ok(store.delete(b));
    assert.equal(store.use(b), undefined);
  });
});

test("LoginLimiter: past the limit in the window, retryAfter says how long; the window ends", () => {
  let now = 0;
  const limiter = new LoginLimiter({ limit: 3, windowMs: 60_000, maxAddresses: 2 }, () => now);
  for (let i = 0; i < 3; i++) {
    assert.equal(limiter.retryAfter("a"), undefined);
    limiter.fail("a");
  }
  assert.equal(limiter.retryAfter("a"), 60);
  assert.equal(limiter.retryAfter("b"), undefined, "per address");
  now = 30_000;
  assert.equal(limiter.retryAfter("a"), 30);
  now = 60_000;
  assert.equal(limiter.retryAfter("a"), undefined);
  limiter.fail("b");
  limiter.fail("c");
  limiter.fail("d"); // bounded: the oldest address is dropped
  assert.equal(limiter.retryAfter("d"), undefined);
});

test("cookies: read the named one, write HttpOnly SameSite=Strict Path=/ Max-Age (+ Secure)", () => {
  assert.equal(readCookie("a=1; portcullis_session=xyz; b=2", SESSION_COOKIE), "xyz");
  assert.equal(readCookie('portcullis_session="q"', SESSION_COOKIE), "q");
  assert.equal(readCookie("xportcullis_session=1", SESSION_COOKIE), undefined);
  assert.equal(readCookie(undefined, SESSION_COOKIE), undefined);
  assert.equal(
    serializeCookie("n", "v", { maxAge: 10, secure: false }),
    "n=v; HttpOnly; SameSite=Strict; Path=/; Max-Age=10",
  );
  assert.match(serializeCookie("n", "v", { maxAge: 0, secure: true }), /; Secure$/);
});

async function login(admin: AdminHarness): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const r = await admin.call<{ csrfToken: string; expiresAt: string }>("POST", "/console/session", {
    token: null,
    body: { token: TEST_TOKEN },
  });
  assert.equal(r.status, 201, r.text);
  const setCookie = r.headers.get("set-cookie") ?? "";
  const value = /^portcullis_session=([^;]+)/.exec(setCookie)?.[1];
  assert.ok(value, setCookie);
  return { cookie: `${SESSION_COOKIE}=${value}`, csrf: r.json.csrfToken, setCookie };
}

describe("console sessions over HTTP", () => {
  let admin: AdminHarness;
  before(async () => {
    admin = await startAdmin({ console: { sessionTtl: 3_600_000, maxSessions: 8 } });
    await admin.store.create({ id: "device-1" });
  });
  after(() => admin.close());

  test("login answers 201 with the CSRF token and an HttpOnly, SameSite=Strict session cookie", async () => {
    const r = await admin.call<{ csrfToken: string; expiresAt: string }>("POST", "/console/session", {
      token: null,
      body: { token: TEST_TOKEN },
    });
    assert.equal(r.status, 201);
    assert.match(r.json.csrfToken, /^[A-Za-z0-9_-]{43}$/);
    const expires = Date.parse(r.json.expiresAt);
    assert.ok(Math.abs(expires - (Date.now() + 3_600_000)) < 10_000);
    const cookie = r.headers.get("set-cookie") ?? "";
    assert.match(
      cookie,
      /^portcullis_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=3600$/,
    );
    assert.equal(r.headers.get("cache-control"), "no-store");
  });

  test("a wrong or missing token is 401 Unauthorized, and sets no cookie", async () => {
    for (const body of [{ token: "wrong-token-wrong-token" }, {}, { token: 5 }]) {
      const r = await admin.call("POST", "/console/session", { token: null, body });
      assert.equal(r.status, 401);
      assert.deepEqual(r.json, { message: "Unauthorized" });
      assert.equal(r.headers.get("set-cookie"), null);
    }
  });

  test("the cookie authenticates GETs; GET /console/session tells the CSRF token back", async () => {
    const { cookie, csrf } = await login(admin);
    const devices = await admin.call("GET", "/devices", { token: null, headers: { cookie } });
    assert.equal(devices.status, 200);
    const session = await admin.call<{ csrfToken: string }>("GET", "/console/session", {
      token: null,
      headers: { cookie },
    });
    assert.equal(session.status, 200);
    assert.equal(session.json.csrfToken, csrf);
    const none = await admin.call("GET", "/console/session", { token: null });
    assert.equal(none.status, 401);
    const bogus = await admin.call("GET", "/devices", {
      token: null,
      headers: { cookie: `${SESSION_COOKIE}=${"A".repeat(43)}` },
    });
    assert.equal(bogus.status, 401);
  });

  test("a change with the cookie needs the session's X-CSRF-Token and the own Origin", async () => {
    const { cookie, csrf } = await login(admin);
    const patch = (headers: Record<string, string>) =>
      admin.call("PATCH", "/devices/device-1", {
        token: null,
        headers: { cookie, ...headers },
        body: { groups: ["g"] },
      });
    const missing = await patch({});
    assert.equal(missing.status, 403);
    assert.deepEqual(missing.json, { message: "Missing or invalid CSRF token" });
    assert.equal((await patch({ "x-csrf-token": "wrong" })).status, 403);
    const other = await login(admin);
    assert.equal((await patch({ "x-csrf-token": other.csrf })).status, 403, "another session's token");
    const foreign = await patch({ "x-csrf-token": csrf, origin: "http://evil.example" });
    assert.equal(foreign.status, 403);
    assert.deepEqual(foreign.json, { message: "Cross-origin request refused" });
    assert.equal((await patch({ "x-csrf-token": csrf })).status, 200);
    const host = new URL(admin.url).host;
    assert.equal((await patch({ "x-csrf-token": csrf, origin: `http://${host}` })).status, 200);
    // The bearer token needs no CSRF token (unchanged).
    assert.equal((await admin.call("PATCH", "/devices/device-1", { body: { groups: [] } })).status, 200);
  });

  test("logout ends the session and clears the cookie; it needs the CSRF token too", async () => {
    const { cookie, csrf } = await login(admin);
    assert.equal(
      (await admin.call("DELETE", "/console/session", { token: null, headers: { cookie } })).status,
      403,
    );
    const out = await admin.call("DELETE", "/console/session", {
      token: null,
      headers: { cookie, "x-csrf-token": csrf },
    });
    assert.equal(out.status, 204);
    assert.match(
      out.headers.get("set-cookie") ?? "",
      /^portcullis_session=; HttpOnly; SameSite=Strict; Path=\/; Max-Age=0$/,
    );
    assert.equal((await admin.call("GET", "/status", { token: null, headers: { cookie } })).status, 401);
  });

  test("a login from a foreign Origin is refused", async () => {
    const r = await admin.call("POST", "/console/session", {
      token: null,
      body: { token: TEST_TOKEN },
      headers: { origin: "http://evil.example" },
    });
    assert.equal(r.status, 403);
  });
});

test("failed logins from one address: the 11th within a minute is 429 with Retry-After", async () => {
  const admin = await startAdmin();
  try {
    for (let i = 0; i < 10; i++) {
      const r = await admin.call("POST", "/console/session", { token: null, body: { token: `wrong-${i}` } });
      assert.equal(r.status, 401);
    }
    const limited = await admin.call("POST", "/console/session", {
      token: null,
      body: { token: TEST_TOKEN },
    });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get("retry-after")) > 0);
    assert.equal((await admin.call("GET", "/status")).status, 200, "the bearer token is not limited");
  } finally {
    await admin.close();
  }
});

test("admin.console.enabled false: no session routes, no console files, cookies not accepted", async () => {
  const on = await startAdmin();
  const { cookie } = await login(on);
  await on.close();
  const admin = await startAdmin({ console: { enabled: false } });
  try {
    const r = await admin.call("POST", "/console/session", { body: { token: TEST_TOKEN } });
    assert.equal(r.status, 404);
    assert.equal((await admin.call("GET", "/console/")).status, 404);
    assert.equal((await admin.call("GET", "/console/", { token: null })).status, 401);
    assert.equal((await admin.call("GET", "/status", { token: null, headers: { cookie } })).status, 401);
  } finally {
    await admin.close();
  }
});
