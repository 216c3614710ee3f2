// One-time enrollment tokens: `tok_<16 hex>.<43 base64url>` (an id to look the token up by, a 256-bit
// secret of which only the SHA-256 is stored), their constant-time check, and the token read from an EST
// request's Authorization header: Bearer, or HTTP Basic with the token as the password (RFC 7030 §3.2.3).
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export interface NewEnrollmentToken {
  /** `tok_` and 16 lower-case hex digits: public, names the token in logs and the store. */
  readonly id: string;
  /** 32 random bytes, base64url without padding: shown once, never stored. */
  readonly secret: string;
  /** What the device presents: `${id}.${secret}`. */
  readonly token: string;
  /** SHA-256 of the secret, lower-case hex: what the store keeps. */
  readonly secretHash: string;
}

export type Credentials =
  | { readonly token: string; readonly user: string | undefined }
  | { readonly error: string };

const TOKEN = /^(tok_[0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;
const HEX_SHA256 = /^[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

export function newEnrollmentToken(): NewEnrollmentToken {
  const id = `tok_${randomBytes(8).toString("hex")}`;
  const secret = randomBytes(32).toString("base64url");
  return { id, secret, token: `${id}.${secret}`, secretHash: hashSecret(secret) };
}

/** The id and secret of a well-formed token; undefined for anything else. */
export function splitToken(text: string): { id: string; secret: string } | undefined {
  const match = TOKEN.exec(text);
  if (!match) return undefined;
  return { id: match[1] ?? "", secret: match[2] ?? "" };
}

/** Whether `secret` hashes to `hash`, compared in constant time (a malformed stored hash never matches). */
export function secretMatches(secret: string, hash: string): boolean {
  if (!HEX_SHA256.test(hash)) return false;
  return timingSafeEqual(Buffer.from(hashSecret(secret), "hex"), Buffer.from(hash, "hex"));
}

function basic(encoded: string): Credentials {
  if (encoded === "" || !BASE64.test(encoded) || encoded.length % 4 !== 0) {
    return { error: "Basic credentials are not valid base64" };
  }
  let text: string;
  try {
    text = UTF8.decode(Buffer.from(encoded, "base64"));
  } catch {
    return { error: "Basic credentials are not UTF-8" };
  }
  const colon = text.indexOf(":");
  if (colon < 0) return { error: "Basic credentials hold no user:password pair" };
  const user = text.slice(0, colon);
  const token = text.slice(colon + 1);
  if (token === "") return { error: "Basic credentials have an empty password (the enrollment token)" };
  return { token, user: user === "" ? undefined : user };
}

/**
 * The enrollment token of an Authorization header: `Bearer <token>`, or `Basic base64(user:token)` whose
 * user the caller compares with the device id (undefined when empty). Undefined when there is no header;
 * `{ error }` for a malformed header or another scheme.
 */
export function credentialsOf(authorization: string | undefined): Credentials | undefined {
  if (authorization === undefined) return undefined;
  const match = /^\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?: +(\S+))?\s*$/.exec(authorization);
  if (!match) {
    return {
      error:
        authorization.trim() === "" ? "the Authorization header is empty" : "malformed Authorization header",
    };
  }
  const scheme = (match[1] ?? "").toLowerCase();
  const value = match[2];
  if (scheme !== "basic" && scheme !== "bearer") {
    return { error: `unsupported authorization scheme "${match[1]}" (use Basic or Bearer)` };
  }
  if (value === undefined) return { error: `${scheme === "basic" ? "Basic" : "Bearer"} without credentials` };
  return scheme === "bearer" ? { token: value, user: undefined } : basic(value);
}
