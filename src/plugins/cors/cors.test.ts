import assert from "node:assert/strict";
import { test } from "node:test";
import { fakeEnv, fakeRequest } from "../testing/support.ts";
import { allowedOrigin, cors, corsHeaders, preflightHeaders } from "./handler.ts";
import { corsSchema } from "./schema.ts";

const config = corsSchema.parse({
  origins: ["https://app.example.com", "http://localhost:3000"],
  exposeHeaders: ["RateLimit", "X-Request-Id"],
  maxAge: 600,
});

test("schema: origins without a path, methods upper case", () => {
  assert.equal(corsSchema.safeParse({ origins: ["https://a.example/x"] }).success, false);
  assert.equal(corsSchema.safeParse({ origins: [] }).success, false);
  assert.equal(corsSchema.safeParse({ origins: ["*"], methods: ["get"] }).success, false);
  assert.deepEqual(corsSchema.parse({ origins: ["HTTPS://A.example"] }).origins, ["https://a.example"]);
});

test("allowedOrigin: exact (case-insensitive), *, * with credentials echoes", () => {
  assert.equal(allowedOrigin(config, "https://app.example.com"), "https://app.example.com");
  assert.equal(allowedOrigin(config, "https://APP.example.com"), "https://APP.example.com");
  assert.equal(allowedOrigin(config, "https://app.example.com:8443"), undefined);
  assert.equal(allowedOrigin(config, "https://evil.example"), undefined);
  assert.equal(allowedOrigin(config, undefined), undefined);
  const any = corsSchema.parse({ origins: ["*"] });
  assert.equal(allowedOrigin(any, "https://x.example"), "*");
  const anyCreds = corsSchema.parse({ origins: ["*"], credentials: true });
  assert.equal(allowedOrigin(anyCreds, "https://x.example"), "https://x.example");
});

test("corsHeaders: allow-origin with Vary; none for another origin", () => {
  assert.deepEqual(corsHeaders(config, "https://app.example.com"), {
    "access-control-allow-origin": "https://app.example.com",
    vary: "Origin",
    "access-control-expose-headers": "RateLimit, X-Request-Id",
  });
  assert.equal(corsHeaders(config, "https://evil.example"), undefined);
  assert.deepEqual(corsHeaders(corsSchema.parse({ origins: ["*"] }), "https://x.example"), {
    "access-control-allow-origin": "*",
  });
  assert.equal(
    corsHeaders(corsSchema.parse({ origins: ["*"], credentials: true }), "https://x")?.[
      "access-control-allow-credentials"
    ],
    "true",
  );
});

test("preflightHeaders: methods, requested headers reflected unless configured, max-age", () => {
  assert.deepEqual(preflightHeaders(config, "https://app.example.com", "content-type, x-token"), {
    "access-control-allow-origin": "https://app.example.com",
    vary: "Origin",
    "access-control-allow-methods": "GET, HEAD, PUT, PATCH, POST, DELETE",
    "access-control-allow-headers": "content-type, x-token",
    "access-control-max-age": "600",
  });
  const fixed = corsSchema.parse({ origins: ["*"], headers: ["Content-Type"], methods: ["GET"] });
  assert.deepEqual(preflightHeaders(fixed, "https://x", "x-other"), {
    "access-control-allow-origin": "*",
    vary: "Origin",
    "access-control-allow-methods": "GET",
    "access-control-allow-headers": "Content-Type",
  });
  assert.deepEqual(preflightHeaders(config, "https://evil.example", "x"), { vary: "Origin" });
});

test("plugin: a preflight is answered 204; an actual request continues with headers", () => {
  const plugin = cors.create(config, fakeEnv());
  const preflight = plugin.access?.(
    fakeRequest({
      method: "OPTIONS",
      headers: { origin: "https://app.example.com", "access-control-request-method": "POST" },
    }),
  );
  assert.ok(preflight && !(preflight instanceof Promise) && preflight.kind === "respond");
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers["access-control-allow-origin"], "https://app.example.com");
  // OPTIONS without Access-Control-Request-Method is an ordinary request.
  const options = plugin.access?.(
    fakeRequest({ method: "OPTIONS", headers: { origin: "https://app.example.com" } }),
  );
  assert.ok(options && !(options instanceof Promise) && options.kind === "continue");
  const get = fakeRequest({ headers: { origin: "https://app.example.com" } });
  assert.equal(plugin.response?.(get)?.["access-control-allow-origin"], "https://app.example.com");
  const evil = fakeRequest({ headers: { origin: "https://evil.example" } });
  assert.equal(plugin.access?.(evil), undefined);
  assert.equal(plugin.response?.(evil), undefined);
  assert.equal(plugin.response?.(fakeRequest({})), undefined, "no Origin, no CORS headers");
});
