// acl: refuses (403 group_not_allowed) a device whose registry groups are denied, or not among the allowed.
// It needs an identity: a request without one (a public route) is refused too.
import type { AccessOutcome, Plugin, PluginFactory } from "../plugin.ts";
import { type AclConfig, aclSchema } from "./schema.ts";

/** Why the groups are refused, or undefined when they pass. */
export function aclRefusal(config: AclConfig, groups: readonly string[]): string | undefined {
  const denied = config.deny?.find((g) => groups.includes(g));
  if (denied !== undefined) return `the device is in the denied group "${denied}"`;
  if (config.allow !== undefined && !config.allow.some((g) => groups.includes(g))) {
    return `the device is in none of the allowed groups (${config.allow.join(", ")})`;
  }
  return undefined;
}

function create(config: AclConfig): Plugin {
  return {
    name: "acl",
    access(request): AccessOutcome | undefined {
      const { identity } = request;
      const detail =
        identity === undefined
          ? "the acl plugin needs a device, and the request has none"
          : aclRefusal(config, identity.groups ?? []);
      return detail === undefined ? undefined : { kind: "deny", reason: "group_not_allowed", detail };
    },
  };
}

export const acl: PluginFactory<typeof aclSchema> = {
  name: "acl",
  priority: 15,
  schema: aclSchema,
  create,
};
