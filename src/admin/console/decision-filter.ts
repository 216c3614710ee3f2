// The filters of GET /decisions and GET /decisions/stream: reason code, route, device and result, all
// exact matches (AND).
import { z } from "zod";
import type { DecisionRecord } from "../../gateway/decision-log.ts";

export const decisionFilterFields = {
  reason: z
    .string()
    .regex(/^[a-z0-9_]{1,64}$/, "expected a reason code, e.g. unknown_device")
    .optional(),
  route: z.string().min(1).max(256).optional(),
  device: z.string().min(1).max(256).optional(),
  result: z.enum(["allow", "deny"]).optional(),
};

export const decisionFilterQuery = z.strictObject(decisionFilterFields);

export type DecisionFilter = Partial<{
  readonly reason: string;
  readonly route: string;
  readonly device: string;
  readonly result: "allow" | "deny";
}>;

export function matchesDecision(filter: DecisionFilter, r: DecisionRecord): boolean {
  if (filter.result !== undefined && r.allow !== (filter.result === "allow")) return false;
  if (filter.reason !== undefined && r.reason !== filter.reason) return false;
  if (filter.route !== undefined && r.route !== filter.route) return false;
  if (filter.device !== undefined && r.deviceId !== filter.device) return false;
  return true;
}

export function isEmptyFilter(filter: DecisionFilter): boolean {
  return Object.values(filter).every((v) => v === undefined);
}
