// Every plugin Portcullis has, by name: the config compiler looks plugins up here.
import { acl } from "./acl/handler.ts";
import { cors } from "./cors/handler.ts";
import { ipRestriction } from "./ip-restriction/handler.ts";
import type { PluginFactory } from "./plugin.ts";
import { rateLimit } from "./rate-limit/handler.ts";
import { requestSizeLimit } from "./request-size-limit/handler.ts";

export const PLUGINS: ReadonlyMap<string, PluginFactory> = new Map<string, PluginFactory>(
  [cors, ipRestriction, acl, rateLimit, requestSizeLimit].map((p) => [p.name, p as PluginFactory]),
);
