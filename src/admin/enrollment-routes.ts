// Enrollment in the admin API: one-time enrollment tokens (create — the only time the secret is shown —,
// list, revoke) and the certificates enrollment issued (per device; revoke one, which unbinds it at once
// on every node and puts it on its profile's CRL).
import { z } from "zod";
import { newEnrollmentToken } from "../enrollment/tokens.ts";
import { sendJson } from "../gateway/respond.ts";
import { CRL_REASONS } from "../pki/issue.ts";
import { normalizeSerial } from "../pki/store.ts";
import type { EnrollmentStore, EnrollmentToken, IssuedCertificate } from "../registry/enrollment-types.ts";
import { readJson } from "./body.ts";
import { HttpError } from "./errors.ts";
import type { AdminOptions } from "./options.ts";
import type { AdminRouter } from "./router.ts";
import {
  DEFAULT_LIST_LIMIT,
  deviceId,
  limitParam,
  MAX_LIST_LIMIT,
  parseOrThrow,
  queryObject,
} from "./validation.ts";

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A token lifetime: milliseconds, or "90s", "30m", "24h", "7d". */
const ttl = z.union([
  z.number().int().positive(),
  z
    .string()
    .regex(/^\d{1,9}(s|m|h|d)$/, 'expected a duration such as "30m", "24h" or "7d"')
    .transform((text) => Number(text.slice(0, -1)) * (DURATION_UNITS[text.slice(-1)] ?? 1)),
]);

const newTokenInput = z.strictObject({
  deviceId,
  profile: z.string().min(1).max(64).optional(),
  ttl: ttl.optional(),
});

const tokenQuery = z.strictObject({
  deviceId: deviceId.optional(),
  after: z.string().min(1).max(64).optional(),
  limit: limitParam(DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT),
});

const certificateQuery = z.strictObject({
  after: z.string().min(1).max(64).optional(),
  limit: limitParam(DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT),
});

const revokeInput = z.strictObject({
  reason: z
    .string()
    .refine((r) => CRL_REASONS.includes(r), `expected a CRL reason: ${CRL_REASONS.join(", ")}`)
    .optional(),
});

function tokenState(t: EnrollmentToken, now: Date): "active" | "used" | "expired" | "revoked" {
  if (t.revokedAt) return "revoked";
  if (t.usedAt) return "used";
  return t.expiresAt.getTime() <= now.getTime() ? "expired" : "active";
}

export function toTokenJson(t: EnrollmentToken, now = new Date()) {
  return {
    id: t.id,
    deviceId: t.deviceId,
    profile: t.profile,
    createdAt: t.createdAt.toISOString(),
    expiresAt: t.expiresAt.toISOString(),
    ...(t.usedAt ? { usedAt: t.usedAt.toISOString() } : {}),
    ...(t.revokedAt ? { revokedAt: t.revokedAt.toISOString() } : {}),
    state: tokenState(t, now),
  };
}

export function toCertificateJson(c: IssuedCertificate, now = new Date()) {
  return {
    serial: c.serial,
    deviceId: c.deviceId,
    profile: c.profile,
    fingerprint: c.fingerprint,
    subject: c.subject,
    notBefore: c.notBefore.toISOString(),
    notAfter: c.notAfter.toISOString(),
    issuedAt: c.issuedAt.toISOString(),
    operation: c.operation,
    state: c.revokedAt ? "revoked" : c.notAfter.getTime() <= now.getTime() ? "expired" : "valid",
    ...(c.revokedAt ? { revokedAt: c.revokedAt.toISOString() } : {}),
    ...(c.revocationReason ? { revocationReason: c.revocationReason } : {}),
    pem: c.pem,
  };
}

export function registerEnrollmentRoutes(
  router: AdminRouter,
  store: EnrollmentStore,
  options: AdminOptions,
): void {
  router.add("POST", "/enrollment-tokens", async ({ req, res, startedAt }) => {
    const input = parseOrThrow(newTokenInput, await readJson(req, options.maxJsonBytes), "token", 422);
    const profiles = options.enrollment?.()?.profiles ?? [];
    const profile =
      input.profile === undefined ? profiles[0] : profiles.find((p) => p.name === input.profile);
    if (!profile) {
      const known = profiles.map((p) => p.name).join(", ");
      throw new HttpError(422, "Invalid token", {
        errors: [
          {
            path: "profile",
            message: known
              ? `no enrollment profile "${input.profile}" (known: ${known})`
              : "enrollment is not configured (no enrollment profiles)",
          },
        ],
      });
    }
    if (!profile.tokens) {
      throw new HttpError(422, "Invalid token", {
        errors: [{ path: "profile", message: `profile "${profile.name}" does not enroll with tokens` }],
      });
    }
    const lifetime = input.ttl ?? profile.tokens.ttlMs;
    if (lifetime > profile.tokens.maxTtlMs) {
      throw new HttpError(422, "Invalid token", {
        errors: [
          { path: "ttl", message: `longer than the profile's maxTtl (${profile.tokens.maxTtlMs} ms)` },
        ],
      });
    }
    const fresh = newEnrollmentToken();
    const now = new Date();
    const token = await store.createEnrollmentToken({
      id: fresh.id,
      secretHash: fresh.secretHash,
      deviceId: input.deviceId,
      profile: profile.name,
      expiresAt: new Date(now.getTime() + lifetime),
    });
    sendJson(res, 201, { ...toTokenJson(token, now), token: fresh.token }, startedAt, {
      location: `/enrollment-tokens/${token.id}`,
      "cache-control": "no-store",
    });
  });

  router.add("GET", "/enrollment-tokens", async ({ res, query, startedAt }) => {
    const q = parseOrThrow(tokenQuery, queryObject(query), "query", 400);
    const page = await store.listEnrollmentTokens(q);
    const now = new Date();
    sendJson(
      res,
      200,
      { tokens: page.tokens.map((t) => toTokenJson(t, now)), next: page.next ?? null },
      startedAt,
    );
  });

  router.add("DELETE", "/enrollment-tokens/{id}", async ({ res, params, startedAt }) => {
    const token = await store.revokeEnrollmentToken(params.id ?? "", new Date());
    sendJson(res, 200, toTokenJson(token), startedAt);
  });

  router.add("GET", "/devices/{id}/certificates", async ({ res, params, query, startedAt }) => {
    const q = parseOrThrow(certificateQuery, queryObject(query), "query", 400);
    const page = await store.listIssuedCertificates({ deviceId: params.id ?? "", ...q });
    const now = new Date();
    sendJson(
      res,
      200,
      { certificates: page.certificates.map((c) => toCertificateJson(c, now)), next: page.next ?? null },
      startedAt,
    );
  });

  router.add("POST", "/certificates/{serial}/revoke", async ({ req, res, params, startedAt }) => {
    // The body is optional: a revocation without one is `unspecified`.
    const hasBody =
      req.headers["transfer-encoding"] !== undefined ||
      (req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0");
    const input = parseOrThrow(
      revokeInput,
      hasBody ? await readJson(req, options.maxJsonBytes) : {},
      "revocation",
      422,
    );
    // As OpenSSL prints it (`45:BE:F4…`) or as issued: compared in one form.
    const raw = params.serial ?? "";
    if (!/^[0-9a-fA-F:]{1,200}$/.test(raw)) {
      throw new HttpError(400, "Invalid serial", {
        errors: [{ path: "serial", message: "expected a hexadecimal serial number" }],
      });
    }
    const serial = normalizeSerial(raw);
    const revoked = await store.revokeIssuedCertificate(serial, input.reason ?? "unspecified", new Date());
    sendJson(res, 200, toCertificateJson(revoked), startedAt);
  });
}
