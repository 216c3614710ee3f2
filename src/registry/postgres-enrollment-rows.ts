// Row mapping of the enrollment tables on PostgreSQL: tokens and issued certificates as pg returns them.
import type { EnrollmentToken, IssuedCertificate } from "./enrollment-types.ts";

export const TOKEN_COLUMNS = "id, device_id, profile, created_at, expires_at, used_at, revoked_at";
export const CERTIFICATE_COLUMNS = `serial, device_id, profile, fingerprint, subject, not_before, not_after, issued_at,
  operation, pem, revoked_at, revocation_reason`;

export interface TokenRow {
  id: string;
  device_id: string;
  profile: string;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
  revoked_at: Date | null;
}

export interface CertificateRow {
  serial: string;
  device_id: string;
  profile: string;
  fingerprint: string;
  subject: string;
  not_before: Date;
  not_after: Date;
  issued_at: Date;
  operation: IssuedCertificate["operation"];
  pem: string;
  revoked_at: Date | null;
  revocation_reason: string | null;
}

export function toToken(row: TokenRow): EnrollmentToken {
  return {
    id: row.id,
    deviceId: row.device_id,
    profile: row.profile,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    usedAt: row.used_at ?? undefined,
    revokedAt: row.revoked_at ?? undefined,
  };
}

export function toCertificate(row: CertificateRow): IssuedCertificate {
  return {
    serial: row.serial,
    deviceId: row.device_id,
    profile: row.profile,
    fingerprint: row.fingerprint,
    subject: row.subject,
    notBefore: row.not_before,
    notAfter: row.not_after,
    issuedAt: row.issued_at,
    operation: row.operation,
    pem: row.pem,
    revokedAt: row.revoked_at ?? undefined,
    revocationReason: row.revocation_reason ?? undefined,
  };
}

/** The one row a statement must return (RETURNING, or a read inside the transaction that wrote it). */
export function only<R>(rows: readonly R[], what: string): R {
  const row = rows[0];
  if (row === undefined) throw new Error(`${what} missing inside its own transaction`);
  return row;
}
