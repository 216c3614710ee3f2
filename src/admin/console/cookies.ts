// Cookie headers of the console session: reading one cookie out of a Cookie header (RFC 6265 §5.4, first
// occurrence wins) and writing the Set-Cookie of the session and of its removal.

export const SESSION_COOKIE = "portcullis_session";

/** The value of cookie `name` in a Cookie header; undefined when absent or empty. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (typeof header !== "string") return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    return value === "" ? undefined : value;
  }
  return undefined;
}

export interface CookieOptions {
  /** Seconds; 0 removes the cookie. */
  readonly maxAge: number;
  /** The admin listener speaks TLS: the browser must send the cookie over TLS only. */
  readonly secure: boolean;
}

/** `name=value; HttpOnly; SameSite=Strict; Path=/; Max-Age=n` (+ `Secure`). */
export function serializeCookie(name: string, value: string, options: CookieOptions): string {
  const parts = [`${name}=${value}`, "HttpOnly", "SameSite=Strict", "Path=/", `Max-Age=${options.maxAge}`];
  if (options.secure) parts.push("Secure");
  return parts.join("; ");
}
