// Request-target normalisation: the gateway routes on exactly the path it forwards, so a path that an
// upstream could read differently (dot segments, encoded slashes) is normalised or refused here.

export interface RequestPath {
  /** Normalised path: dot segments removed, `%2e` decoded. */
  readonly path: string;
  /** Raw query string without the `?`, or "" when absent. */
  readonly query: string;
}

/** Encoded slash, backslash or NUL: an upstream may decode them into a different path. */
const FORBIDDEN_ENCODED = /%(2f|5c|00)/i;

/** Control characters, space, DEL, and `#` (never part of a request target). */
function hasForbiddenCharacter(text: string, allowBackslash: boolean): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x23 || (c === 0x5c && !allowBackslash)) return true;
  }
  return false;
}

/** Origin-form targets only; undefined means answer 400. */
export function normalizeRequestPath(target: string | undefined): RequestPath | undefined {
  if (target === undefined || !target.startsWith("/")) return undefined;
  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q + 1);
  if (hasForbiddenCharacter(rawPath, false) || FORBIDDEN_ENCODED.test(rawPath)) return undefined;
  if (hasForbiddenCharacter(query, true)) return undefined;
  const decoded = rawPath.replace(/%2e/gi, ".");
  if (/%(?![0-9a-f]{2})/i.test(decoded)) return undefined;
  return { path: removeDotSegments(decoded), query };
}

/** RFC 3986 §5.2.4 on an absolute path. */
function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segments = path.split("/").slice(1);
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === ".") {
      if (last) out.push("");
    } else if (segment === "..") {
      out.pop();
      if (last) out.push("");
    } else {
      out.push(segment);
    }
  });
  return `/${out.join("/")}`;
}
