// The admin web console in a real browser: Debian's Chromium driven by playwright-core against a running
// demo. Logs in with the admin token, watches a denial arrive on the live stream, suspends device-001 through
// the confirmation dialog (and its next request is refused), sees the expiry chart, and checks that requests
// without the session cookie or with a bad CSRF token are refused. Screenshots go to test-results/console/.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { parseReasonCodes } from "../../console/reason-codes-plugin.ts";
import { REASONS } from "../../src/identity/reasons.ts";
import { curl } from "../helpers/clients.ts";
import { type GatewayProcess, ROOT, startDemo, tempDir } from "../helpers/gateway-process.ts";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = join(ROOT, "test-results", "console");
const TIMEOUT = 15_000;

test("the console's reason explanations, parsed from docs/reason-codes.md, cover every reason code", () => {
  const parsed = parseReasonCodes(readFileSync(join(ROOT, "docs", "reason-codes.md"), "utf8"));
  assert.deepEqual(Object.keys(parsed).sort(), Object.keys(REASONS).sort());
  for (const [code, doc] of Object.entries(parsed)) {
    const reason = REASONS[code as keyof typeof REASONS];
    assert.deepEqual([doc.status, doc.message], [reason.status, reason.message], code);
    // Plain text: no code spans or links left of the markdown.
    assert.ok(doc.when.length > 10 && !/`|\]\(/.test(doc.when), `${code}: ${doc.when}`);
  }
});

describe("the admin web console in Chromium", { timeout: 180_000 }, () => {
  const tmp = tempDir();
  let gw: GatewayProcess | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext;
  let page: Page;
  let base = "";
  let token = "";
  /** Errors the page logged (CSP violations among them), checked at the end. */
  const pageErrors: string[] = [];

  const shot = (name: string) => page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  const request = (device?: string) => curl({ port: gw?.ports.demo ?? 0, dir: tmp.dir, device });

  before(async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: the console's browser tests need Debian's Chromium (apt-get install -y chromium; .ci/run installs it)`,
    );
    assert.ok(existsSync(join(ROOT, "dist", "console", "index.html")), "npm run build first (dist/console/)");
    mkdirSync(SHOTS, { recursive: true });
    gw = await startDemo(tmp.dir);
    token = readFileSync(join(tmp.dir, "admin.token"), "utf8").trim();
    base = `http://127.0.0.1:${gw.adminPort}`;
    // playwright-core gives each launch a fresh temporary profile (--user-data-dir) of its own.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(TIMEOUT);
    page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(`page error: ${err.message}`));
    page.on("console", (message) => {
      // The refusals this test provokes (401 before login and after logout, 403 for a bad CSRF token) are
      // logged by the browser as failed resources: expected. Anything else (a CSP violation) is not.
      if (message.type() === "error" && !/status of 40[13] /.test(message.text()))
        pageErrors.push(message.text());
    });
  });

  after(async () => {
    await browser?.close();
    await gw?.stop();
    tmp.cleanup();
  });

  test("the console's page carries the strict CSP and loads no inline script or style", async () => {
    const res = await fetch(`${base}/console/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-security-policy") ?? "", /script-src 'self'; style-src 'self'/);
    const html = await res.text();
    assert.doesNotMatch(html, /<script(?![^>]*\ssrc=)[^>]*>/, "no inline <script>");
    assert.doesNotMatch(html, /<style|\sstyle=/, "no inline style");
    assert.match(html, /<script type="module" crossorigin src="\/console\/assets\/[^"]+\.js">/);
  });

  test("logs in with the admin token and shows the overview", async () => {
    await page.goto(`${base}/console/`);
    const field = page.getByLabel("Admin token");
    await field.waitFor();
    await field.fill("not-the-token");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByText("That token was not accepted.").waitFor();
    await field.fill(token);
    await shot("login");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "Overview", level: 1 }).waitFor();
    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name === "portcullis_session");
    assert.ok(session, "the session cookie is set");
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Strict");
    await page
      .getByTestId("device-total")
      .filter({ hasText: /^[1-9]/ })
      .waitFor();
    await page.locator("[data-testid=decisions-chart] canvas").waitFor();
    await shot("overview");
  });

  test("a denial of unregistered-device appears in the live stream with its explanation", async () => {
    await page.getByRole("link", { name: "Live denials" }).click();
    await page.getByTestId("stream-state").filter({ hasText: "Live" }).waitFor();
    const r = await request("unregistered-device");
    assert.equal(r.status, 401, r.body);
    const row = page.locator("[data-testid=denial][data-reason=unknown_device]").first();
    await row.waitFor();
    const text = (await row.textContent()) ?? "";
    // The explanation comes from docs/reason-codes.md, parsed at build time.
    assert.match(text, /the route requires a registered device and the certificate maps to none/);
    assert.match(text, /CN=unregistered-device/);
    await shot("denials");
  });

  test("suspending device-001 through the confirmation dialog refuses its next request", async () => {
    const before = await request("device");
    assert.equal(before.status, 200, before.body);
    await page.getByRole("link", { name: "Devices", exact: true }).click();
    await page.getByLabel("Id starts with").fill("device-00");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("link", { name: "device-001" }).click();
    await page.getByRole("heading", { name: /device-001/, level: 1 }).waitFor();
    const suspend = page.getByRole("button", { name: "Suspend" });
    const dialog = page.getByRole("dialog");
    // By keyboard: Enter opens the dialog with the focus on Cancel, Escape closes it and changes nothing.
    await suspend.focus();
    await page.keyboard.press("Enter");
    await dialog.waitFor();
    assert.equal(await page.evaluate<string>("document.activeElement.textContent"), "Cancel");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    assert.equal(await page.getByTestId("device-status").textContent(), "active");
    await suspend.click();
    await dialog.waitFor();
    assert.match((await dialog.textContent()) ?? "", /closes the device's open connections at once/);
    await shot("device-confirm");
    await dialog.getByRole("button", { name: "Suspend device-001" }).click();
    await page.getByTestId("device-status").filter({ hasText: "suspended" }).waitFor();
    await dialog.waitFor({ state: "hidden" });
    await shot("device");
    const refused = await request("device");
    assert.equal(refused.status, 403, refused.body);
    assert.equal(refused.json<{ reason: string }>().reason, "device_suspended");
  });

  test("the expiry page charts the demo devices' certificates and lists those expiring within N days", async () => {
    await page.getByRole("link", { name: "Certificate expiry" }).click();
    await page.locator("[data-testid=expiry-chart] canvas").waitFor();
    await page
      .getByTestId("expiry-total")
      .filter({ hasText: /^[1-9]/ })
      .waitFor();
    await page.getByLabel("Expiring within (days)").fill("3650");
    await page.getByRole("button", { name: "Show" }).click();
    await page.getByTestId("expiring-table").getByRole("link", { name: "device-001" }).waitFor();
    await shot("expiry");
  });

  test("the trust page lists the trust stores", async () => {
    await page.getByRole("link", { name: "Trust" }).click();
    await page.getByRole("heading", { name: "Trust", level: 1 }).waitFor();
    await page
      .getByRole("heading", { name: /^Trust store / })
      .first()
      .waitFor();
    await shot("trust");
  });

  test("at 375 px wide the overview still fits", async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    await page.getByRole("link", { name: "Overview" }).click();
    await page.locator("[data-testid=decisions-chart] canvas").waitFor();
    const overflow = await page.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
    assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
    await shot("overview-375");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test("without the session cookie a request is 401; with a bad or missing CSRF token a change is 403", async () => {
    const patch = (headers: Record<string, string>) =>
      page.evaluate(
        async ({ headers }) => {
          const res = await fetch("/devices/device-001", {
            method: "PATCH",
            headers: { "content-type": "application/json", ...headers },
            body: JSON.stringify({ status: "active" }),
            credentials: "same-origin",
          });
          return { status: res.status, body: await res.text() };
        },
        { headers },
      );
    const badCsrf = await patch({ "x-csrf-token": "not-the-csrf-token" });
    assert.equal(badCsrf.status, 403, badCsrf.body);
    assert.match(badCsrf.body, /CSRF/);
    const noCsrf = await patch({});
    assert.equal(noCsrf.status, 403, noCsrf.body);
    const noCookie = await page.evaluate(async () => {
      const res = await fetch("/status", { credentials: "omit" });
      return res.status;
    });
    assert.equal(noCookie, 401);
    // Outside the browser too: the API without cookie or bearer.
    assert.equal((await fetch(`${base}/devices/device-001`)).status, 401);
    // device-001 is still suspended: neither refused change went through.
    const still = await request("device");
    assert.equal(still.status, 403, still.body);
  });

  test("logging out ends the session", async () => {
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByLabel("Admin token").waitFor();
    const status = await page.evaluate(async () => (await fetch("/console/session")).status);
    assert.equal(status, 401);
    assert.deepEqual(pageErrors, [], "the page logged no error (no CSP violation)");
  });
});
