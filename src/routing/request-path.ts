// Request-target normalisation: the gateway routes on exactly the path it forwards, so a path that an
// upstream could read differently (dot segments, encoded slashes) is normalised or refused here.
//
// Some paths cannot be normalised to one reading: a segment `..;x` is a name to the gateway (and to RFC 3986),
// but `..` to Tomcat, Jetty or Spring, which drop `;` path parameters first; `%252e` is `%2e` to the gateway but
// `.` to an upstream that decodes twice. Such a path is marked `ambiguity`; the request handler refuses it
// unless its route opts in (`allowAmbiguousPaths`), and even then only while every reading stays on that route.

export interface Ambiguity {
  /** Why the path is ambiguous, for the 400 answer. */
  readonly detail: string;
  /** The other normalised paths an upstream could read it as (params dropped, decoded twice, or both). */
  readonly readings: readonly string[];
}

export interface RequestPath {
  /** Normalised path: dot segments removed, `%2e` decoded. */
  readonly path: string;
  /** Raw query string without the `?`, or "" when absent. */
  readonly query: string;
  /** Present only when an upstream could read the path as another one. */
  readonly ambiguity?: Ambiguity;
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
  const path = removeDotSegments(decoded);
  const ambiguity = ambiguityOf(rawPath);
  return ambiguity ? { path, query, ambiguity } : { path, query };
}

/** Only a `;`, `%3b` or `%25` can make a path ambiguous: the common path costs one scan. */
const MAYBE_AMBIGUOUS = /;|%3b|%25/i;
/** After one decoding, an escape that a second decoding turns into `.`, `/` or `\`. */
const DOUBLE_ENCODED = /%(2e|2f|5c)/i;

export const AMBIGUOUS_DOUBLE_ENCODING =
  "ambiguous request path: a double percent-encoded '.', '/' or '\\' (such as %252e, %252f, %255c), which an upstream that decodes twice reads as a dot segment or a separator";
export const AMBIGUOUS_DOT_PARAMETERS =
  "ambiguous request path: a dot segment with ';' parameters (such as '..;', '..;x', '..%3b', '%2e%2e;'), which Tomcat-, Jetty- or Spring-style upstreams read as '..' or '.'";

/** At most this many decodings are considered: `%25252e` (three) is already far beyond any real upstream. */
const MAX_DECODINGS = 4;

/** `rawPath` decoded once, twice, … until nothing changes (at most MAX_DECODINGS times). */
function decodings(rawPath: string): string[] {
  const levels: string[] = [];
  let text = rawPath;
  while (levels.length < MAX_DECODINGS) {
    const next = percentDecode(text);
    if (next === text) break;
    levels.push(next);
    text = next;
  }
  return levels.length === 0 ? [rawPath] : levels;
}

/** Why an upstream could read `rawPath` differently, or undefined. */
function ambiguityOf(rawPath: string): Ambiguity | undefined {
  if (!MAYBE_AMBIGUOUS.test(rawPath)) return undefined;
  const levels = decodings(rawPath);
  let detail: string | undefined;
  if (levels.some((text) => DOUBLE_ENCODED.test(text))) detail = AMBIGUOUS_DOUBLE_ENCODING;
  else if (levels.some(hasDotSegmentWithParameters)) detail = AMBIGUOUS_DOT_PARAMETERS;
  return detail === undefined ? undefined : { detail, readings: readingsOf(levels) };
}

/** A segment such as `..;x` or `.;`: a dot segment once its `;` parameters are dropped. */
function hasDotSegmentWithParameters(decoded: string): boolean {
  for (const segment of decoded.split(/[/\\]/)) {
    const semicolon = segment.indexOf(";");
    if (semicolon < 0) continue;
    const name = segment.slice(0, semicolon);
    if (name === "." || name === "..") return true;
  }
  return false;
}

/** Every `%XX` decoded to the byte it names (as a Latin-1 character); a `%` without two hex digits kept. */
function percentDecode(text: string): string {
  return text.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}

/** The normalised paths an upstream could read: decoded once or more, `;` parameters kept or dropped. */
function readingsOf(levels: readonly string[]): string[] {
  const readings = new Set<string>();
  for (const decoded of levels) {
    const slashes = decoded.replaceAll("\\", "/");
    for (const text of [slashes, dropParameters(slashes)]) {
      readings.add(encodeReading(removeDotSegments(text)));
    }
  }
  return [...readings];
}

function dropParameters(path: string): string {
  return path
    .split("/")
    .map((segment) => {
      const semicolon = segment.indexOf(";");
      return semicolon < 0 ? segment : segment.slice(0, semicolon);
    })
    .join("/");
}

/** A decoded reading back in request-target form, so that the router does not decode or split it again. */
function encodeReading(path: string): string {
  return path.replace(
    /[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`,
  );
}

/**
 * Whether a request for an ambiguous path may go on to `route`: undefined to proceed, else the detail of the
 * 400. A route that does not opt in refuses it; one that does still refuses a path that any reading routes
 * elsewhere (another route, or none), so an opted-in route cannot be a way onto another route.
 */
export function ambiguousPathRefusal<R>(
  target: RequestPath,
  route: R & { readonly allowAmbiguousPaths?: boolean },
  routeOf: (path: string) => R | undefined,
): string | undefined {
  const { ambiguity } = target;
  if (!ambiguity) return undefined;
  if (!route.allowAmbiguousPaths) return ambiguity.detail;
  for (const reading of ambiguity.readings) {
    if (routeOf(reading) !== route) {
      return `ambiguous request path: an upstream could read it as ${reading}, which is not on the same route`;
    }
  }
  return undefined;
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
