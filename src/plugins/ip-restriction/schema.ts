// ip-restriction's config: client address ranges (CIDR, IPv4 and IPv6, or bare addresses) allowed or denied.
import { z } from "zod";
import { parseCidr } from "../../proxy/trusted-proxies.ts";

const cidrs = z
  .array(
    z.string().refine((t) => parseCidr(t) !== undefined, { error: "expected an IP address or CIDR range" }),
  )
  .min(1)
  .max(10_000);

export const ipRestrictionSchema = z
  .strictObject({
    /** The client address must be in one of these ranges. */
    allow: cidrs.optional(),
    /** The client address must be in none of these ranges (checked first). */
    deny: cidrs.optional(),
  })
  .refine((c) => c.allow !== undefined || c.deny !== undefined, { error: "expected allow, deny or both" });

export type IpRestrictionConfig = z.output<typeof ipRestrictionSchema>;
