// acl's config: device groups (from the registry) allowed on, or denied from, a route or service.
import { z } from "zod";

const groups = z.array(z.string().min(1).max(200)).min(1).max(1000);

export const aclSchema = z
  .strictObject({
    /** The device must be in at least one of these groups. */
    allow: groups.optional(),
    /** The device must be in none of these groups (checked first). */
    deny: groups.optional(),
  })
  .refine((c) => c.allow !== undefined || c.deny !== undefined, { error: "expected allow, deny or both" });

export type AclConfig = z.output<typeof aclSchema>;
