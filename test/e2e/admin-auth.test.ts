// Admin API authentication: the bearer token on every route the router has (and on unknown paths), then
// 404 and 405 for what is not there.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { HEALTH_PATHS } from "../../src/admin/system-routes.ts";
import { type AdminHarness, startAdmin } from "../../src/admin/testing/harness.ts";

describe("admin API: authentication", () => {
  let admin: AdminHarness;
  before(async () => {
    admin = await startAdmin();
  });
  after(() => admin.close());

  test("every route answers 401 with www-authenticate without the token or with a wrong one", async () => {
    const routes = admin.server.router.routes();
    assert.ok(routes.length >= 10);
    for (const { method, path } of routes) {
      // The probes answer without it (admin.publicHealth, default true): next test.
      if (HEALTH_PATHS.has(path)) continue;
      const concrete = path.replace("{id}", "device-1");
      for (const token of [null, "wrong-token-wrong-token-wrong", ""]) {
        const r = await admin.call(method, concrete, { token, body: method === "GET" ? undefined : {} });
        assert.equal(r.status, 401, `${method} ${concrete} with token ${token}`);
        assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="portcullis"');
        assert.deepEqual(r.json, { message: "Unauthorized" });
      }
    }
  });

  test("only the probes, /healthz and /readyz, answer without the token (they say ok or what is not ready)", async () => {
    const probes = admin.server.router
      .routes()
      .filter((r) => HEALTH_PATHS.has(r.path))
      .map((r) => r.path);
    assert.deepEqual(probes, ["/healthz", "/readyz"]);
    for (const path of probes) {
      const r = await admin.call("GET", path, { token: null });
      assert.equal(r.status, 200, path);
      assert.equal(r.text, "ok\n");
    }
  });

  test("unknown paths also need the token, then answer 404; a wrong method answers 405 with allow", async () => {
    assert.equal((await admin.call("GET", "/nope", { token: null })).status, 401);
    const missing = await admin.call("GET", "/nope");
    assert.equal(missing.status, 404);
    const wrong = await admin.call("PUT", "/devices/x", { body: {} });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET, PATCH, DELETE, HEAD");
    assert.equal((await admin.call("DELETE", "/status")).status, 405);
  });

  test("the token is accepted in any case of the Bearer scheme", async () => {
    const r = await admin.call("GET", "/status", {
      token: null,
      headers: { authorization: "bearer test-admin-token-0123456789abcdef" },
    });
    assert.equal(r.status, 200);
  });
});
