// The compiled route table: host (exact, one-label wildcard, or any) then method + path through
// find-my-way. Names arrive normalised; a miss is a miss (404), never a permissive default.

import FindMyWay, { type HTTPMethod } from "find-my-way";
import type { PluginSpec } from "../config/compile-plugins.ts";
import type { AuthPolicy } from "../identity/types.ts";
import { matchesPattern } from "./names.ts";

export const ROUTE_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

export interface CompiledRoute {
  readonly name: string;
  readonly service: string;
  /** Undefined only when the route is `public: true`. */
  readonly policy: AuthPolicy | undefined;
  /**
   * Forward paths an upstream could read differently (`..;`, `%252e`, see request-path.ts) instead of refusing
   * them, as long as every reading stays on this route. Absent means false.
   */
  readonly allowAmbiguousPaths?: boolean;
  /** The route's plugins (its service's and its own), in priority order; created by the runtime. */
  readonly plugins?: readonly PluginSpec[];
}

export interface RouteSpec {
  readonly route: CompiledRoute;
  /** Normalised host patterns; undefined means any host. */
  readonly hosts: readonly string[] | undefined;
  readonly paths: readonly string[];
  readonly methods: readonly string[] | undefined;
}

export interface RouteMatch {
  readonly route: CompiledRoute;
  readonly params: Readonly<Record<string, string | undefined>>;
}

type Router = ReturnType<typeof FindMyWay>;

export class RouteConflictError extends Error {
  override name = "RouteConflictError";
}

const ANY_HOST = "*";

function newRouter(): Router {
  return FindMyWay({ caseSensitive: true, ignoreTrailingSlash: false, maxParamLength: 200 });
}

/** A path prefix matches itself and everything below it at a segment boundary. */
function expandPrefix(path: string): string[] {
  if (path.endsWith("*")) return [path];
  return path.endsWith("/") ? [path, `${path}*`] : [path, `${path}/*`];
}

export class RouteTable {
  readonly #exact = new Map<string, Router>();
  readonly #wildcards: [string, Router][] = [];
  #any: Router | undefined;

  constructor(specs: readonly RouteSpec[]) {
    for (const spec of specs) {
      const methods = (spec.methods ?? ROUTE_METHODS) as HTTPMethod[];
      for (const host of spec.hosts ?? [ANY_HOST]) {
        const router = this.#routerFor(host);
        for (const path of spec.paths.flatMap(expandPrefix)) {
          try {
            router.on(methods, path, () => {}, spec.route);
          } catch (err) {
            throw new RouteConflictError(
              `route "${spec.route.name}": ${path} on host ${host}: ${(err as Error).message}`,
            );
          }
        }
      }
    }
    // Longest suffix first, so *.a.example wins over *.example.
    this.#wildcards.sort((a, b) => b[0].length - a[0].length);
  }

  #routerFor(host: string): Router {
    if (host === ANY_HOST) {
      this.#any ??= newRouter();
      return this.#any;
    }
    if (host.startsWith("*.")) {
      const found = this.#wildcards.find(([pattern]) => pattern === host);
      if (found) return found[1];
      const router = newRouter();
      this.#wildcards.push([host, router]);
      return router;
    }
    let router = this.#exact.get(host);
    if (!router) {
      router = newRouter();
      this.#exact.set(host, router);
    }
    return router;
  }

  find(host: string, method: string, path: string): RouteMatch | undefined {
    const candidates: Router[] = [];
    const exact = this.#exact.get(host);
    if (exact) candidates.push(exact);
    for (const [pattern, router] of this.#wildcards)
      if (matchesPattern(host, pattern)) candidates.push(router);
    if (this.#any) candidates.push(this.#any);
    for (const router of candidates) {
      const found = router.find(method as HTTPMethod, path);
      if (found) return { route: found.store as CompiledRoute, params: found.params };
    }
    return undefined;
  }
}
