// The schemas and shared error responses of the admin API's OpenAPI document. Request bodies are derived
// from the zod schemas that validate them, so the document cannot drift from what is accepted.
import { z } from "zod";
import { REASONS } from "../identity/reasons.ts";
import { BINDING_KINDS, DEVICE_STATUSES } from "../registry/types.ts";
import { devicePatchInput, newDeviceInput } from "./validation.ts";

export type Json = Record<string, unknown>;

export const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
export const json = (schema: Json): Json => ({ "application/json": { schema } });

function requestSchema(schema: z.ZodType): Json {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Json;
  return rest;
}

const dateTime = { type: "string", format: "date-time" };

export const schemas: Record<string, Json> = {
  Binding: {
    type: "object",
    description:
      "How a certificate maps to a device. fingerprint: SHA-256 of the DER, lower-case hex; spki: SHA-256 of the SubjectPublicKeyInfo, base64; cn, uri, dns: exact subject CN or SAN value.",
    properties: { kind: { type: "string", enum: [...BINDING_KINDS] }, value: { type: "string" } },
    required: ["kind", "value"],
    additionalProperties: false,
  },
  Device: {
    type: "object",
    properties: {
      id: { type: "string" },
      status: { type: "string", enum: [...DEVICE_STATUSES] },
      bindings: { type: "array", items: ref("Binding") },
      groups: { type: "array", items: { type: "string" } },
      metadata: { type: "object", additionalProperties: true },
      createdAt: dateTime,
      updatedAt: dateTime,
      lastSeenAt: { oneOf: [dateTime, { type: "null" }] },
      version: {
        type: "integer",
        minimum: 1,
        description: "Increases on every change; the ETag and If-Match value.",
      },
    },
    required: [
      "id",
      "status",
      "bindings",
      "groups",
      "metadata",
      "createdAt",
      "updatedAt",
      "lastSeenAt",
      "version",
    ],
    additionalProperties: false,
  },
  NewDevice: {
    ...requestSchema(newDeviceInput),
    description: "status defaults to active; a PEM certificate adds its fingerprint and spki bindings.",
  },
  DevicePatch: {
    ...requestSchema(devicePatchInput),
    description:
      "At least one of status, bindings (replaces all), groups (replaces all), metadata (replaces).",
  },
  DevicePage: {
    type: "object",
    properties: {
      devices: { type: "array", items: ref("Device") },
      next: { type: ["string", "null"], description: "Pass as `after` for the next page; null on the last." },
    },
    required: ["devices", "next"],
  },
  FieldError: {
    type: "object",
    properties: { path: { type: "string", examples: ["bindings[0].kind"] }, message: { type: "string" } },
    required: ["path", "message"],
  },
  Error: {
    type: "object",
    properties: { message: { type: "string" }, errors: { type: "array", items: ref("FieldError") } },
    required: ["message"],
  },
  LineError: {
    type: "object",
    properties: {
      line: { type: "integer", minimum: 1 },
      path: { type: "string" },
      message: { type: "string" },
    },
    required: ["line", "message"],
  },
  ImportResult: {
    type: "object",
    properties: { imported: { type: "integer", minimum: 0 } },
    required: ["imported"],
  },
  ImportFailure: {
    type: "object",
    properties: {
      message: { type: "string" },
      imported: { const: 0 },
      errors: { type: "array", items: ref("LineError"), description: "The first 100 problems." },
      errorCount: { type: "integer", description: "Every problem found, listed or not." },
    },
    required: ["message", "imported", "errors"],
  },
  StoreHealth: {
    type: "object",
    properties: {
      kind: { type: "string", enum: ["sqlite", "postgres"] },
      ok: { type: "boolean" },
      error: { type: "string" },
      since: dateTime,
    },
    required: ["kind", "ok", "since"],
  },
  Status: {
    type: "object",
    properties: {
      status: { type: "string", enum: ["ok", "draining"] },
      version: { type: "string" },
      uptimeSeconds: { type: "integer" },
      configGeneration: { type: "integer", description: "Increases with every successful reload." },
      worker: {
        type: "integer",
        description: "Under --workers without a primary admin: the worker that answered.",
      },
      workers: { type: "integer", description: "Under --workers: the workers running." },
      lastReload: {
        type: "object",
        description:
          "The last reload (SIGHUP or a changed file), absent before the first. error: the new config was rejected and the old one keeps serving.",
        properties: {
          result: { type: "string", enum: ["ok", "error"] },
          at: dateTime,
          error: { type: "string" },
        },
        required: ["result", "at"],
      },
      listeners: {
        type: "array",
        items: {
          type: "object",
          properties: {
            name: { type: "string" },
            address: { type: "string" },
            port: { type: "integer" },
            clientAuth: { type: "string", enum: ["handshake", "application", "off"] },
          },
          required: ["name", "address", "port", "clientAuth"],
        },
      },
      store: ref("StoreHealth"),
      connections: {
        type: "object",
        description: "Open device connections on every listener (under --workers, the sum of the workers')",
        properties: { open: { type: "integer" } },
        required: ["open"],
      },
    },
    required: ["status", "version", "uptimeSeconds", "listeners", "store"],
  },
  Decision: {
    type: "object",
    properties: {
      at: dateTime,
      listener: { type: "string" },
      route: { type: "string" },
      host: { type: "string" },
      sni: { type: "string" },
      allow: { type: "boolean" },
      enforced: { type: "boolean", description: "False when report-only let a denial through." },
      reason: { type: "string", enum: Object.keys(REASONS) },
      detail: { type: "string" },
      fingerprint: { type: "string" },
      subject: { type: "string" },
      deviceId: { type: "string" },
      resumed: { type: "boolean" },
      worker: { type: "integer", description: "Under --workers: the worker that decided." },
    },
    required: ["at", "listener", "allow", "enforced"],
  },
  DecisionList: {
    type: "object",
    properties: { decisions: { type: "array", items: ref("Decision"), description: "Newest first." } },
    required: ["decisions"],
  },
};

const errorResponse = (description: string): Json => ({ description, content: json(ref("Error")) });

export const responses: Record<string, Json> = {
  BadRequest: errorResponse("Malformed JSON, or invalid query parameters (with field paths)"),
  Unauthorized: {
    description: "Missing or wrong bearer token",
    headers: { "WWW-Authenticate": { schema: { type: "string" } } },
    content: json(ref("Error")),
  },
  NotFound: errorResponse("No such device"),
  Conflict: errorResponse("The device exists already, or changed since the version given"),
  TooLarge: errorResponse("Request body over the limit"),
  UnsupportedMediaType: errorResponse("Wrong content type"),
  Unprocessable: errorResponse(
    "The document failed validation; `errors` lists each problem with its field path",
  ),
  StoreUnavailable: {
    description: "The device store cannot be reached",
    headers: { "Retry-After": { schema: { type: "integer" } } },
    content: json(ref("Error")),
  },
};
