// The enrollment part of the admin API's OpenAPI document: token and issued-certificate paths and schemas.
import type { Json } from "./openapi-schemas.ts";

const dateTime = { type: "string", format: "date-time" };
const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json): Json => ({ "application/json": { schema } });
const errors = (...statuses: number[]): Json =>
  Object.fromEntries(
    statuses.map((s) => [
      String(s),
      {
        $ref: `#/components/responses/${
          {
            400: "BadRequest",
            401: "Unauthorized",
            404: "NotFound",
            409: "Conflict",
            413: "TooLarge",
            415: "UnsupportedMediaType",
            422: "Unprocessable",
            503: "StoreUnavailable",
          }[s]
        }`,
      },
    ]),
  );
const page = (name: string, item: string): Json => ({
  type: "object",
  properties: { [name]: { type: "array", items: ref(item) }, next: { type: ["string", "null"] } },
  required: [name, "next"],
});

export const enrollmentSchemas: Record<string, Json> = {
  EnrollmentToken: {
    type: "object",
    description: "A one-time enrollment token; the secret (`token`) is only in the answer that created it.",
    properties: {
      id: { type: "string" },
      deviceId: { type: "string" },
      profile: { type: "string" },
      createdAt: dateTime,
      expiresAt: dateTime,
      usedAt: dateTime,
      revokedAt: dateTime,
      state: { type: "string", enum: ["active", "used", "expired", "revoked"] },
      token: { type: "string", description: "`<id>.<secret>`: give it to the device (POST answer only)" },
    },
    required: ["id", "deviceId", "profile", "createdAt", "expiresAt", "state"],
  },
  NewEnrollmentToken: {
    type: "object",
    properties: {
      deviceId: { type: "string" },
      profile: { type: "string", description: "Default: the first enrollment profile" },
      ttl: {
        oneOf: [
          { type: "integer", minimum: 1 },
          { type: "string", pattern: "^\\d{1,9}(s|m|h|d)$" },
        ],
        description: "Lifetime; default the profile's bootstrap.tokens.ttl, at most its maxTtl",
      },
    },
    required: ["deviceId"],
    additionalProperties: false,
  },
  IssuedCertificate: {
    type: "object",
    properties: {
      serial: { type: "string" },
      deviceId: { type: "string" },
      profile: { type: "string" },
      fingerprint: { type: "string" },
      subject: { type: "string" },
      notBefore: dateTime,
      notAfter: dateTime,
      issuedAt: dateTime,
      operation: { type: "string", enum: ["enroll", "reenroll"] },
      state: { type: "string", enum: ["valid", "expired", "revoked"] },
      revokedAt: dateTime,
      revocationReason: { type: "string" },
      pem: { type: "string" },
    },
    required: [
      "serial",
      "deviceId",
      "profile",
      "fingerprint",
      "subject",
      "notBefore",
      "notAfter",
      "issuedAt",
      "operation",
      "state",
      "pem",
    ],
  },
};

const limitAndAfter = [
  {
    name: "after",
    in: "query",
    schema: { type: "string" },
    description: "Keyset pagination: `next` of the last page",
  },
  { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
];

export const enrollmentPaths: Record<string, Json> = {
  "/enrollment-tokens": {
    post: {
      operationId: "createEnrollmentToken",
      summary: "Issue a one-time enrollment token for a device (shown once)",
      requestBody: { required: true, content: json(ref("NewEnrollmentToken")) },
      responses: {
        201: { description: "The token, with its secret", content: json(ref("EnrollmentToken")) },
        ...errors(400, 401, 409, 413, 415, 422, 503),
      },
    },
    get: {
      operationId: "listEnrollmentTokens",
      summary: "Enrollment tokens (never their secrets)",
      parameters: [{ name: "deviceId", in: "query", schema: { type: "string" } }, ...limitAndAfter],
      responses: {
        200: { description: "A page of tokens", content: json(page("tokens", "EnrollmentToken")) },
        ...errors(400, 401, 503),
      },
    },
  },
  "/enrollment-tokens/{id}": {
    parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
    delete: {
      operationId: "revokeEnrollmentToken",
      summary: "Revoke a token (kept, in state revoked)",
      responses: {
        200: { description: "The revoked token", content: json(ref("EnrollmentToken")) },
        ...errors(401, 404, 503),
      },
    },
  },
  "/devices/{id}/certificates": {
    parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
    get: {
      operationId: "listDeviceCertificates",
      summary: "Certificates enrollment issued to a device",
      parameters: limitAndAfter,
      responses: {
        200: {
          description: "A page of certificates",
          content: json(page("certificates", "IssuedCertificate")),
        },
        ...errors(400, 401, 503),
      },
    },
  },
  "/certificates/{serial}/revoke": {
    parameters: [{ name: "serial", in: "path", required: true, schema: { type: "string" } }],
    post: {
      operationId: "revokeCertificate",
      summary: "Revoke an issued certificate: unbound at once on every node, listed on its profile's CRL",
      requestBody: {
        required: false,
        content: json({
          type: "object",
          properties: { reason: { type: "string", description: "A CRL reason, default unspecified" } },
          additionalProperties: false,
        }),
      },
      responses: {
        200: { description: "The revoked certificate", content: json(ref("IssuedCertificate")) },
        ...errors(400, 401, 404, 413, 415, 422, 503),
      },
    },
  },
};
