// Runs a route's plugins in the access phase: in priority order, each may let the request go on (adding
// response headers), deny it, or answer it; the first that does not let it go on ends the phase.
// Synchronous unless a plugin waits (a shared rate limit asking Redis).
import type { AccessOutcome, Plugin, PluginRequest } from "./plugin.ts";

export type Combined =
  | { readonly kind: "continue"; readonly headers: Record<string, string> }
  | Exclude<AccessOutcome, { kind: "continue" }>;

const NONE: Readonly<Record<string, string>> = Object.freeze({});

export function runAccess(
  plugins: readonly Plugin[],
  request: PluginRequest,
  from = 0,
  headers: Record<string, string> = {},
): Combined | Promise<Combined> {
  for (let i = from; i < plugins.length; i++) {
    const access = plugins[i]?.access;
    if (!access) continue;
    const outcome = access.call(plugins[i], request);
    if (outcome instanceof Promise) {
      return outcome.then((o) => {
        const stop = step(o, headers);
        return stop ?? runAccess(plugins, request, i + 1, headers);
      });
    }
    const stop = step(outcome, headers);
    if (stop) return stop;
  }
  return { kind: "continue", headers };
}

/** Folds one outcome in: undefined to go on (its headers added), else the outcome that ends the phase. */
function step(outcome: AccessOutcome | undefined, headers: Record<string, string>): Combined | undefined {
  if (outcome === undefined) return undefined;
  if (outcome.kind === "continue") {
    Object.assign(headers, outcome.headers ?? NONE);
    return undefined;
  }
  return outcome.kind === "deny" ? { ...outcome, headers: { ...headers, ...outcome.headers } } : outcome;
}

/** The response phase: every plugin's headers for the answer, merged over the access phase's. */
export function responseHeaders(
  plugins: readonly Plugin[],
  request: PluginRequest,
  headers: Record<string, string>,
): Record<string, string> {
  for (const plugin of plugins) {
    const extra = plugin.response?.(request);
    if (extra) Object.assign(headers, extra);
  }
  return headers;
}
