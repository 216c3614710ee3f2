// Request-target normalisation: the gateway routes on exactly the path it forwards, so a path that an
// upstream could read differently (dot segments, encoded slashes) is normalised or refused here.

export interface RequestPath {
  /** Normalised path: dot segments removed, `%2e` decoded. */
  readonly path: string;
  /** Raw query string without the `?`, or "" when absent. */
  readonly query: string;
}

const FORBIDDEN = /[\u0000-\u0020\u007f\\#]|%(2f|5c|00)/i;

/** Origin-form targets only; undefined means answer 400. */
export function normalizeRequestPath(target: string | undefined): RequestPath | undefined {
  if (target === undefined || !target.startsWith("/")) return undefined;
  const q = target.indexOf("?");
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? "" : target.slice(q + 1);
  if (FORBIDDEN.test(rawPath) || /[\u0000-\u0020\u007f#]/.test(query)) return undefined;
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
