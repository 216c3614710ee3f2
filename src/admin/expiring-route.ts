// GET /fleet/expiring?within=30d: the devices whose certificate expires soon, soonest first — the
// certificates this node saw devices present recently, and (when the store keeps them) the certificates
// enrollment issued. With its OpenAPI path and schema.
import { z } from "zod";
import { enrolledCertificates, expiringDevices } from "../gateway/fleet-expiry.ts";
import { sendJson } from "../gateway/respond.ts";
import type { EnrollmentStore, IssuedCertificate } from "../registry/enrollment-types.ts";
import { type Json, json, ref } from "./openapi-schemas.ts";
import type { AdminOptions } from "./options.ts";
import type { AdminRouter } from "./router.ts";
import { parseOrThrow, queryObject } from "./validation.ts";

const DURATION_UNITS: Record<string, number> = { h: 3_600_000, d: 86_400_000 };
const DEFAULT_WITHIN = "30d";

const expiringQuery = z.strictObject({
  within: z
    .string()
    .regex(/^\d{1,5}(h|d)$/, 'expected a duration such as "7d", "30d" or "12h"')
    .default(DEFAULT_WITHIN)
    .transform((text) => Number(text.slice(0, -1)) * (DURATION_UNITS[text.slice(-1)] ?? 1)),
});

/**
 * The fleet's certificates expiring within `within` ms of `now` (Infinity: all), soonest first: those this
 * node saw devices present recently and, when the store keeps them, those enrollment issued.
 */
export async function fleetCertificates(
  options: Pick<AdminOptions, "fleet" | "enrollmentStore">,
  within: number,
  now: number,
): Promise<ReturnType<typeof expiringDevices>> {
  const store: Pick<EnrollmentStore, "listIssuedCertificates"> | undefined = options.enrollmentStore;
  const enrolled = store ? await enrolledCertificates(store, now) : new Map<string, IssuedCertificate>();
  return expiringDevices(options.fleet?.current(now) ?? [], enrolled, within, now);
}

export function registerExpiringRoute(
  router: AdminRouter,
  options: Pick<AdminOptions, "fleet" | "enrollmentStore">,
): void {
  router.add("GET", "/fleet/expiring", async ({ res, query, startedAt }) => {
    const { within } = parseOrThrow(expiringQuery, queryObject(query), "query", 400);
    const devices = await fleetCertificates(options, within, Date.now());
    sendJson(
      res,
      200,
      {
        within: query.get("within") ?? DEFAULT_WITHIN,
        devices: devices.map((d) => ({ ...d, notAfter: d.notAfter.toISOString() })),
      },
      startedAt,
    );
  });
}

export const expiringSchemas: Record<string, Json> = {
  ExpiringDevice: {
    type: "object",
    description:
      "A device and its best known certificate: the later-expiring of the one it presented to this node in the last 24 h and the newest valid one enrollment issued it.",
    properties: {
      deviceId: { type: "string" },
      notAfter: { type: "string", format: "date-time" },
      daysLeft: {
        type: "integer",
        description: "Whole days left (0 on the last day, negative once expired)",
      },
      source: {
        type: "string",
        enum: ["seen", "enrolled"],
        description:
          "`seen`: presented to this node (under --workers, the primary sees none); `enrolled`: issued through enrollment",
      },
      fingerprint: { type: "string", description: "SHA-256 of the certificate, lower-case hex" },
      serial: { type: "string" },
    },
    required: ["deviceId", "notAfter", "daysLeft", "source", "fingerprint", "serial"],
  },
};

export const expiringPaths: Record<string, Json> = {
  "/fleet/expiring": {
    get: {
      operationId: "listExpiringDevices",
      summary: "Devices whose certificate expires within a window, soonest first",
      parameters: [
        {
          name: "within",
          in: "query",
          schema: { type: "string", pattern: "^\\d{1,5}(h|d)$", default: DEFAULT_WITHIN },
          description: "The window: e.g. 7d, 30d, 12h",
        },
      ],
      responses: {
        200: {
          description: "The expiring devices (an expired certificate counts too)",
          content: json({
            type: "object",
            properties: {
              within: { type: "string" },
              devices: { type: "array", items: ref("ExpiringDevice") },
            },
            required: ["within", "devices"],
          }),
        },
        400: { $ref: "#/components/responses/BadRequest" },
        401: { $ref: "#/components/responses/Unauthorized" },
        503: { $ref: "#/components/responses/StoreUnavailable" },
      },
    },
  },
};
