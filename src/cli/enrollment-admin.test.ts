// `portcullis tokens` and `portcullis certificates`, run in-process against a stub of the admin API's
// enrollment routes: the requests they send (method, path, query, body, bearer token), what they print
// (tables, the token shown once, --json), exit 1 with the API's message, and the command-line checks.
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, test } from "node:test";
import { type AdminIo, runCertificates, runTokens } from "./enrollment-admin.ts";
import { UsageError } from "./usage.ts";

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

const TOKEN = {
  id: "tok_0123456789abcdef",
  deviceId: "device-042",
  profile: "devices",
  createdAt: "2026-12-04T12:00:00.000Z",
  expiresAt: "2026-12-05T12:00:00.000Z",
  state: "active",
};
const CERT = {
  serial: "4a1b2c",
  deviceId: "device-042",
  profile: "devices",
  fingerprint: "ab".repeat(32),
  subject: "CN=device-042",
  notBefore: "2026-12-04T12:00:00.000Z",
  notAfter: "2027-03-04T12:00:00.000Z",
  issuedAt: "2026-12-04T12:00:00.000Z",
  operation: "enroll",
  state: "valid",
};

let server: Server;
let url: string;
const seen: Seen[] = [];
let answer: (req: Seen) => { status: number; body: unknown };

/** The contract's answers, by route. */
function routes(req: Seen): { status: number; body: unknown } {
  const path = req.url.split("?")[0];
  if (req.method === "POST" && path === "/enrollment-tokens") {
    return { status: 201, body: { ...TOKEN, token: `${TOKEN.id}.s3cret` } };
  }
  if (req.method === "GET" && path === "/enrollment-tokens") {
    const after = new URL(req.url, "http://x").searchParams.get("after");
    return after
      ? { status: 200, body: { tokens: [{ ...TOKEN, id: "tok_2", state: "used", usedAt: TOKEN.expiresAt }] } }
      : { status: 200, body: { tokens: [TOKEN], next: "tok_0123456789abcdef" } };
  }
  if (req.method === "DELETE" && path?.startsWith("/enrollment-tokens/")) {
    return { status: 200, body: { ...TOKEN, state: "revoked", revokedAt: TOKEN.createdAt } };
  }
  if (req.method === "GET" && path === "/devices/device-042/certificates") {
    return { status: 200, body: { certificates: [CERT] } };
  }
  if (req.method === "POST" && path === "/certificates/4a1b2c/revoke") {
    const reason = (req.body as { reason?: string }).reason ?? "unspecified";
    return {
      status: 200,
      body: { ...CERT, state: "revoked", revokedAt: CERT.issuedAt, revocationReason: reason },
    };
  }
  return { status: 404, body: { message: `no route ${req.method} ${path}` } };
}

async function run(command: typeof runTokens, ...args: string[]) {
  const result = { code: -1, stdout: "", stderr: "" };
  const io: AdminIo = {
    stdout: (t) => {
      result.stdout += t;
    },
    stderr: (t) => {
      result.stderr += t;
    },
  };
  result.code = await command([...args, "--url", url, "--token", "admin-secret"], io);
  return result;
}

before(async () => {
  server = createServer((req, res) => {
    let text = "";
    req.on("data", (c: Buffer) => {
      text += c.toString();
    });
    req.on("end", () => {
      const entry: Seen = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: text ? JSON.parse(text) : undefined,
      };
      seen.push(entry);
      const { status, body } = answer(entry);
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
beforeEach(() => {
  answer = routes;
  seen.length = 0;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe("portcullis tokens", () => {
  test("create: POST /enrollment-tokens; the token printed once with its id and expiry", async () => {
    const result = await run(
      runTokens,
      "create",
      "--device",
      "device-042",
      "--profile",
      "devices",
      "--ttl",
      "24h",
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(seen[0]?.method, "POST");
    assert.equal(seen[0]?.url, "/enrollment-tokens");
    assert.equal(seen[0]?.headers.authorization, "Bearer admin-secret");
    assert.deepEqual(seen[0]?.body, { deviceId: "device-042", profile: "devices", ttl: "24h" });
    assert.match(result.stdout, /^token\s+tok_0123456789abcdef\.s3cret$/m);
    assert.match(result.stdout, /^id\s+tok_0123456789abcdef$/m);
    assert.match(result.stdout, /^expires\s+2026-12-05T12:00:00.000Z$/m);
    assert.match(result.stdout, /shown only this once/);
    assert.equal(result.stdout.split("s3cret").length, 2, "the secret appears once");
  });

  test("create --json, and --ttl in milliseconds goes as a number", async () => {
    const result = await run(runTokens, "create", "--device", "device-042", "--ttl", "3600000", "--json");
    assert.deepEqual(seen[0]?.body, { deviceId: "device-042", ttl: 3_600_000 });
    assert.equal(JSON.parse(result.stdout).token, "tok_0123456789abcdef.s3cret");
  });

  test("list: a table with the state, the query, --all follows next", async () => {
    const one = await run(runTokens, "list", "--device", "device-042");
    assert.equal(one.code, 0);
    assert.equal(seen[0]?.url, "/enrollment-tokens?deviceId=device-042");
    assert.match(one.stdout, /^ID\s+DEVICE\s+PROFILE\s+STATE\s+CREATED\s+EXPIRES$/m);
    assert.match(one.stdout, /^tok_0123456789abcdef\s+device-042\s+devices\s+active\s/m);
    assert.match(one.stdout, /\(more: --after tok_0123456789abcdef, or --all\)/);
    const all = await run(runTokens, "list", "--all", "--json");
    const json = JSON.parse(all.stdout);
    assert.deepEqual(
      json.tokens.map((t: { id: string; state: string }) => `${t.id} ${t.state}`),
      ["tok_0123456789abcdef active", "tok_2 used"],
    );
    assert.equal(json.next, null);
  });

  test("revoke: DELETE /enrollment-tokens/ID", async () => {
    const result = await run(runTokens, "revoke", "tok_0123456789abcdef");
    assert.equal(result.code, 0);
    assert.equal(seen[0]?.method, "DELETE");
    assert.equal(seen[0]?.url, "/enrollment-tokens/tok_0123456789abcdef");
    assert.equal(result.stdout, "revoked tok_0123456789abcdef (device device-042)\n");
  });

  test("an API error: exit 1 with its message and status", async () => {
    answer = () => ({ status: 404, body: { message: 'device "nope" not found' } });
    const result = await run(runTokens, "create", "--device", "nope");
    assert.equal(result.code, 1);
    assert.equal(result.stderr, 'portcullis: device "nope" not found (HTTP 404)\n');
  });
});

describe("portcullis certificates", () => {
  test("list --device: GET /devices/ID/certificates as a table", async () => {
    const result = await run(runCertificates, "list", "--device", "device-042");
    assert.equal(result.code, 0, result.stderr);
    assert.equal(seen[0]?.url, "/devices/device-042/certificates");
    assert.match(result.stdout, /^SERIAL\s+STATE\s+OPERATION\s+PROFILE\s+ISSUED\s+NOT AFTER$/m);
    assert.match(
      result.stdout,
      /^4a1b2c\s+valid\s+enroll\s+devices\s+2026-12-04T12:00:00.000Z\s+2027-03-04/m,
    );
  });

  test("revoke SERIAL --reason: POST /certificates/SERIAL/revoke with the reason", async () => {
    const result = await run(runCertificates, "revoke", "4a1b2c", "--reason", "keyCompromise");
    assert.equal(result.code, 0, result.stderr);
    assert.equal(seen[0]?.method, "POST");
    assert.deepEqual(seen[0]?.body, { reason: "keyCompromise" });
    assert.equal(result.stdout, "4a1b2c of device-042: revoked (keyCompromise)\n");
    await run(runCertificates, "revoke", "4a1b2c");
    assert.deepEqual(seen[1]?.body, {}, "no reason: the server's default");
  });
});

test("usage errors (exit 2), before any request", async () => {
  const cases: [typeof runTokens, string[], RegExp][] = [
    [runTokens, ["create"], /tokens create needs --device/],
    [runTokens, ["create", "--device", "d", "--ttl", "1 day"], /--ttl must be a duration/],
    [runTokens, ["revoke"], /tokens revoke needs a token id/],
    [runTokens, ["list", "--reason", "x"], /tokens list takes no --reason/],
    [runTokens, ["burn"], /unknown tokens command "burn"/],
    [runCertificates, ["list"], /certificates list needs --device/],
    [
      runCertificates,
      ["revoke", "4a", "--reason", "lost"],
      /--reason must be one of unspecified, keyCompromise/,
    ],
    [runCertificates, ["list", "--device", "d", "--limit", "ten"], /--limit must be a number/],
    [runCertificates, ["list", "--device", "d", "extra"], /unexpected argument "extra"/],
  ];
  for (const [command, args, message] of cases) {
    await assert.rejects(run(command, ...args), (err: Error) => {
      assert.ok(err instanceof UsageError, `${args.join(" ")}: ${err}`);
      assert.match(err.message, message);
      return true;
    });
  }
  assert.equal(seen.length, 0);
});
