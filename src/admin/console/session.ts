// Console sessions over the admin API: POST /console/session exchanges the admin token for an HttpOnly,
// SameSite=Strict cookie and a CSRF token; GET tells the session's CSRF token back; DELETE ends it. A request
// carrying the cookie instead of the bearer token must, unless it is GET or HEAD, send the CSRF token in
// X-CSRF-Token and, when it sends an Origin, come from the admin listener's own origin.
import type { IncomingMessage, ServerResponse } from "node:http";
import { z } from "zod";
import { sendJson } from "../../gateway/respond.ts";
import { readJson } from "../body.ts";
import { HttpError } from "../errors.ts";
import type { AdminRouter } from "../router.ts";
import { readCookie, SESSION_COOKIE, serializeCookie } from "./cookies.ts";
import { LoginLimiter, type LoginLimits } from "./login-limiter.ts";
import { type Session, type SessionLimits, SessionStore, sameSecret } from "./session-store.ts";

export const SESSION_PATH = "/console/session";

/** The session route (with or without a trailing slash, as the router matches it). */
export function isSessionPath(pathname: string): boolean {
  return pathname === SESSION_PATH || pathname === `${SESSION_PATH}/`;
}
export const CSRF_HEADER = "x-csrf-token";

const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD"]);

const loginBody = z.object({ token: z.string().max(4096) });

export const UNAUTHORIZED_HEADERS = { "www-authenticate": 'Bearer realm="portcullis"' };

export function unauthorized(): HttpError {
  return new HttpError(401, "Unauthorized", { headers: UNAUTHORIZED_HEADERS });
}

export interface ConsoleSessionsOptions {
  readonly token: string;
  /** The admin listener speaks TLS: cookies get `Secure`, the own origin is https. */
  readonly secure: boolean;
  readonly limits?: SessionLimits;
  readonly loginLimits?: LoginLimits;
  readonly now?: () => number;
  /** Called when a session is ended by logout (the live streams opened with it end too). */
  readonly ended?: () => void;
}

export class ConsoleSessions {
  readonly store: SessionStore;
  readonly #limiter: LoginLimiter;
  readonly #token: string;
  readonly #secure: boolean;
  readonly #ended: () => void;

  constructor(options: ConsoleSessionsOptions) {
    this.#ended = options.ended ?? (() => undefined);
    this.store = new SessionStore(options.limits, options.now);
    this.#limiter = new LoginLimiter(options.loginLimits, options.now);
    this.#token = options.token;
    this.#secure = options.secure;
  }

  /** The session the request's cookie names, if live. */
  sessionOf(req: IncomingMessage): { id: string; session: Session } | undefined {
    const id = readCookie(req.headers.cookie, SESSION_COOKIE);
    const session = this.store.use(id);
    return id !== undefined && session !== undefined ? { id, session } : undefined;
  }

  /**
   * Authorizes a request by its session cookie: true when it has a live session and, for a change, the right
   * CSRF token and origin (else 403); false when it has no live session.
   */
  authorize(req: IncomingMessage): boolean {
    const found = this.sessionOf(req);
    if (found === undefined) return false;
    if (!SAFE_METHODS.has(req.method ?? "GET")) this.#checkChange(req, found.session);
    return true;
  }

  /** An Origin header, when sent, must be this listener's own origin (scheme and Host). */
  checkOrigin(req: IncomingMessage): void {
    const origin = req.headers.origin;
    if (origin === undefined) return;
    const own = `${this.#secure ? "https" : "http"}://${req.headers.host ?? ""}`;
    if (origin.toLowerCase() !== own.toLowerCase()) {
      throw new HttpError(403, "Cross-origin request refused");
    }
  }

  #checkChange(req: IncomingMessage, session: Session): void {
    this.checkOrigin(req);
    const sent = req.headers[CSRF_HEADER];
    if (typeof sent !== "string" || !sameSecret(sent, session.csrfToken)) {
      throw new HttpError(403, "Missing or invalid CSRF token");
    }
  }

  #cookie(value: string, maxAge: number): string {
    return serializeCookie(SESSION_COOKIE, value, { maxAge, secure: this.#secure });
  }

  async #login(req: IncomingMessage, res: ServerResponse, startedAt: number): Promise<void> {
    this.checkOrigin(req);
    const address = req.socket.remoteAddress ?? "";
    const wait = this.#limiter.retryAfter(address);
    if (wait !== undefined) {
      throw new HttpError(429, "Too many failed logins: try again later", {
        headers: { "retry-after": String(wait) },
      });
    }
    const parsed = loginBody.safeParse(await readJson(req));
    if (!parsed.success || !sameSecret(parsed.data.token, this.#token)) {
      this.#limiter.fail(address);
      throw unauthorized();
    }
    const { id, session } = this.store.create();
    const maxAge = Math.floor(this.store.limits.ttlMs / 1000);
    sendJson(res, 201, describe(session), startedAt, {
      "set-cookie": this.#cookie(id, maxAge),
      "cache-control": "no-store",
    });
  }

  register(router: AdminRouter): void {
    router.add("POST", SESSION_PATH, ({ req, res, startedAt }) => this.#login(req, res, startedAt));

    router.add("GET", SESSION_PATH, ({ req, res, startedAt }) => {
      const found = this.sessionOf(req);
      if (found === undefined) throw unauthorized();
      sendJson(res, 200, describe(found.session), startedAt, { "cache-control": "no-store" });
    });

    router.add("DELETE", SESSION_PATH, ({ req, res }) => {
      const found = this.sessionOf(req);
      if (found === undefined) throw unauthorized();
      this.#checkChange(req, found.session);
      this.store.delete(found.id);
      this.#ended();
      res.writeHead(204, { "set-cookie": this.#cookie("", 0), "cache-control": "no-store" });
      res.end();
    });
  }
}

function describe(session: Session): { csrfToken: string; expiresAt: string } {
  return { csrfToken: session.csrfToken, expiresAt: new Date(session.expiresAt).toISOString() };
}
