// The OpenAPI description of the console's routes: session login/logout (when the console is on) and the
// data routes the console reads (always served: they take the bearer token as every other route).
import { DEVICE_STATUSES } from "../../registry/types.ts";
import { type Json, json, ref } from "../openapi-schemas.ts";
import { SUMMARY_MINUTES } from "./decision-summary.ts";
import { MAX_EVENT_STREAMS_TEXT } from "./event-stream.ts";

const dateTime = { type: "string", format: "date-time" };
const error = (status: string, description: string): Json => ({
  [status]: { description, content: json(ref("Error")) },
});
const unauthorized = { 401: { $ref: "#/components/responses/Unauthorized" } };
const badRequest = { 400: { $ref: "#/components/responses/BadRequest" } };
const query = (name: string, schema: Json, description: string): Json => ({
  name,
  in: "query",
  schema,
  description,
});

const filterParameters: Json[] = [
  query("reason", { type: "string" }, "Only decisions with this reason code"),
  query("route", { type: "string" }, "Only decisions of this route"),
  query("device", { type: "string" }, "Only decisions about this device id"),
  query("result", { type: "string", enum: ["allow", "deny"] }, "Only allows or only denials"),
];
export const decisionFilterParameters = filterParameters;

export const consoleSchemas: Record<string, Json> = {
  ConsoleSession: {
    type: "object",
    properties: {
      csrfToken: { type: "string", description: "Send as X-CSRF-Token on every change made with the cookie" },
      expiresAt: {
        ...dateTime,
        description: "End of the session's absolute lifetime (admin.console.sessionTtl)",
      },
    },
    required: ["csrfToken", "expiresAt"],
  },
  FleetSummary: {
    type: "object",
    properties: {
      devices: {
        type: "object",
        properties: Object.fromEntries(["total", ...DEVICE_STATUSES].map((s) => [s, { type: "integer" }])),
        required: ["total", ...DEVICE_STATUSES],
      },
    },
    required: ["devices"],
  },
  ExpiryHistogram: {
    type: "object",
    properties: {
      total: { type: "integer", description: "Certificates counted (one per device)" },
      buckets: {
        type: "array",
        description: "expired, 0–7 d, 8–30 d, 31–90 d, 91–365 d, > 365 d (whole days left)",
        items: {
          type: "object",
          properties: { label: { type: "string" }, count: { type: "integer" } },
          required: ["label", "count"],
        },
      },
    },
    required: ["total", "buckets"],
  },
  DecisionSummary: {
    type: "object",
    properties: {
      minutes: {
        type: "array",
        description: "Oldest first, one entry per minute, the current one last",
        items: {
          type: "object",
          properties: {
            at: { ...dateTime, description: "Start of the minute" },
            allow: { type: "integer" },
            deny: { type: "integer", description: "Report-only denials included" },
            reasons: {
              type: "object",
              additionalProperties: { type: "integer" },
              description: "Denials by reason code",
            },
          },
          required: ["at", "allow", "deny", "reasons"],
        },
      },
    },
    required: ["minutes"],
  },
  TrustStores: {
    type: "object",
    properties: { trustStores: { type: "array", items: ref("TrustStoreState") } },
    required: ["trustStores"],
  },
  TrustStoreState: {
    type: "object",
    properties: {
      name: { type: "string" },
      cas: {
        type: "array",
        items: {
          type: "object",
          properties: {
            subject: { type: "string" },
            issuer: { type: "string" },
            kind: { type: "string", enum: ["anchor", "intermediate"] },
            fingerprint: { type: "string", description: "SHA-256 of the DER, lower-case hex" },
            notBefore: dateTime,
            notAfter: dateTime,
            daysLeft: { type: "integer", description: "Whole days left, negative once expired" },
          },
          required: ["subject", "issuer", "kind", "fingerprint", "notBefore", "notAfter", "daysLeft"],
        },
      },
      revocation: {
        type: "object",
        properties: {
          mode: { type: "string", enum: ["off", "soft", "strict"] },
          scope: { type: "string", enum: ["leaf", "chain"] },
          crls: {
            type: "array",
            description: "The CRLs loaded whose issuer is one of the store's CAs",
            items: {
              type: "object",
              properties: {
                issuer: { type: "string" },
                source: { type: "string", description: "file:PATH or url:URL" },
                thisUpdate: dateTime,
                nextUpdate: { oneOf: [dateTime, { type: "null" }] },
                fresh: { type: "boolean", description: "Issued and not past its nextUpdate" },
                revoked: { type: "integer", description: "Revoked serials listed" },
                crlNumber: { oneOf: [{ type: "string" }, { type: "null" }] },
              },
              required: ["issuer", "source", "thisUpdate", "nextUpdate", "fresh", "revoked", "crlNumber"],
            },
          },
          sources: {
            type: "array",
            description: "Configured CRL files and URLs, and whether a CRL from each is loaded",
            items: {
              type: "object",
              properties: { source: { type: "string" }, loaded: { type: "boolean" } },
              required: ["source", "loaded"],
            },
          },
          ocsp: {
            type: "object",
            properties: {
              enabled: { type: "boolean" },
              responder: { oneOf: [{ type: "string" }, { type: "null" }] },
              maxAgeSeconds: { type: "integer" },
              cachedResponses: {
                type: "integer",
                description: "OCSP answers and remembered failures cached (shared by every store)",
              },
            },
            required: ["enabled", "responder", "maxAgeSeconds", "cachedResponses"],
          },
          error: {
            type: "string",
            description: "Why revocation data could not be loaded (--workers primary)",
          },
        },
        required: ["mode", "scope", "crls", "sources", "ocsp"],
      },
    },
    required: ["name", "cas", "revocation"],
  },
};

const sessionPaths: Record<string, Json> = {
  "/console/session": {
    post: {
      operationId: "createConsoleSession",
      summary: "Log in to the console: the admin token for a session cookie and a CSRF token",
      description:
        "No bearer token needed (the token is the body). Sets `portcullis_session` (HttpOnly, SameSite=Strict, Path=/, Max-Age; Secure over TLS). Failed logins are limited per source address (10 a minute).",
      security: [{}],
      requestBody: {
        required: true,
        content: json({
          type: "object",
          properties: { token: { type: "string" } },
          required: ["token"],
        }),
      },
      responses: {
        201: {
          description: "Logged in",
          headers: { "Set-Cookie": { schema: { type: "string" } } },
          content: json(ref("ConsoleSession")),
        },
        ...badRequest,
        ...unauthorized,
        ...error("403", "An Origin other than the admin listener's own"),
        429: {
          description: "Too many failed logins from this address",
          headers: { "Retry-After": { schema: { type: "integer" } } },
          content: json(ref("Error")),
        },
      },
    },
    get: {
      operationId: "getConsoleSession",
      summary: "The session of the cookie sent, with its CSRF token",
      security: [{ sessionCookie: [] }],
      responses: {
        200: { description: "Live session", content: json(ref("ConsoleSession")) },
        ...unauthorized,
      },
    },
    delete: {
      operationId: "deleteConsoleSession",
      summary: "Log out: the session ends and the cookie is cleared (needs X-CSRF-Token)",
      security: [{ sessionCookie: [] }],
      responses: {
        204: { description: "Logged out" },
        ...unauthorized,
        ...error("403", "Missing or invalid CSRF token, or a foreign Origin"),
      },
    },
  },
};

const dataPaths: Record<string, Json> = {
  "/fleet/summary": {
    get: {
      operationId: "getFleetSummary",
      summary: "Devices in the store, by status",
      responses: {
        200: { description: "Counts", content: json(ref("FleetSummary")) },
        ...unauthorized,
        503: { $ref: "#/components/responses/StoreUnavailable" },
      },
    },
  },
  "/fleet/expiry-histogram": {
    get: {
      operationId: "getExpiryHistogram",
      summary:
        "Days left on the certificates of /fleet/expiring (seen in the last 24 h, and enrolled), bucketed",
      responses: {
        200: { description: "Histogram", content: json(ref("ExpiryHistogram")) },
        ...badRequest,
        ...unauthorized,
        503: { $ref: "#/components/responses/StoreUnavailable" },
      },
    },
  },
  "/decisions/summary": {
    get: {
      operationId: "getDecisionSummary",
      summary: "Decisions per minute by result and deny reason, for the last minutes (kept in memory)",
      parameters: [
        query(
          "minutes",
          { type: "integer", minimum: 1, maximum: SUMMARY_MINUTES, default: SUMMARY_MINUTES },
          "How many minutes, the current one included",
        ),
      ],
      responses: {
        200: { description: "Per minute", content: json(ref("DecisionSummary")) },
        ...badRequest,
        ...unauthorized,
      },
    },
  },
  "/decisions/stream": {
    get: {
      operationId: "streamDecisions",
      summary: "Decisions as they are made, as Server-Sent Events",
      description:
        "`retry: 3000` first, then `event: decision` with a Decision as `data`, and a `: ping` comment every 15 s. " +
        "A client that does not read fast enough loses decisions: once it catches up it gets `event: dropped` " +
        `with \`{"count":n}\`. ${MAX_EVENT_STREAMS_TEXT}`,
      parameters: filterParameters,
      responses: {
        200: {
          description: "The event stream",
          content: { "text/event-stream": { schema: { type: "string" } } },
        },
        ...badRequest,
        ...unauthorized,
        429: {
          description: "Too many event streams open",
          headers: { "Retry-After": { schema: { type: "integer" } } },
          content: json(ref("Error")),
        },
      },
    },
  },
  "/trust": {
    get: {
      operationId: "getTrust",
      summary: "Trust stores with their CA certificates' expiry and their CRL and OCSP state",
      responses: { 200: { description: "Trust stores", content: json(ref("TrustStores")) }, ...unauthorized },
    },
  },
};

export function consolePaths(sessions: boolean): Record<string, Json> {
  return sessions ? { ...dataPaths, ...sessionPaths } : dataPaths;
}
