// The one name-normalisation function. SNI context choice, routing, policy lookup and the SNI/Host
// binding all use it, so that two spellings of a name can never select different policies.
import { isIP } from "node:net";
import { domainToASCII } from "node:url";

/**
 * Canonical form of a host name, SNI value or Host/:authority header: port removed, lower case, no
 * trailing dot, IDNA to ASCII; IPv6 literals without brackets. Undefined when it is not a valid name.
 */
export function normalizeName(raw: string | undefined | null | false): string | undefined {
  if (typeof raw !== "string") return undefined;
  // Every handshake and request normalises a name, nearly always one of a few: remembered (bounded, so
  // that names a client makes up only cost their own normalisation).
  const known = normalized.get(raw);
  if (known !== undefined || normalized.has(raw)) return known;
  const name = normalizeUncached(raw);
  if (normalized.size >= MAX_REMEMBERED_NAMES) normalized.clear();
  if (raw.length <= 255) normalized.set(raw, name);
  return name;
}

const MAX_REMEMBERED_NAMES = 1024;
const normalized = new Map<string, string | undefined>();

function normalizeUncached(raw: string): string | undefined {
  let name = raw.trim();
  if (name === "") return undefined;
  if (name.startsWith("[")) {
    const end = name.indexOf("]");
    if (end < 0) return undefined;
    const rest = name.slice(end + 1);
    if (rest !== "" && !/^:\d{1,5}$/.test(rest)) return undefined;
    const v6 = name.slice(1, end).toLowerCase();
    return isIP(v6) === 6 ? v6 : undefined;
  }
  if (isIP(name) === 6) return name.toLowerCase();
  const colon = name.lastIndexOf(":");
  if (colon >= 0) {
    if (!/^\d{1,5}$/.test(name.slice(colon + 1))) return undefined;
    name = name.slice(0, colon);
  }
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name === "" || name.endsWith(".")) return undefined;
  if (isIP(name) === 4) return name;
  // domainToASCII parses a URL host and would silently cut "evil.com/x" to "evil.com": refuse such input.
  if (/[\s/?#@\\%:[\]*<>^|"'`{}]/u.test(name)) return undefined;
  // Wildcards are names in config only; a request's name never holds one.
  const ascii = domainToASCII(name.toLowerCase());
  if (ascii === "" || !/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(ascii)) return undefined;
  return ascii;
}

/** Normalises a config host pattern, which may start with "*." for one label. */
export function normalizePattern(raw: string): string | undefined {
  if (raw.startsWith("*.")) {
    const rest = normalizeName(raw.slice(2));
    return rest === undefined || isIP(rest) !== 0 ? undefined : `*.${rest}`;
  }
  return normalizeName(raw);
}

export function isIpLiteral(name: string): boolean {
  return isIP(name) !== 0;
}

/** Does a normalised name match a normalised pattern (exact, or `*.suffix` for exactly one label)? */
export function matchesPattern(name: string, pattern: string): boolean {
  if (!pattern.startsWith("*.")) return name === pattern;
  const suffix = pattern.slice(1);
  return name.endsWith(suffix) && !name.slice(0, -suffix.length).includes(".") && name.length > suffix.length;
}
