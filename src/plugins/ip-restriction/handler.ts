// ip-restriction: refuses (403 ip_not_allowed) a client whose address is in a denied range or outside every
// allowed range. The address is the direct peer's (an IPv4-mapped IPv6 peer as its IPv4 address), never
// X-Forwarded-For.
import { TrustedProxies } from "../../proxy/trusted-proxies.ts";
import type { AccessOutcome, Plugin, PluginFactory } from "../plugin.ts";
import { type IpRestrictionConfig, ipRestrictionSchema } from "./schema.ts";

export interface AddressRule {
  /** Why the address is refused, or undefined when it passes. */
  refusal(address: string): string | undefined;
}

export function addressRule(config: IpRestrictionConfig): AddressRule {
  const allow = config.allow ? new TrustedProxies(config.allow) : undefined;
  const deny = config.deny ? new TrustedProxies(config.deny) : undefined;
  return {
    refusal(address) {
      if (deny?.has(address)) return `${address} is in a denied range`;
      if (allow && !allow.has(address)) return `${address} is outside the allowed ranges`;
      return undefined;
    },
  };
}

function create(config: IpRestrictionConfig): Plugin {
  const rule = addressRule(config);
  return {
    name: "ip-restriction",
    access(request): AccessOutcome | undefined {
      const detail = rule.refusal(request.clientAddress);
      return detail === undefined ? undefined : { kind: "deny", reason: "ip_not_allowed", detail };
    },
  };
}

export const ipRestriction: PluginFactory<typeof ipRestrictionSchema> = {
  name: "ip-restriction",
  priority: 10,
  schema: ipRestrictionSchema,
  create,
};
