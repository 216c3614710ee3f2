// cors: answers a preflight (OPTIONS with Origin and Access-Control-Request-Method) itself, 204, with the
// Access-Control-Allow-* headers when the origin is allowed and without them when it is not (the browser then
// blocks the call); other requests from an allowed origin get Access-Control-Allow-Origin. The access phase
// runs after authentication: on a route with a policy, a preflight (browsers send it without a client
// certificate) is refused by the policy before this plugin sees it.
import type { AccessOutcome, Plugin, PluginFactory, PluginRequest } from "../plugin.ts";
import { type CorsConfig, corsSchema } from "./schema.ts";

function header(request: PluginRequest, name: string): string | undefined {
  const value = request.req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The value of Access-Control-Allow-Origin for this origin, or undefined when it is not allowed. */
export function allowedOrigin(config: CorsConfig, origin: string | undefined): string | undefined {
  if (origin === undefined || origin === "") return undefined;
  const lower = origin.toLowerCase();
  if (config.origins.includes(lower)) return origin;
  if (config.origins.includes("*")) return config.credentials ? origin : "*";
  return undefined;
}

/** The headers of an actual (not preflight) request's answer: none when the origin is not allowed. */
export function corsHeaders(
  config: CorsConfig,
  origin: string | undefined,
): Record<string, string> | undefined {
  const allow = allowedOrigin(config, origin);
  if (allow === undefined) return undefined;
  const headers: Record<string, string> = { "access-control-allow-origin": allow };
  // The answer depends on the origin unless it is "*" for everyone.
  if (allow !== "*") headers.vary = "Origin";
  if (config.credentials) headers["access-control-allow-credentials"] = "true";
  if (config.exposeHeaders) headers["access-control-expose-headers"] = config.exposeHeaders.join(", ");
  return headers;
}

/** The headers of a preflight's 204: Vary only when the origin is not allowed. */
export function preflightHeaders(
  config: CorsConfig,
  origin: string | undefined,
  requestHeaders: string | undefined,
): Record<string, string> {
  const allow = allowedOrigin(config, origin);
  if (allow === undefined) return { vary: "Origin" };
  const headers: Record<string, string> = {
    "access-control-allow-origin": allow,
    vary: "Origin",
    "access-control-allow-methods": config.methods.join(", "),
  };
  const allowHeaders = config.headers?.join(", ") ?? requestHeaders?.trim();
  if (allowHeaders) headers["access-control-allow-headers"] = allowHeaders;
  if (config.credentials) headers["access-control-allow-credentials"] = "true";
  if (config.maxAge !== undefined) headers["access-control-max-age"] = String(config.maxAge);
  return headers;
}

export function isPreflight(request: PluginRequest): boolean {
  return (
    request.method === "OPTIONS" &&
    header(request, "origin") !== undefined &&
    header(request, "access-control-request-method") !== undefined
  );
}

function create(config: CorsConfig): Plugin {
  return {
    name: "cors",
    access(request): AccessOutcome | undefined {
      const origin = header(request, "origin");
      if (isPreflight(request)) {
        return {
          kind: "respond",
          status: 204,
          headers: preflightHeaders(config, origin, header(request, "access-control-request-headers")),
        };
      }
      // Also on a later plugin's refusal (a 429 the browser's script should be able to read).
      const headers = corsHeaders(config, origin);
      return headers ? { kind: "continue", headers } : undefined;
    },
    response: (request) => corsHeaders(config, header(request, "origin")),
  };
}

export const cors: PluginFactory<typeof corsSchema> = {
  name: "cors",
  priority: 5,
  schema: corsSchema,
  create,
};
