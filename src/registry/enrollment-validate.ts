// Input checks of the enrollment records shared by both stores, so SQLite and PostgreSQL accept exactly the same.
import { normalizeFingerprint } from "../identity/certificate.ts";
import {
  type EnrollmentTokenQuery,
  ISSUE_OPERATIONS,
  type Issuance,
  type IssuedCertificateQuery,
  type NewEnrollmentToken,
} from "./enrollment-types.ts";
import { type Binding, type DeviceStatus, InvalidDeviceError } from "./types.ts";
import {
  bindingKey,
  MAX_PAGE,
  type NormalizedDevice,
  normalizeBinding,
  normalizeNewDevice,
  normalizePatch,
  validateId,
} from "./validate.ts";

export type NewCertificate = Issuance["certificate"];

/** An issuance as the stores write it: every field checked, bindings normalised, lists present. */
export interface NormalizedIssuance {
  readonly certificate: NewCertificate;
  readonly tokenId: string | undefined;
  /** The device to create (bindings empty, they come from the issuance), or the version it must be at. */
  readonly expect: { readonly create: NormalizedDevice } | { readonly version: number };
  readonly status: DeviceStatus | undefined;
  readonly unbind: readonly Binding[];
  readonly retire: readonly { readonly binding: Binding; readonly at: Date }[];
}

const MAX_PEM = 65_536;
const MAX_SUBJECT = 8192;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

const bad = (message: string): never => {
  throw new InvalidDeviceError(message);
};

function text(value: unknown, what: string, max: number): string {
  if (typeof value !== "string" || value.length === 0) return bad(`${what} must be a non-empty string`);
  if (value.length > max) return bad(`${what} longer than ${max} characters`);
  if (CONTROL.test(value)) return bad(`${what} contains control characters`);
  return value;
}

export function validateDate(value: unknown, what: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) return bad(`${what} must be a valid Date`);
  return value;
}

function validateSerial(serial: unknown): string {
  if (typeof serial !== "string" || !/^[0-9a-f]{1,64}$/.test(serial)) {
    return bad(`serial must be lower-case hex (1 to 64 digits), got ${JSON.stringify(serial)}`);
  }
  return serial;
}

function validateFingerprint(value: unknown): string {
  const hex = typeof value === "string" ? normalizeFingerprint(value) : undefined;
  return hex ?? bad("fingerprint must be a SHA-256 in hex (64 digits)");
}

/** Kept as printed: it may be empty (a subject-less certificate named by its SANs) but it is not checked further. */
function validateSubject(subject: unknown): string {
  if (typeof subject !== "string" || subject.length > MAX_SUBJECT) {
    return bad(`subject must be a string of at most ${MAX_SUBJECT} characters`);
  }
  return subject;
}

function validateCertificate(c: NewCertificate): NewCertificate {
  if (typeof c !== "object" || c === null) return bad("certificate must be an object");
  if (!(ISSUE_OPERATIONS as readonly unknown[]).includes(c.operation)) {
    return bad(`operation must be one of ${ISSUE_OPERATIONS.join(", ")}, got ${JSON.stringify(c.operation)}`);
  }
  if (typeof c.pem !== "string" || !c.pem.includes("-----BEGIN CERTIFICATE-----") || c.pem.length > MAX_PEM) {
    return bad("pem must be a PEM certificate");
  }
  return {
    serial: validateSerial(c.serial),
    deviceId: validateId(c.deviceId),
    profile: text(c.profile, "profile", 128),
    fingerprint: validateFingerprint(c.fingerprint),
    subject: validateSubject(c.subject),
    notBefore: validateDate(c.notBefore, "notBefore"),
    notAfter: validateDate(c.notAfter, "notAfter"),
    issuedAt: validateDate(c.issuedAt, "issuedAt"),
    operation: c.operation,
    pem: c.pem,
  };
}

function validateExpect(issuance: Issuance, deviceId: string): NormalizedIssuance["expect"] {
  const expect = issuance.expect as { absent?: unknown; version?: unknown } | undefined;
  if (expect?.absent === true) {
    if (issuance.create === undefined) return bad("create is required when the device is expected absent");
    return {
      create: normalizeNewDevice({
        id: deviceId,
        status: issuance.create.status,
        groups: issuance.create.groups,
      }),
    };
  }
  const version = expect?.version;
  if (!(typeof version === "number" && Number.isSafeInteger(version) && version >= 1)) {
    return bad("expect must be { absent: true } or { version: a positive integer }");
  }
  return { version };
}

export function normalizeIssuance(issuance: Issuance): NormalizedIssuance {
  if (typeof issuance !== "object" || issuance === null) return bad("issuance must be an object");
  const certificate = validateCertificate(issuance.certificate);
  const unbind = (issuance.unbind ?? []).map(normalizeBinding);
  const retire = (issuance.retire ?? []).map((r) => ({
    binding: normalizeBinding(r.binding),
    at: validateDate(r.at, "retire.at"),
  }));
  // Each binding may appear once: removed, retired, or the new certificate's.
  const seen = new Set([bindingKey({ kind: "fingerprint", value: certificate.fingerprint })]);
  for (const b of [...unbind, ...retire.map((r) => r.binding)]) {
    const key = bindingKey(b);
    if (seen.has(key)) return bad(`binding ${key} appears twice in the issuance (new, unbind or retire)`);
    seen.add(key);
  }
  const status =
    issuance.status === undefined ? undefined : normalizePatch({ status: issuance.status }).status;
  return {
    certificate,
    tokenId: issuance.tokenId === undefined ? undefined : text(issuance.tokenId, "tokenId", 256),
    expect: validateExpect(issuance, certificate.deviceId),
    status,
    unbind,
    retire,
  };
}

export function normalizeNewToken(token: NewEnrollmentToken): NewEnrollmentToken {
  if (typeof token !== "object" || token === null) return bad("token must be an object");
  if (typeof token.secretHash !== "string" || !/^[0-9a-f]{64}$/.test(token.secretHash)) {
    return bad("secretHash must be a SHA-256 in lower-case hex");
  }
  return {
    id: text(token.id, "token id", 256),
    secretHash: token.secretHash,
    deviceId: validateId(token.deviceId),
    profile: text(token.profile, "profile", 128),
    expiresAt: validateDate(token.expiresAt, "expiresAt"),
  };
}

function validateLimit(limit: unknown): number {
  if (!(typeof limit === "number" && Number.isSafeInteger(limit) && limit >= 1 && limit <= MAX_PAGE)) {
    return bad(`limit must be an integer from 1 to ${MAX_PAGE}`);
  }
  return limit;
}

export function normalizeTokenQuery(query: EnrollmentTokenQuery): EnrollmentTokenQuery {
  return {
    limit: validateLimit(query.limit),
    ...(query.deviceId !== undefined && { deviceId: String(query.deviceId) }),
    ...(query.after !== undefined && { after: String(query.after) }),
  };
}

export function normalizeCertificateQuery(query: IssuedCertificateQuery): IssuedCertificateQuery {
  return {
    limit: validateLimit(query.limit),
    ...(query.deviceId !== undefined && { deviceId: String(query.deviceId) }),
    ...(query.profile !== undefined && { profile: String(query.profile) }),
    ...(query.revoked !== undefined && { revoked: query.revoked === true }),
    ...(query.after !== undefined && { after: String(query.after) }),
  };
}

/** A CRL reason name (RFC 5280 spelling, `keyCompromise`); the CA maps it to its code. */
export function validateReason(reason: unknown): string {
  if (typeof reason !== "string" || !/^[A-Za-z]{1,32}$/.test(reason)) {
    return bad(
      `revocation reason must be a CRL reason name such as keyCompromise, got ${JSON.stringify(reason)}`,
    );
  }
  return reason;
}
