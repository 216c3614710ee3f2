// The console's static files: security headers on every answer, caching, content types, the /console
// redirect, traversal refused, 503 before a build, no token needed.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type AdminHarness, startAdmin } from "../testing/harness.ts";
import { defaultConsoleDir, packageRoot } from "./package-root.ts";
import { CONSOLE_CSP, resolveInside } from "./static-files.ts";

/** A raw GET: fetch would normalise `..` and encoded separators before sending them. */
function rawGet(url: string, path: string): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: "GET", path }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

function assertSecurityHeaders(headers: Headers | Record<string, unknown>): void {
  const get = (name: string) => (headers instanceof Headers ? headers.get(name) : headers[name]);
  assert.equal(get("content-security-policy"), CONSOLE_CSP);
  assert.equal(get("x-content-type-options"), "nosniff");
  assert.equal(get("referrer-policy"), "no-referrer");
  assert.equal(get("x-frame-options"), "DENY");
}

describe("console static files", () => {
  const dir = mkdtempSync(join(tmpdir(), "portcullis-console-"));
  let admin: AdminHarness;
  before(async () => {
    mkdirSync(join(dir, "assets"));
    writeFileSync(join(dir, "index.html"), "<!doctype html><title>console</title>");
    writeFileSync(join(dir, "assets", "index-abc123.js"), "console.log(1)");
    writeFileSync(join(dir, "assets", "index-abc123.css"), "body{}");
    writeFileSync(join(dir, "assets", "logo.svg"), "<svg/>");
    writeFileSync(join(dir, "assets", "font.woff2"), Buffer.from([0, 1]));
    writeFileSync(join(dir, "assets", "data.json"), "{}");
    writeFileSync(join(dir, "assets", "img.png"), Buffer.from([0x89]));
    writeFileSync(join(dir, ".secret"), "no");
    writeFileSync(join(tmpdir(), "portcullis-outside.txt"), "outside");
    admin = await startAdmin({ console: { dir } });
  });
  after(async () => {
    await admin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("GET /console/ is index.html, without the token, never cached, with the security headers", async () => {
    const r = await admin.call("GET", "/console/", { token: null });
    assert.equal(r.status, 200);
    assert.equal(r.text, "<!doctype html><title>console</title>");
    assert.equal(r.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(r.headers.get("cache-control"), "no-store");
    assertSecurityHeaders(r.headers);
    const head = await admin.call("HEAD", "/console/index.html", { token: null });
    assert.equal(head.status, 200);
    assert.equal(head.text, "");
  });

  test("GET /console redirects to /console/", async () => {
    const r = await fetch(`${admin.url}/console`, { redirect: "manual" });
    assert.equal(r.status, 301);
    assert.equal(r.headers.get("location"), "/console/");
    assertSecurityHeaders(r.headers);
  });

  test("assets: their content types, cached for a year", async () => {
    const types: Record<string, string> = {
      "index-abc123.js": "text/javascript; charset=utf-8",
      "index-abc123.css": "text/css; charset=utf-8",
      "logo.svg": "image/svg+xml",
      "font.woff2": "font/woff2",
      "data.json": "application/json; charset=utf-8",
      "img.png": "image/png",
    };
    for (const [file, type] of Object.entries(types)) {
      const r = await admin.call("GET", `/console/assets/${file}`, { token: null });
      assert.equal(r.status, 200, file);
      assert.equal(r.headers.get("content-type"), type, file);
      assert.equal(r.headers.get("cache-control"), "public, max-age=31536000, immutable");
      assertSecurityHeaders(r.headers);
    }
  });

  test("paths leaving the directory, dot files and unknown files are 404 (with the headers)", async () => {
    for (const path of [
      "/console/../package.json",
      "/console/assets/../../portcullis-outside.txt",
      "/console/%2e%2e/%2e%2e/portcullis-outside.txt",
      "/console/..%2f..%2fportcullis-outside.txt",
      "/console/assets/..%5c..%5cportcullis-outside.txt",
      "/console/.secret",
      "/console/assets/nope.js",
      "/console/%00",
      "/console/%E0%A4%A",
      "/console/assets",
    ]) {
      const r = await rawGet(admin.url, path);
      // `/console/../x` leaves /console/ entirely once normalised: then it is an API path needing the token.
      assert.ok(r.status === 404 || r.status === 401, `${path}: ${r.status}`);
      if (r.status === 404) assertSecurityHeaders(r.headers);
    }
  });

  test("other methods are 405", async () => {
    const r = await admin.call("POST", "/console/index.html", { token: null, body: {} });
    assert.equal(r.status, 405);
  });

  test("resolveInside keeps to the directory", () => {
    assert.equal(resolveInside("/srv/c", "assets/a.js"), "/srv/c/assets/a.js");
    assert.equal(resolveInside("/srv/c", "../x"), undefined);
    assert.equal(resolveInside("/srv/c", "a/%2e%2e/%2e%2e/x"), undefined);
    assert.equal(resolveInside("/srv/c", "a%2f..%2f..%2fx"), undefined);
    assert.equal(resolveInside("/srv/c", "a\\..\\x"), undefined);
    assert.equal(resolveInside("/srv/c", ""), undefined);
  });
});

test("before a build: 503 with how to build it", async () => {
  const admin = await startAdmin({ console: { dir: join(tmpdir(), "portcullis-no-console-here") } });
  try {
    const r = await admin.call("GET", "/console/", { token: null });
    assert.equal(r.status, 503);
    assert.deepEqual(r.json, { message: "console not built: run npm run build" });
    assertSecurityHeaders(r.headers);
  } finally {
    await admin.close();
  }
});

test("the package root is found from src/ (and the console's build goes to dist/console)", () => {
  const root = packageRoot();
  assert.equal(defaultConsoleDir(), join(root, "dist", "console"));
  assert.equal(packageRoot(join(root, "dist", "admin", "console")), root);
});
