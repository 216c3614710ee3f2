// The enrollment records on SQLite: tokens, issued certificates and binding retirement, as statements the store
// runs inside its write transactions (BEGIN IMMEDIATE). Each write returns the device changes it made; the store
// records them in the change feed in the same transaction and emits them after the commit.
import {
  bindingsAfter,
  claimedBindings,
  fingerprintBinding,
  type StoredBinding,
  tokenRefusal,
  type Written,
} from "./enrollment-plan.ts";
import {
  CertificateNotFoundError,
  type EnrollmentToken,
  type EnrollmentTokenPage,
  type EnrollmentTokenQuery,
  type IssuedCertificate,
  type IssuedCertificatePage,
  type IssuedCertificateQuery,
  type NewEnrollmentToken,
  TokenNotFoundError,
} from "./enrollment-types.ts";
import type { NormalizedIssuance } from "./enrollment-validate.ts";
import {
  CERTIFICATE_COLUMNS,
  type CertificateRow,
  optionalDate,
  TOKEN_COLUMNS,
  type TokenRow,
  toCertificate,
  toToken,
} from "./sqlite-enrollment-rows.ts";
import type { SqliteTables } from "./sqlite-tables.ts";
import { type Binding, type Device, type DeviceChange, StoreConflictError } from "./types.ts";
import { bindingKey, unionBindings } from "./validate.ts";

export class SqliteEnrollment {
  readonly #tables: SqliteTables;

  constructor(tables: SqliteTables) {
    this.#tables = tables;
  }

  createToken(token: NewEnrollmentToken, now: number): EnrollmentToken {
    if (this.#tables.stmt("SELECT 1 FROM enrollment_tokens WHERE id = ?").get(token.id) !== undefined) {
      throw new StoreConflictError(`enrollment token ${token.id} exists already`);
    }
    this.#tables
      .stmt(
        `INSERT INTO enrollment_tokens (id, secret_hash, device_id, profile, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(token.id, token.secretHash, token.deviceId, token.profile, now, token.expiresAt.getTime());
    return this.#mustGetToken(token.id);
  }

  findToken(id: string): { token: EnrollmentToken; secretHash: string } | undefined {
    const row = this.#tables
      .stmt(`SELECT ${TOKEN_COLUMNS}, secret_hash FROM enrollment_tokens WHERE id = ?`)
      .get(id) as (TokenRow & { secret_hash: string }) | undefined;
    return row === undefined ? undefined : { token: toToken(row), secretHash: row.secret_hash };
  }

  listTokens(q: EnrollmentTokenQuery): EnrollmentTokenPage {
    const where: string[] = [];
    const params: string[] = [];
    if (q.deviceId !== undefined) {
      where.push("device_id = ?");
      params.push(q.deviceId);
    }
    if (q.after !== undefined) {
      where.push("id > ?");
      params.push(q.after);
    }
    const filter = where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`;
    const rows = this.#tables
      .stmt(`SELECT ${TOKEN_COLUMNS} FROM enrollment_tokens ${filter} ORDER BY id LIMIT ?`)
      .all(...params, q.limit + 1) as unknown as TokenRow[];
    const tokens = rows.slice(0, q.limit).map(toToken);
    return { tokens, next: rows.length > q.limit ? tokens.at(-1)?.id : undefined };
  }

  revokeToken(id: string, now: number): EnrollmentToken {
    const { changes } = this.#tables
      .stmt("UPDATE enrollment_tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?")
      .run(now, id);
    if (changes === 0) throw new TokenNotFoundError(`enrollment token ${id} not found`);
    return this.#mustGetToken(id);
  }

  recordIssuance(issuance: NormalizedIssuance, now: Date): Written<IssuedCertificate> {
    const { certificate } = issuance;
    const id = certificate.deviceId;
    if (issuance.tokenId !== undefined) this.#spendToken(issuance.tokenId, issuance, now);
    this.#checkNewCertificate(certificate.serial, certificate.fingerprint);
    const before = this.#prepareDevice(issuance);
    for (const b of claimedBindings(issuance)) {
      const owner = this.#tables.owner(b);
      if (owner !== undefined && owner !== id) {
        throw new StoreConflictError(`binding ${bindingKey(b)} is already bound to device ${owner}`);
      }
    }
    this.#replaceBindings(id, bindingsAfter(this.#storedBindings(id), issuance));
    this.#tables
      .stmt(
        `INSERT INTO issued_certificates (serial, device_id, profile, fingerprint, subject, not_before, not_after,
           issued_at, operation, pem) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        certificate.serial,
        id,
        certificate.profile,
        certificate.fingerprint,
        certificate.subject,
        certificate.notBefore.getTime(),
        certificate.notAfter.getTime(),
        certificate.issuedAt.getTime(),
        certificate.operation,
        certificate.pem,
      );
    const after = this.#mustGetDevice(id);
    const change: DeviceChange =
      before === undefined
        ? { id, kind: "created", bindings: after.bindings, status: after.status }
        : {
            id,
            kind: "updated",
            bindings: unionBindings(before.bindings, after.bindings),
            status: after.status,
          };
    return { result: this.#mustGetCertificate(certificate.serial), changes: [change] };
  }

  getCertificate(serial: string): IssuedCertificate | undefined {
    const row = this.#tables
      .stmt(`SELECT ${CERTIFICATE_COLUMNS} FROM issued_certificates WHERE serial = ?`)
      .get(serial) as CertificateRow | undefined;
    return row === undefined ? undefined : toCertificate(row);
  }

  listCertificates(q: IssuedCertificateQuery): IssuedCertificatePage {
    const where: string[] = [];
    const params: string[] = [];
    if (q.deviceId !== undefined) {
      where.push("device_id = ?");
      params.push(q.deviceId);
    }
    if (q.profile !== undefined) {
      where.push("profile = ?");
      params.push(q.profile);
    }
    if (q.revoked !== undefined) where.push(q.revoked ? "revoked_at IS NOT NULL" : "revoked_at IS NULL");
    if (q.after !== undefined) {
      where.push("serial > ?");
      params.push(q.after);
    }
    const filter = where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`;
    const rows = this.#tables
      .stmt(`SELECT ${CERTIFICATE_COLUMNS} FROM issued_certificates ${filter} ORDER BY serial LIMIT ?`)
      .all(...params, q.limit + 1) as unknown as CertificateRow[];
    const certificates = rows.slice(0, q.limit).map(toCertificate);
    return { certificates, next: rows.length > q.limit ? certificates.at(-1)?.serial : undefined };
  }

  revokeCertificate(serial: string, reason: string, now: number): Written<IssuedCertificate> {
    const current = this.getCertificate(serial);
    if (current === undefined) throw new CertificateNotFoundError(`issued certificate ${serial} not found`);
    if (current.revokedAt !== undefined) return { result: current, changes: [] };
    this.#tables
      .stmt("UPDATE issued_certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ?")
      .run(now, reason, serial);
    const changes: DeviceChange[] = [];
    const binding = fingerprintBinding(current.fingerprint);
    const device = this.#tables.get(current.deviceId);
    if (device !== undefined && this.#tables.owner(binding) === device.id) {
      this.#tables.stmt("DELETE FROM bindings WHERE kind = ? AND value = ?").run(binding.kind, binding.value);
      this.#bump(device.id, Date.now());
      changes.push({ id: device.id, kind: "updated", bindings: device.bindings, status: device.status });
    }
    return { result: this.#mustGetCertificate(serial), changes };
  }

  /** Deletes the bindings due at `now`; the result is how many, with one change per device. */
  retireDue(now: number): Written<number> {
    const due = this.#tables
      .stmt("SELECT DISTINCT device_id FROM bindings WHERE retire_at <= ? ORDER BY device_id")
      .all(now) as { device_id: string }[];
    const stamp = Date.now();
    let removed = 0;
    const changes: DeviceChange[] = [];
    for (const { device_id: id } of due) {
      const device = this.#mustGetDevice(id);
      removed += Number(
        this.#tables.stmt("DELETE FROM bindings WHERE device_id = ? AND retire_at <= ?").run(id, now).changes,
      );
      this.#bump(id, stamp);
      changes.push({ id, kind: "updated", bindings: device.bindings, status: device.status });
    }
    return { result: removed, changes };
  }

  nextRetirement(): Date | undefined {
    const row = this.#tables
      .stmt("SELECT min(retire_at) AS at FROM bindings WHERE retire_at IS NOT NULL")
      .get() as { at: number | null };
    return optionalDate(row.at);
  }

  /** Spends the token for this certificate at `now`, or says why it cannot be spent. */
  #spendToken(tokenId: string, issuance: NormalizedIssuance, now: Date): void {
    const { deviceId, profile } = issuance.certificate;
    const { changes } = this.#tables
      .stmt(
        `UPDATE enrollment_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL
           AND expires_at > ? AND device_id = ? AND profile = ?`,
      )
      .run(now.getTime(), tokenId, now.getTime(), deviceId, profile);
    if (changes === 0) throw tokenRefusal(tokenId, this.findToken(tokenId)?.token, issuance.certificate, now);
  }

  /**
   * Creates the device (`expect` absent) or checks its version, then sets its status and bumps it; returns the
   * device as it was (undefined when created).
   */
  #prepareDevice(issuance: NormalizedIssuance): Device | undefined {
    const id = issuance.certificate.deviceId;
    const { expect } = issuance;
    if ("create" in expect) {
      if (this.#tables.exists(id)) throw new StoreConflictError(`device ${id} exists already`);
      this.#tables.insert({ ...expect.create, status: issuance.status ?? expect.create.status }, Date.now());
      return undefined;
    }
    const before = this.#tables.get(id);
    if (before === undefined) throw new StoreConflictError(`device ${id} was deleted; re-read and retry`);
    if (before.version !== expect.version) {
      throw new StoreConflictError(
        `device ${id} is at version ${before.version}, not ${expect.version}; re-read and retry`,
      );
    }
    this.#tables.stmt("UPDATE devices SET status = ? WHERE id = ?").run(issuance.status ?? before.status, id);
    this.#bump(id, Date.now());
    return before;
  }

  #checkNewCertificate(serial: string, fingerprint: string): void {
    const row = this.#tables
      .stmt("SELECT serial FROM issued_certificates WHERE serial = ? OR fingerprint = ? LIMIT 1")
      .get(serial, fingerprint) as { serial: string } | undefined;
    if (row === undefined) return;
    throw new StoreConflictError(
      row.serial === serial
        ? `a certificate with serial ${serial} was recorded already`
        : `a certificate with fingerprint ${fingerprint} was recorded already (serial ${row.serial})`,
    );
  }

  #storedBindings(id: string): StoredBinding[] {
    const rows = this.#tables
      .stmt("SELECT kind, value, retire_at FROM bindings WHERE device_id = ? ORDER BY pos")
      .all(id) as { kind: Binding["kind"]; value: string; retire_at: number | null }[];
    return rows.map((r) => ({ kind: r.kind, value: r.value, retireAt: optionalDate(r.retire_at) }));
  }

  #replaceBindings(id: string, bindings: readonly StoredBinding[]): void {
    this.#tables.stmt("DELETE FROM bindings WHERE device_id = ?").run(id);
    const insert = this.#tables.stmt(
      "INSERT INTO bindings (device_id, kind, value, pos, retire_at) VALUES (?, ?, ?, ?, ?)",
    );
    for (const [pos, b] of bindings.entries()) {
      insert.run(id, b.kind, b.value, pos, b.retireAt?.getTime() ?? null);
    }
  }

  /** A binding change is a device change: a new version, a new updated_at. */
  #bump(id: string, stamp: number): void {
    this.#tables
      .stmt("UPDATE devices SET updated_at = max(?, created_at), version = version + 1 WHERE id = ?")
      .run(stamp, id);
  }

  #mustGetDevice(id: string): Device {
    const device = this.#tables.get(id);
    if (device === undefined) throw new Error(`device ${id} vanished inside its own transaction`);
    return device;
  }

  #mustGetToken(id: string): EnrollmentToken {
    const found = this.findToken(id);
    if (found === undefined) throw new TokenNotFoundError(`enrollment token ${id} not found`);
    return found.token;
  }

  #mustGetCertificate(serial: string): IssuedCertificate {
    const found = this.getCertificate(serial);
    if (found === undefined) throw new CertificateNotFoundError(`issued certificate ${serial} not found`);
    return found;
  }
}
