// Which pg errors mean "the registry cannot be reached right now" (→ StoreUnavailableError) rather than a bad request.
const NET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
]);

// Class 08 connection exception, 53 insufficient resources, 57P0x shutdowns, 57014 statement timeout.
const SQLSTATE = /^(08|53)|^57P0[1-4]$|^57014$/;

const MESSAGES =
  /timeout exceeded when trying to connect|Connection terminated|Query read timeout|connection error|Client was closed|Cannot use a pool after calling end|not queryable/i;

export function isUnavailable(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown };
  if (typeof e?.code === "string" && (NET_CODES.has(e.code) || SQLSTATE.test(e.code))) return true;
  return typeof e?.message === "string" && MESSAGES.test(e.message);
}

/** Deadlock or serialisation failure: safe to retry the whole transaction. */
export function isRetryable(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === "40P01" || code === "40001";
}

/** The constraint a unique violation hit, if that is what the error is. */
export function uniqueViolation(error: unknown): string | undefined {
  const e = error as { code?: unknown; constraint?: unknown };
  return e?.code === "23505" && typeof e.constraint === "string" ? e.constraint : undefined;
}
