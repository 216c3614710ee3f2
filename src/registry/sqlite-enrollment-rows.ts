// Row mapping of the enrollment tables on SQLite: tokens and issued certificates, times as epoch milliseconds.
import type { EnrollmentToken, IssuedCertificate } from "./enrollment-types.ts";

export const TOKEN_COLUMNS = "id, device_id, profile, created_at, expires_at, used_at, revoked_at";
export const CERTIFICATE_COLUMNS = `serial, device_id, profile, fingerprint, subject, not_before, not_after, issued_at,
  operation, pem, revoked_at, revocation_reason`;

export interface TokenRow {
  id: string;
  device_id: string;
  profile: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
  revoked_at: number | null;
}

export interface CertificateRow {
  serial: string;
  device_id: string;
  profile: string;
  fingerprint: string;
  subject: string;
  not_before: number;
  not_after: number;
  issued_at: number;
  operation: IssuedCertificate["operation"];
  pem: string;
  revoked_at: number | null;
  revocation_reason: string | null;
}

export const optionalDate = (ms: number | null): Date | undefined => (ms === null ? undefined : new Date(ms));

export function toToken(row: TokenRow): EnrollmentToken {
  return {
    id: row.id,
    deviceId: row.device_id,
    profile: row.profile,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
    usedAt: optionalDate(row.used_at),
    revokedAt: optionalDate(row.revoked_at),
  };
}

export function toCertificate(row: CertificateRow): IssuedCertificate {
  return {
    serial: row.serial,
    deviceId: row.device_id,
    profile: row.profile,
    fingerprint: row.fingerprint,
    subject: row.subject,
    notBefore: new Date(row.not_before),
    notAfter: new Date(row.not_after),
    issuedAt: new Date(row.issued_at),
    operation: row.operation,
    pem: row.pem,
    revokedAt: optionalDate(row.revoked_at),
    revocationReason: row.revocation_reason ?? undefined,
  };
}
