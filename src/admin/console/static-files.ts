// The console's built assets (dist/console/) under /console/: no token needed (they hold no data), a strict
// Content-Security-Policy and the other security headers on every answer, index.html never cached, hashed
// assets cached for a year. A path leaving the directory is answered 404; a missing build 503.
import { readFile, stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { extname, join, resolve, sep } from "node:path";
import { elapsedMs, LATENCY_HEADER } from "../../gateway/respond.ts";
import { isSessionPath } from "./session.ts";

export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CONSOLE_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
  ".txt": "text/plain; charset=utf-8",
};

const IMMUTABLE = "public, max-age=31536000, immutable";

/** Whether the static handler answers this path: /console and everything below but the session route. */
export function isStaticPath(pathname: string): boolean {
  if (isSessionPath(pathname)) return false;
  return pathname === "/console" || pathname.startsWith("/console/");
}

function send(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  body: string | Buffer,
  startedAt: number,
): void {
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "content-length": String(Buffer.byteLength(body)),
    [LATENCY_HEADER]: elapsedMs(startedAt),
    ...headers,
  });
  res.end(body);
}

function sendError(res: ServerResponse, status: number, message: string, startedAt: number, extra = {}) {
  send(
    res,
    status,
    { "content-type": "application/json; charset=utf-8", "cache-control": "no-store", ...extra },
    JSON.stringify({ message }),
    startedAt,
  );
}

/** The file under `root` a URL path names, or undefined when it is not a plain relative path inside it. */
export function resolveInside(root: string, urlPath: string): string | undefined {
  let relative: string;
  try {
    relative = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (relative.includes("\0") || relative.includes("\\")) return undefined;
  const segments = relative.split("/");
  if (segments.some((s) => s === ".." || s === "." || s.startsWith("."))) return undefined;
  const base = resolve(root);
  const file = resolve(base, ...segments.filter((s) => s !== ""));
  return file.startsWith(base + sep) ? file : undefined;
}

export class ConsoleFiles {
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
  }

  async serve(method: string, pathname: string, res: ServerResponse, startedAt: number): Promise<void> {
    if (method !== "GET" && method !== "HEAD") {
      sendError(res, 405, "Method not allowed", startedAt, { allow: "GET, HEAD" });
      return;
    }
    if (pathname === "/console") {
      send(res, 301, { location: "/console/", "cache-control": "no-store" }, "", startedAt);
      return;
    }
    const index = join(this.#root, "index.html");
    if (!(await isFile(index))) {
      sendError(res, 503, "console not built: run npm run build", startedAt);
      return;
    }
    const rest = pathname.slice("/console/".length);
    const file = rest === "" || rest === "index.html" ? index : resolveInside(this.#root, rest);
    if (file === undefined || !(await isFile(file))) {
      sendError(res, 404, "Not found", startedAt);
      return;
    }
    const body = await readFile(file);
    const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? "application/octet-stream";
    const cache = file === index || !rest.startsWith("assets/") ? "no-store" : IMMUTABLE;
    send(res, 200, { "content-type": type, "cache-control": cache }, body, startedAt);
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
