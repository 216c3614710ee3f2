// The enrollment records on PostgreSQL: tokens, issued certificates and binding retirement. Every write is one
// transaction of the store's; a device binding change locks the device row, as device updates do, and commits
// with the pg_notify that announces it. Writes return the changes for the store to emit in this process.
import type pg from "pg";
import {
  bindingsAfter,
  claimedBindings,
  fingerprintBinding,
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
  only,
  TOKEN_COLUMNS,
  type TokenRow,
  toCertificate,
  toToken,
} from "./postgres-enrollment-rows.ts";
import { uniqueViolation } from "./postgres-errors.ts";
import {
  BUMP,
  checkNewCertificate,
  checkOwners,
  issuanceRace,
  LOCK_DEVICE,
  prepareDevice,
  replaceBindings,
  storedBindings,
} from "./postgres-issuance.ts";
import { DEVICE_COLUMNS, type DeviceRow, encodeChange, NOTIFY_CHANNEL, toDevice } from "./postgres-rows.ts";
import { type Device, type DeviceChange, StoreConflictError } from "./types.ts";
import { unionBindings } from "./validate.ts";

type Tx = <T>(body: (client: pg.PoolClient) => Promise<T>) => Promise<T>;
type Query = <R extends pg.QueryResultRow>(sql: string, params: unknown[]) => Promise<R[]>;

export class PgEnrollment {
  readonly #tx: Tx;
  readonly #query: Query;
  readonly #schema: string;
  readonly #origin: string;

  constructor(tx: Tx, query: Query, schema: string, origin: string) {
    this.#tx = tx;
    this.#query = query;
    this.#schema = schema;
    this.#origin = origin;
  }

  async createToken(token: NewEnrollmentToken): Promise<EnrollmentToken> {
    try {
      return await this.#tx(async (c) => {
        const { rows } = await c.query<TokenRow>(
          `INSERT INTO enrollment_tokens (id, secret_hash, device_id, profile, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${TOKEN_COLUMNS}`,
          [token.id, token.secretHash, token.deviceId, token.profile, new Date(), token.expiresAt],
        );
        return toToken(only(rows, `enrollment token ${token.id}`));
      });
    } catch (error) {
      if (uniqueViolation(error) === "enrollment_tokens_pkey") {
        throw new StoreConflictError(`enrollment token ${token.id} exists already`);
      }
      throw error;
    }
  }

  async findToken(id: string): Promise<{ token: EnrollmentToken; secretHash: string } | undefined> {
    const rows = await this.#query<TokenRow & { secret_hash: string }>(
      `SELECT ${TOKEN_COLUMNS}, secret_hash FROM enrollment_tokens WHERE id = $1`,
      [id],
    );
    const row = rows[0];
    return row === undefined ? undefined : { token: toToken(row), secretHash: row.secret_hash };
  }

  async listTokens(q: EnrollmentTokenQuery): Promise<EnrollmentTokenPage> {
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    if (q.deviceId !== undefined) where.push(`device_id = ${param(q.deviceId)}`);
    if (q.after !== undefined) where.push(`id > ${param(q.after)}`);
    const filter = where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`;
    const rows = await this.#query<TokenRow>(
      `SELECT ${TOKEN_COLUMNS} FROM enrollment_tokens ${filter} ORDER BY id LIMIT ${param(q.limit + 1)}`,
      params,
    );
    const tokens = rows.slice(0, q.limit).map(toToken);
    return { tokens, next: rows.length > q.limit ? tokens.at(-1)?.id : undefined };
  }

  async revokeToken(id: string, now: Date): Promise<EnrollmentToken> {
    const row = await this.#tx(async (c) => {
      const { rows } = await c.query<TokenRow>(
        `UPDATE enrollment_tokens SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING ${TOKEN_COLUMNS}`,
        [id, now],
      );
      return rows[0];
    });
    if (row === undefined) throw new TokenNotFoundError(`enrollment token ${id} not found`);
    return toToken(row);
  }

  async recordIssuance(issuance: NormalizedIssuance, now: Date): Promise<Written<IssuedCertificate>> {
    const { certificate } = issuance;
    const id = certificate.deviceId;
    try {
      return await this.#tx(async (c) => {
        if (issuance.tokenId !== undefined) await this.#spendToken(c, issuance.tokenId, issuance, now);
        await checkNewCertificate(c, certificate.serial, certificate.fingerprint);
        const before = await prepareDevice(c, issuance);
        await checkOwners(c, claimedBindings(issuance), id);
        await replaceBindings(c, id, bindingsAfter(await storedBindings(c, id), issuance));
        const { rows } = await c.query<CertificateRow>(
          `INSERT INTO issued_certificates (serial, device_id, profile, fingerprint, subject, not_before, not_after,
             issued_at, operation, pem) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ${CERTIFICATE_COLUMNS}`,
          [
            certificate.serial,
            id,
            certificate.profile,
            certificate.fingerprint,
            certificate.subject,
            certificate.notBefore,
            certificate.notAfter,
            certificate.issuedAt,
            certificate.operation,
            certificate.pem,
          ],
        );
        const after = toDevice(
          only(
            (await c.query<DeviceRow>(`SELECT ${DEVICE_COLUMNS} FROM devices d WHERE d.id = $1`, [id])).rows,
            id,
          ),
        );
        const change: DeviceChange =
          before === undefined
            ? { id, kind: "created", bindings: after.bindings, status: after.status }
            : {
                id,
                kind: "updated",
                bindings: unionBindings(before.bindings, after.bindings),
                status: after.status,
              };
        await this.#notify(c, change);
        return { result: toCertificate(only(rows, `certificate ${certificate.serial}`)), changes: [change] };
      });
    } catch (error) {
      throw issuanceRace(error, issuance);
    }
  }

  async getCertificate(serial: string): Promise<IssuedCertificate | undefined> {
    const rows = await this.#query<CertificateRow>(
      `SELECT ${CERTIFICATE_COLUMNS} FROM issued_certificates WHERE serial = $1`,
      [serial],
    );
    return rows[0] === undefined ? undefined : toCertificate(rows[0]);
  }

  async listCertificates(q: IssuedCertificateQuery): Promise<IssuedCertificatePage> {
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    if (q.deviceId !== undefined) where.push(`device_id = ${param(q.deviceId)}`);
    if (q.profile !== undefined) where.push(`profile = ${param(q.profile)}`);
    if (q.revoked !== undefined) where.push(q.revoked ? "revoked_at IS NOT NULL" : "revoked_at IS NULL");
    if (q.after !== undefined) where.push(`serial > ${param(q.after)}`);
    const filter = where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`;
    const rows = await this.#query<CertificateRow>(
      `SELECT ${CERTIFICATE_COLUMNS} FROM issued_certificates ${filter} ORDER BY serial LIMIT ${param(q.limit + 1)}`,
      params,
    );
    const certificates = rows.slice(0, q.limit).map(toCertificate);
    return { certificates, next: rows.length > q.limit ? certificates.at(-1)?.serial : undefined };
  }

  async revokeCertificate(serial: string, reason: string, now: Date): Promise<Written<IssuedCertificate>> {
    return this.#tx(async (c) => {
      const locked = await c.query<CertificateRow>(
        `SELECT ${CERTIFICATE_COLUMNS} FROM issued_certificates WHERE serial = $1 FOR UPDATE`,
        [serial],
      );
      const current = locked.rows[0];
      if (current === undefined) throw new CertificateNotFoundError(`issued certificate ${serial} not found`);
      if (current.revoked_at !== null) return { result: toCertificate(current), changes: [] };
      const { rows } = await c.query<CertificateRow>(
        `UPDATE issued_certificates SET revoked_at = $2, revocation_reason = $3 WHERE serial = $1
         RETURNING ${CERTIFICATE_COLUMNS}`,
        [serial, now, reason],
      );
      const result = toCertificate(only(rows, `certificate ${serial}`));
      const deviceRow = (await c.query<DeviceRow>(LOCK_DEVICE, [current.device_id])).rows[0];
      if (deviceRow === undefined) return { result, changes: [] };
      const device = toDevice(deviceRow);
      const binding = fingerprintBinding(current.fingerprint);
      const removed = await c.query(
        "DELETE FROM bindings WHERE kind = $1 AND value = $2 AND device_id = $3",
        [binding.kind, binding.value, device.id],
      );
      if (!removed.rowCount) return { result, changes: [] };
      await c.query(`UPDATE devices SET ${BUMP} WHERE id = $1`, [device.id]);
      const change: DeviceChange = {
        id: device.id,
        kind: "updated",
        bindings: device.bindings,
        status: device.status,
      };
      await this.#notify(c, change);
      return { result, changes: [change] };
    });
  }

  /** Deletes the bindings due at `now`; the result is how many, with one change per device. */
  async retireDue(now: Date): Promise<Written<number>> {
    return this.#tx(async (c) => {
      // Locked in id order, as every node does: two nodes retiring together cannot deadlock.
      const { rows } = await c.query<DeviceRow>(
        `SELECT ${DEVICE_COLUMNS} FROM devices d
         WHERE d.id IN (SELECT device_id FROM bindings WHERE retire_at <= $1) ORDER BY d.id FOR UPDATE OF d`,
        [now],
      );
      if (rows.length === 0) return { result: 0, changes: [] };
      const devices: Device[] = rows.map(toDevice);
      const ids = devices.map((d) => d.id);
      const removed = await c.query(
        "DELETE FROM bindings WHERE retire_at <= $1 AND device_id = ANY($2::text[])",
        [now, ids],
      );
      await c.query(`UPDATE devices SET ${BUMP} WHERE id = ANY($1::text[])`, [ids]);
      const changes = devices.map(
        (d): DeviceChange => ({ id: d.id, kind: "updated", bindings: d.bindings, status: d.status }),
      );
      for (const change of changes) await this.#notify(c, change);
      return { result: removed.rowCount ?? 0, changes };
    });
  }

  async nextRetirement(): Promise<Date | undefined> {
    const rows = await this.#query<{ at: Date | null }>(
      "SELECT min(retire_at) AS at FROM bindings WHERE retire_at IS NOT NULL",
      [],
    );
    return rows[0]?.at ?? undefined;
  }

  /**
   * Spends the token for this certificate at `now`, or says why it cannot be spent. The row lock serialises two
   * issuances with one token: the second re-checks `used_at` after the first committed and matches nothing.
   */
  async #spendToken(
    c: pg.PoolClient,
    tokenId: string,
    issuance: NormalizedIssuance,
    now: Date,
  ): Promise<void> {
    const { deviceId, profile } = issuance.certificate;
    const spent = await c.query(
      `UPDATE enrollment_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL
         AND expires_at > $2 AND device_id = $3 AND profile = $4`,
      [tokenId, now, deviceId, profile],
    );
    if (spent.rowCount) return;
    const { rows } = await c.query<TokenRow>(`SELECT ${TOKEN_COLUMNS} FROM enrollment_tokens WHERE id = $1`, [
      tokenId,
    ]);
    throw tokenRefusal(
      tokenId,
      rows[0] === undefined ? undefined : toToken(rows[0]),
      issuance.certificate,
      now,
    );
  }

  async #notify(c: pg.PoolClient, change: DeviceChange): Promise<void> {
    await c.query("SELECT pg_notify($1, $2)", [
      NOTIFY_CHANNEL,
      encodeChange(this.#schema, this.#origin, change),
    ]);
  }
}
