// Console sessions, in memory (per admin process): a random id (the cookie) and a CSRF token each, an
// absolute lifetime and an idle timeout, at most `maxSessions` at once (a new one evicts the oldest).
// Ids are kept as SHA-256 digests, so the map's lookups never compare the secret itself.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

export interface SessionLimits {
  /** Absolute lifetime, ms. */
  readonly ttlMs: number;
  /** Idle timeout, ms: a session unused this long ends. */
  readonly idleMs: number;
  readonly maxSessions: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  ttlMs: 12 * 3_600_000,
  idleMs: 30 * 60_000,
  maxSessions: 64,
};

export interface Session {
  readonly csrfToken: string;
  readonly createdAt: number;
  /** createdAt + ttl: the session ends then whatever its use. */
  readonly expiresAt: number;
  lastUsedAt: number;
}

const digest = (id: string): string => createHash("sha256").update(id).digest("base64url");

/** Compares two strings in time independent of where they differ (digests of equal length). */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(createHash("sha256").update(a).digest(), createHash("sha256").update(b).digest());
}

export class SessionStore {
  readonly #limits: SessionLimits;
  readonly #now: () => number;
  /** digest of the id → session; insertion order is creation order (the oldest first). */
  readonly #sessions = new Map<string, Session>();

  constructor(limits: SessionLimits = DEFAULT_SESSION_LIMITS, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  get size(): number {
    return this.#sessions.size;
  }

  get limits(): SessionLimits {
    return this.#limits;
  }

  /** A new session: its id (the cookie's value, 32 random bytes base64url) and the session. */
  create(): { id: string; session: Session } {
    const now = this.#now();
    this.#prune(now);
    while (this.#sessions.size >= this.#limits.maxSessions) {
      const oldest = this.#sessions.keys().next().value;
      if (oldest === undefined) break;
      this.#sessions.delete(oldest);
    }
    const id = randomBytes(32).toString("base64url");
    const session: Session = {
      csrfToken: randomBytes(32).toString("base64url"),
      createdAt: now,
      expiresAt: now + this.#limits.ttlMs,
      lastUsedAt: now,
    };
    this.#sessions.set(digest(id), session);
    return { id, session };
  }

  /** The live session of this id, its idle clock restarted; undefined (and forgotten) once expired. */
  use(id: string | undefined): Session | undefined {
    if (id === undefined || id.length > 256) return undefined;
    const key = digest(id);
    const session = this.#sessions.get(key);
    if (session === undefined) return undefined;
    const now = this.#now();
    if (this.#expired(session, now)) {
      this.#sessions.delete(key);
      return undefined;
    }
    session.lastUsedAt = now;
    return session;
  }

  delete(id: string): boolean {
    return this.#sessions.delete(digest(id));
  }

  clear(): void {
    this.#sessions.clear();
  }

  #expired(session: Session, now: number): boolean {
    return now >= session.expiresAt || now - session.lastUsedAt >= this.#limits.idleMs;
  }

  #prune(now: number): void {
    for (const [key, session] of this.#sessions) if (this.#expired(session, now)) this.#sessions.delete(key);
  }
}
