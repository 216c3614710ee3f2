// The OpenAPI 3.1 description of the admin API served at GET /openapi.json. The paths are written out here
// (a test holds them to the router's routes); schemas and shared responses are in openapi-schemas.ts.
import { createRequire } from "node:module";
import { DEVICE_STATUSES } from "../registry/types.ts";
import { consolePaths, consoleSchemas, decisionFilterParameters } from "./console/openapi-console.ts";
import { expiringPaths, expiringSchemas } from "./expiring-route.ts";
import { NDJSON_TYPES } from "./import.ts";
import { enrollmentPaths, enrollmentSchemas } from "./openapi-enrollment.ts";
import { type Json, json, ref, responses, schemas } from "./openapi-schemas.ts";
import {
  DEFAULT_DECISIONS_LIMIT,
  DEFAULT_LIST_LIMIT,
  MAX_DECISIONS_LIMIT,
  MAX_LIST_LIMIT,
} from "./validation.ts";

const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };

const STATUS_OF: Record<string, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  NotFound: 404,
  Conflict: 409,
  TooLarge: 413,
  UnsupportedMediaType: 415,
  Unprocessable: 422,
  StoreUnavailable: 503,
};

/** References to shared error responses, keyed by status. */
const use = (...names: (keyof typeof responses)[]): Json =>
  Object.fromEntries(names.map((n) => [String(STATUS_OF[n]), { $ref: `#/components/responses/${n}` }]));

const deviceId = { name: "id", in: "path", required: true, schema: { type: "string" } };
const etagHeader = { ETag: { description: "The device version, quoted", schema: { type: "string" } } };
const deviceResponse = (description: string): Json => ({
  description,
  headers: etagHeader,
  content: json(ref("Device")),
});
const query = (name: string, schema: Json, description: string): Json => ({
  name,
  in: "query",
  schema,
  description,
});

const probe = (operationId: string, summary: string, failing: string): Json => ({
  get: {
    operationId,
    summary,
    description:
      "Kubernetes' conventions: `ok`, or one `[-]check failed: why` line per failing check; `?verbose` lists every check. No bearer token needed unless admin.publicHealth is false.",
    security: [{}, { bearerAuth: [] }],
    parameters: [query("verbose", { type: "string" }, "List every check, passing ones too")],
    responses: {
      200: { description: "ok", content: { "text/plain": { schema: { type: "string" } } } },
      503: { description: failing, content: { "text/plain": { schema: { type: "string" } } } },
      ...use("Unauthorized"),
    },
  },
});

const paths: Record<string, Json> = {
  "/healthz": probe("getHealthz", "Liveness: the process answers", "Not alive"),
  "/readyz": probe(
    "getReadyz",
    "Readiness: config loaded, listeners bound (not draining), device store reachable",
    "Not ready: the failing checks",
  ),
  "/status": {
    get: {
      operationId: "getStatus",
      summary: "Gateway status, listeners and device store health",
      responses: { 200: { description: "Status", content: json(ref("Status")) }, ...use("Unauthorized") },
    },
  },
  "/metrics": {
    get: {
      operationId: "getMetrics",
      summary: "Prometheus metrics",
      responses: {
        200: {
          description: "Prometheus text exposition format",
          content: { "text/plain": { schema: { type: "string" } } },
        },
        ...use("Unauthorized"),
      },
    },
  },
  "/decisions": {
    get: {
      operationId: "listDecisions",
      summary: "Recent auth decisions with reason codes, newest first",
      parameters: [
        query(
          "limit",
          { type: "integer", minimum: 1, maximum: MAX_DECISIONS_LIMIT, default: DEFAULT_DECISIONS_LIMIT },
          "At most this many",
        ),
        ...decisionFilterParameters,
      ],
      responses: {
        200: { description: "Decisions", content: json(ref("DecisionList")) },
        ...use("BadRequest", "Unauthorized"),
      },
    },
  },
  "/openapi.json": {
    get: {
      operationId: "getOpenApi",
      summary: "This document",
      responses: {
        200: { description: "OpenAPI 3.1 document", content: json({ type: "object" }) },
        ...use("Unauthorized"),
      },
    },
  },
  "/devices": {
    get: {
      operationId: "listDevices",
      summary: "Devices in id order, filtered, one page at a time (keyset pagination)",
      parameters: [
        query("status", { type: "string", enum: [...DEVICE_STATUSES] }, "Only devices with this status"),
        query("group", { type: "string" }, "Only devices in this group"),
        query(
          "binding",
          { type: "string", examples: ["fingerprint:3f1a…", "uri:spiffe://fleet/device-001"] },
          "kind:value; only the device holding this binding",
        ),
        query(
          "idPrefix",
          { type: "string", pattern: "^[A-Za-z0-9._:@-]{1,256}$" },
          "Only devices whose id starts with this (case-sensitive)",
        ),
        query("after", { type: "string" }, "The `next` of the previous page"),
        query(
          "limit",
          { type: "integer", minimum: 1, maximum: MAX_LIST_LIMIT, default: DEFAULT_LIST_LIMIT },
          "Page size",
        ),
      ],
      responses: {
        200: { description: "A page", content: json(ref("DevicePage")) },
        ...use("BadRequest", "Unauthorized", "StoreUnavailable"),
      },
    },
    post: {
      operationId: "createDevice",
      summary: "Register a device",
      requestBody: { required: true, content: json(ref("NewDevice")) },
      responses: {
        201: {
          ...deviceResponse("Created"),
          headers: { ...etagHeader, Location: { schema: { type: "string" } } },
        },
        ...use(
          "BadRequest",
          "Unauthorized",
          "Conflict",
          "TooLarge",
          "UnsupportedMediaType",
          "Unprocessable",
          "StoreUnavailable",
        ),
      },
    },
  },
  "/devices/import": {
    post: {
      operationId: "importDevices",
      summary: "Bulk import, all or nothing: one NewDevice document per line (NDJSON)",
      requestBody: {
        required: true,
        content: Object.fromEntries(
          NDJSON_TYPES.map((t) => [
            t,
            { schema: { type: "string", description: "Lines of NewDevice JSON" } },
          ]),
        ),
      },
      responses: {
        200: {
          description:
            "Every device imported. With `Accept: application/x-ndjson` (or another NDJSON type) the answer " +
            "is streamed instead: progress lines (`phase` `validating` or `writing`), then one last line " +
            "with `phase` `done` (status 200) or `failed` (the status and body of the plain answer)",
          content: {
            ...json(ref("ImportResult")),
            ...Object.fromEntries(
              NDJSON_TYPES.map((t) => [
                t,
                { schema: { type: "string", description: "Lines of progress JSON, then the result line" } },
              ]),
            ),
          },
        },
        422: {
          description: "Invalid lines, or devices or bindings that exist already; nothing imported",
          content: json(ref("ImportFailure")),
        },
        ...use("Unauthorized", "TooLarge", "UnsupportedMediaType", "StoreUnavailable"),
      },
    },
  },
  "/devices/{id}": {
    parameters: [deviceId],
    get: {
      operationId: "getDevice",
      summary: "One device",
      responses: {
        200: deviceResponse("The device"),
        ...use("Unauthorized", "NotFound", "StoreUnavailable"),
      },
    },
    patch: {
      operationId: "updateDevice",
      summary: "Change status, bindings, groups or metadata",
      parameters: [
        {
          name: "If-Match",
          in: "header",
          schema: { type: "string" },
          description: "Apply only at this version (as ifVersion)",
        },
      ],
      requestBody: { required: true, content: json(ref("DevicePatch")) },
      responses: {
        200: deviceResponse("The updated device"),
        ...use(
          "BadRequest",
          "Unauthorized",
          "NotFound",
          "Conflict",
          "TooLarge",
          "UnsupportedMediaType",
          "Unprocessable",
          "StoreUnavailable",
        ),
      },
    },
    delete: {
      operationId: "deleteDevice",
      summary: "Remove a device",
      responses: { 204: { description: "Deleted" }, ...use("Unauthorized", "NotFound", "StoreUnavailable") },
    },
  },
};

/**
 * The document; `enrollment`: the enrollment routes are served (the store keeps tokens and certificates);
 * `console`: the console's session routes are (admin.console.enabled).
 */
export function openApiDocument(served: { readonly enrollment: boolean; readonly console: boolean }): Json {
  const extraPaths = { ...expiringPaths, ...consolePaths(served.console) };
  const extraSchemas = { ...expiringSchemas, ...consoleSchemas };
  return {
    openapi: "3.1.0",
    info: {
      title: "Portcullis admin API",
      version,
      description:
        "Devices, enrollment, decisions, status and metrics of a Portcullis gateway. Every route takes the " +
        "bearer token, or the web console's session cookie (POST /console/session); with the cookie, a change " +
        "(POST, PATCH, DELETE) also needs the session's X-CSRF-Token header.",
    },
    servers: [{ url: "/" }],
    security: [{ bearerAuth: [] }],
    paths: served.enrollment ? { ...paths, ...extraPaths, ...enrollmentPaths } : { ...paths, ...extraPaths },
    components: {
      securitySchemes: {
        bearerAuth: { type: "http", scheme: "bearer", description: "The admin token (admin.tokenFile)" },
        sessionCookie: {
          type: "apiKey",
          in: "cookie",
          name: "portcullis_session",
          description: "A console session (POST /console/session); changes also need X-CSRF-Token",
        },
      },
      schemas: served.enrollment
        ? { ...schemas, ...extraSchemas, ...enrollmentSchemas }
        : { ...schemas, ...extraSchemas },
      responses,
    },
  };
}
