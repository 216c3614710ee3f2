// Tests of enrollment tokens: format, hashing, constant-time matching and Authorization header parsing.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { credentialsOf, hashSecret, newEnrollmentToken, secretMatches, splitToken } from "./tokens.ts";

test("newEnrollmentToken: id, secret, token and hash fit together; every token is new", () => {
  const t = newEnrollmentToken();
  assert.match(t.id, /^tok_[0-9a-f]{16}$/);
  assert.match(t.secret, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(Buffer.from(t.secret, "base64url").length, 32);
  assert.equal(t.token, `${t.id}.${t.secret}`);
  assert.equal(t.secretHash, createHash("sha256").update(t.secret).digest("hex"));
  assert.equal(hashSecret(t.secret), t.secretHash);
  assert.deepEqual(splitToken(t.token), { id: t.id, secret: t.secret });
  const ids = new Set(Array.from({ length: 200 }, () => newEnrollmentToken().id));
  assert.equal(ids.size, 200);
});

test("splitToken is strict", () => {
  const { token, id, secret } = newEnrollmentToken();
  for (const bad of [
    "",
    id,
    `${id}.`,
    `${id}.${secret}x`,
    `${id}.${secret.slice(1)}`,
    ` ${token}`,
    `${token}\n`,
    token.replace("tok_", "TOK_"),
    token.replace(/^tok_./, "tok_G"),
    `${id}.${secret.slice(0, -1)}=`,
    `${id}:${secret}`,
  ]) {
    assert.equal(splitToken(bad), undefined, bad);
  }
});

test("secretMatches: right secret only; a malformed stored hash never matches", () => {
  const t = newEnrollmentToken();
  assert.ok(secretMatches(t.secret, t.secretHash));
  // Another last character, whatever the random one was.
  const other = t.secret.endsWith("A") ? "B" : "A";
  assert.ok(!secretMatches(`${t.secret.slice(0, -1)}${other}`, t.secretHash));
  assert.ok(!secretMatches(t.secret, t.secretHash.toUpperCase()));
  assert.ok(!secretMatches(t.secret, t.secretHash.slice(2)));
  assert.ok(!secretMatches(t.secret, ""));
});

test("credentialsOf: Bearer and Basic (the password is the token), absent header", () => {
  const { token } = newEnrollmentToken();
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  assert.equal(credentialsOf(undefined), undefined);
  assert.deepEqual(credentialsOf(`Bearer ${token}`), { token, user: undefined });
  assert.deepEqual(credentialsOf(`bearer  ${token} `), { token, user: undefined });
  assert.deepEqual(credentialsOf(`Basic ${b64(`device-042:${token}`)}`), { token, user: "device-042" });
  assert.deepEqual(credentialsOf(`BASIC ${b64(`:${token}`)}`), { token, user: undefined });
  // A password may hold colons; only the first one separates the user.
  assert.deepEqual(credentialsOf(`Basic ${b64("dev:a:b")}`), { token: "a:b", user: "dev" });
});

test("credentialsOf: malformed and unsupported headers are errors", () => {
  const cases: [string, RegExp][] = [
    ["", /empty/],
    ["   ", /empty/],
    ["Digest username=x", /malformed|unsupported/],
    ["Negotiate abc", /unsupported authorization scheme "Negotiate"/],
    ["Bearer", /Bearer without credentials/],
    ["Basic", /Basic without credentials/],
    ["Basic !!!", /not valid base64/],
    ["Basic abc", /not valid base64/],
    [`Basic ${Buffer.from("no-colon").toString("base64")}`, /no user:password/],
    [`Basic ${Buffer.from("dev:").toString("base64")}`, /empty password/],
    [`Basic ${Buffer.from([0x64, 0x3a, 0xff, 0xfe]).toString("base64")}`, /not UTF-8/],
    ["Bearer a b", /malformed/],
  ];
  for (const [header, message] of cases) {
    const got = credentialsOf(header);
    assert.ok(got && "error" in got, header);
    assert.match(got.error, message, header);
  }
});
