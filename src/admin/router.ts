// The admin API's routing table on find-my-way. Routes are declared here with their OpenAPI-style path, so
// the table can be listed (and checked against /openapi.json); a path known under other methods gets 405.
import type { IncomingMessage, ServerResponse } from "node:http";
import FindMyWay from "find-my-way";

export const METHODS = ["GET", "POST", "PATCH", "DELETE"] as const;
export type Method = (typeof METHODS)[number];

export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Path parameters, decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** performance.now() at arrival, for the latency header. */
  readonly startedAt: number;
}

export type Handler = (exchange: Exchange) => Promise<void> | void;

export interface RouteInfo {
  readonly method: Method;
  /** OpenAPI form: `/devices/{id}`. */
  readonly path: string;
}

export type Match =
  | { readonly kind: "found"; readonly handler: Handler; readonly params: Record<string, string> }
  | { readonly kind: "wrong-method"; readonly allow: readonly string[] }
  | { readonly kind: "not-found" };

/** `/devices/{id}` → `/devices/:id` (find-my-way's syntax). */
function toRouterPath(path: string): string {
  return path.replace(/\{([A-Za-z0-9_]+)\}/g, ":$1");
}

export class AdminRouter {
  readonly #router = FindMyWay({ ignoreTrailingSlash: true, maxParamLength: 512 });
  readonly #routes: RouteInfo[] = [];

  add(method: Method, path: string, handler: Handler): void {
    // find-my-way's handler has its own signature; ours travels as the route's store.
    this.#router.on(method, toRouterPath(path), () => undefined, handler);
    this.#routes.push({ method, path });
  }

  /** Every route, as registered. */
  routes(): readonly RouteInfo[] {
    return this.#routes;
  }

  /** HEAD is answered as GET (Node leaves the body out). */
  match(method: string, path: string): Match {
    const wanted = method === "HEAD" ? "GET" : method;
    if ((METHODS as readonly string[]).includes(wanted)) {
      const found = this.#router.find(wanted as Method, path);
      if (found) {
        const params: Record<string, string> = {};
        for (const [name, value] of Object.entries(found.params))
          if (value !== undefined) params[name] = value;
        return { kind: "found", handler: found.store as Handler, params };
      }
    }
    const allow = METHODS.filter((m) => this.#router.find(m, path) !== null);
    if (allow.length === 0) return { kind: "not-found" };
    return { kind: "wrong-method", allow: allow.includes("GET") ? [...allow, "HEAD"] : allow };
  }
}
