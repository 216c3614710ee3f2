// DeviceStore and EnrollmentStore on PostgreSQL for several nodes: every write commits with a NOTIFY to every node.
//
// Writes run in one transaction each, with `pg_notify('portcullis_devices', …)` inside it, so a change
// is announced if and only if it committed. Updates lock the row (SELECT … FOR UPDATE) before checking
// ifVersion, so versions increase by exactly one per update whatever the concurrency. Every query
// fails fast when the server is unreachable (connect timeout, client-side query timeout) with
// StoreUnavailableError; health() is not ok while queries fail or while the LISTEN connection is down.
import { randomUUID } from "node:crypto";
import pg from "pg";
import { ChangeHub, RESYNC } from "./change-hub.ts";
import type { Written } from "./enrollment-plan.ts";
import type {
  EnrollmentToken,
  EnrollmentTokenPage,
  EnrollmentTokenQuery,
  Issuance,
  IssuedCertificate,
  IssuedCertificatePage,
  IssuedCertificateQuery,
  NewEnrollmentToken,
  RegistryStore,
} from "./enrollment-types.ts";
import {
  normalizeCertificateQuery,
  normalizeIssuance,
  normalizeNewToken,
  normalizeTokenQuery,
  validateDate,
  validateReason,
} from "./enrollment-validate.ts";
import { normalizeBatchInSlices } from "./import-batch.ts";
import { migratePostgres } from "./migrations.ts";
import { PgEnrollment } from "./postgres-enrollment.ts";
import { isRetryable, isUnavailable } from "./postgres-errors.ts";
import { PgChangeListener } from "./postgres-listener.ts";
import { ANY_BINDING_SQL, DEVICE_COLUMNS, type DeviceRow, encodeChange, toDevice } from "./postgres-rows.ts";
import { PgWrites } from "./postgres-writes.ts";
import {
  type Binding,
  type Device,
  type DeviceChange,
  type DevicePage,
  type DevicePatch,
  type DeviceQuery,
  type DeviceStatus,
  type ImportOptions,
  type NewDevice,
  type StoreHealth,
  StoreUnavailableError,
} from "./types.ts";
import { normalizeNewDevice, normalizePatch, normalizeQuery, prefixRange, statusCounts } from "./validate.ts";

export interface PostgresStoreOptions {
  /** postgres://… */
  readonly url: string;
  /** Schema holding the registry's tables, created by migrate(); lower-case letters, digits, `_`. */
  readonly schema?: string;
  readonly poolSize?: number;
  /** How long to wait for a connection before StoreUnavailableError. */
  readonly connectTimeoutMs?: number;
  /** How long to wait for a query's answer before StoreUnavailableError. */
  readonly queryTimeoutMs?: number;
  /** How often the LISTEN connection proves it is alive. */
  readonly pingIntervalMs?: number;
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
}

export const DEFAULT_SCHEMA = "portcullis";

export class PostgresDeviceStore implements RegistryStore {
  readonly #schema: string;
  readonly #pool: pg.Pool;
  readonly #hub = new ChangeHub();
  readonly #listener: PgChangeListener;
  readonly #writes: PgWrites;
  readonly #enrollment: PgEnrollment;
  /** Tags this instance's NOTIFYs, so that they are not emitted twice here. */
  readonly #origin = randomUUID();
  #queryError: unknown;
  #listenerError: unknown;
  #health: StoreHealth = { kind: "postgres", ok: true, since: new Date() };

  constructor(options: PostgresStoreOptions) {
    const schema = options.schema ?? DEFAULT_SCHEMA;
    // Checked, not quoted: the name also travels in the connection's `options` and in NOTIFY payloads.
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema))
      throw new RangeError(`invalid schema name ${JSON.stringify(schema)}`);
    this.#schema = schema;
    const config: pg.ClientConfig = {
      connectionString: options.url,
      options: `-c search_path=${schema}`,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
      query_timeout: options.queryTimeoutMs ?? 5000,
      keepAlive: true,
      application_name: `portcullis-registry-${schema}`,
    };
    this.#pool = new pg.Pool({ ...config, max: options.poolSize ?? 10 });
    // An idle client losing its connection must not crash the process; the next query reports it.
    this.#pool.on("error", (error) => this.#queryFailed(error));
    this.#listener = new PgChangeListener(
      { ...config, application_name: `portcullis-listen-${schema}` },
      schema,
      this.#origin,
      (change) => this.#hub.emit(change),
      (up, error) => {
        this.#listenerError = up ? undefined : (error ?? new Error("LISTEN connection down"));
        // A LISTEN connection that came up proves the server is reachable again.
        if (up) this.#queryError = undefined;
        this.#updateHealth();
      },
      {
        pingIntervalMs: options.pingIntervalMs ?? 5000,
        minBackoffMs: options.reconnectMinMs ?? 100,
        maxBackoffMs: options.reconnectMaxMs ?? 5000,
      },
    );
    this.#writes = new PgWrites((body) => this.#tx(body), schema, this.#origin);
    this.#enrollment = new PgEnrollment(
      (body) => this.#tx(body),
      (sql, params) => this.#query(sql, params),
      schema,
      this.#origin,
    );
  }

  get schema(): string {
    return this.#schema;
  }

  /** Runs the migrations, then opens the LISTEN connection (so call it once at start, as the interface says). */
  async migrate(): Promise<void> {
    const client = await this.#connect();
    try {
      await migratePostgres(client, this.#schema);
      client.release();
    } catch (error) {
      client.release(true);
      throw this.#translate(error);
    }
    await this.#listener.start();
  }

  async findByBinding(binding: Binding): Promise<Device | undefined> {
    return this.#one(
      `SELECT ${DEVICE_COLUMNS} FROM bindings x JOIN devices d ON d.id = x.device_id WHERE x.kind = $1 AND x.value = $2`,
      [binding.kind, binding.value],
    );
  }

  async findByAnyBinding(bindings: readonly Binding[]): Promise<Device | undefined> {
    if (bindings.length === 0) return undefined;
    // The request-path lookup, as a named prepared statement: planned once per connection, not per call.
    return this.#one(
      ANY_BINDING_SQL,
      [bindings.map((b) => b.kind), bindings.map((b) => b.value)],
      "portcullis_any_binding",
    );
  }

  async get(id: string): Promise<Device | undefined> {
    return this.#one(`SELECT ${DEVICE_COLUMNS} FROM devices d WHERE d.id = $1`, [id]);
  }

  async list(query: DeviceQuery): Promise<DevicePage> {
    const q = normalizeQuery(query);
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => `$${params.push(value)}`;
    if (q.idPrefix !== undefined) {
      const { low, high } = prefixRange(q.idPrefix);
      where.push(`d.id >= ${param(low)} AND d.id < ${param(high)}`);
    }
    if (q.status !== undefined) where.push(`d.status = ${param(q.status)}`);
    if (q.group !== undefined) where.push(`d.groups @> ARRAY[${param(q.group)}::text]`);
    if (q.binding !== undefined) {
      where.push(
        `d.id IN (SELECT device_id FROM bindings WHERE kind = ${param(q.binding.kind)} AND value = ${param(q.binding.value)})`,
      );
    }
    if (q.after !== undefined) where.push(`d.id > ${param(q.after)}`);
    const filter = where.length === 0 ? "" : `WHERE ${where.join(" AND ")}`;
    // One row more than asked tells whether a next page exists without a count query.
    const sql = `SELECT ${DEVICE_COLUMNS} FROM devices d ${filter} ORDER BY d.id LIMIT ${param(q.limit + 1)}`;
    const rows = await this.#query<DeviceRow>(sql, params);
    const devices = rows.slice(0, q.limit).map(toDevice);
    return { devices, next: rows.length > q.limit ? devices.at(-1)?.id : undefined };
  }

  async countByStatus(): Promise<Record<DeviceStatus, number>> {
    const rows = await this.#query<{ status: string; n: string }>(
      "SELECT status, count(*) AS n FROM devices GROUP BY status",
      [],
    );
    return statusCounts(rows);
  }

  async create(input: NewDevice): Promise<Device> {
    const device = normalizeNewDevice(input);
    const created = await this.#writes.create(device);
    this.#hub.emit({ id: device.id, kind: "created", bindings: device.bindings, status: device.status });
    return created;
  }

  async update(id: string, input: DevicePatch): Promise<Device> {
    const patch = normalizePatch(input);
    const { device, change } = await this.#writes.update(id, patch);
    this.#hub.emit(change);
    return device;
  }

  async delete(id: string): Promise<void> {
    this.#hub.emit(await this.#writes.delete(id));
  }

  async importDevices(input: readonly NewDevice[], options: ImportOptions = {}): Promise<number> {
    const batch = await normalizeBatchInSlices(input);
    const changes = await this.#writes.importDevices(batch, options.onProgress);
    const total = batch.devices.length;
    options.onProgress?.({ written: total, total });
    for (const change of changes) this.#hub.emit(change);
    return total;
  }

  async touch(lastSeen: ReadonlyMap<string, Date>): Promise<void> {
    if (lastSeen.size === 0) return;
    // Sorted ids take row locks in one order on every node, which keeps concurrent flushes from deadlocking.
    const entries = [...lastSeen].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const sql = `UPDATE devices d SET last_seen_at = GREATEST(d.last_seen_at, v.t)
      FROM unnest($1::text[], $2::timestamptz[]) AS v (id, t) WHERE d.id = v.id`;
    const params = [entries.map(([id]) => id), entries.map(([, at]) => at)];
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#query(sql, params);
        return;
      } catch (error) {
        if (attempt >= 3 || !isRetryable(error)) throw error;
      }
    }
  }

  async createEnrollmentToken(token: NewEnrollmentToken): Promise<EnrollmentToken> {
    return this.#enrollment.createToken(normalizeNewToken(token));
  }

  async findEnrollmentToken(id: string): Promise<{ token: EnrollmentToken; secretHash: string } | undefined> {
    return this.#enrollment.findToken(id);
  }

  async listEnrollmentTokens(query: EnrollmentTokenQuery): Promise<EnrollmentTokenPage> {
    return this.#enrollment.listTokens(normalizeTokenQuery(query));
  }

  async revokeEnrollmentToken(id: string, now: Date): Promise<EnrollmentToken> {
    return this.#enrollment.revokeToken(id, validateDate(now, "now"));
  }

  async recordIssuance(issuance: Issuance, now: Date): Promise<IssuedCertificate> {
    const input = normalizeIssuance(issuance);
    return this.#announce(await this.#enrollment.recordIssuance(input, validateDate(now, "now")));
  }

  async getIssuedCertificate(serial: string): Promise<IssuedCertificate | undefined> {
    return this.#enrollment.getCertificate(serial);
  }

  async listIssuedCertificates(query: IssuedCertificateQuery): Promise<IssuedCertificatePage> {
    return this.#enrollment.listCertificates(normalizeCertificateQuery(query));
  }

  async revokeIssuedCertificate(serial: string, reason: string, now: Date): Promise<IssuedCertificate> {
    const why = validateReason(reason);
    return this.#announce(await this.#enrollment.revokeCertificate(serial, why, validateDate(now, "now")));
  }

  async retireBindings(now: Date): Promise<number> {
    return this.#announce(await this.#enrollment.retireDue(validateDate(now, "now")));
  }

  async nextBindingRetirement(): Promise<Date | undefined> {
    return this.#enrollment.nextRetirement();
  }

  onChange(listener: (change: DeviceChange) => void): () => void {
    return this.#hub.subscribe(listener);
  }

  health(): StoreHealth {
    return this.#health;
  }

  async close(): Promise<void> {
    await this.#listener.stop();
    await this.#pool.end().catch(() => undefined);
  }

  /** Announce a resync to this process's subscribers and every other node (after out-of-band edits). */
  async announceResync(): Promise<void> {
    await this.#query("SELECT pg_notify('portcullis_devices', $1)", [
      encodeChange(this.#schema, this.#origin, RESYNC),
    ]);
    this.#hub.emit(RESYNC);
  }

  /** Emits the changes of a committed enrollment write here (other nodes hear its NOTIFY). */
  #announce<T>({ result, changes }: Written<T>): T {
    for (const change of changes) this.#hub.emit(change);
    return result;
  }

  async #one(sql: string, params: unknown[], name?: string): Promise<Device | undefined> {
    const rows = await this.#query<DeviceRow>(sql, params, name);
    return rows[0] === undefined ? undefined : toDevice(rows[0]);
  }

  async #query<R extends pg.QueryResultRow>(sql: string, params: unknown[], name?: string): Promise<R[]> {
    try {
      const result = await this.#pool.query<R>({ text: sql, values: params, ...(name ? { name } : {}) });
      this.#querySucceeded();
      return result.rows;
    } catch (error) {
      throw this.#translate(error);
    }
  }

  async #connect(): Promise<pg.PoolClient> {
    try {
      return await this.#pool.connect();
    } catch (error) {
      throw this.#translate(error);
    }
  }

  /** One transaction on one pooled client; a client whose connection failed is destroyed, not reused. */
  async #tx<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#connect();
    try {
      await client.query("BEGIN");
      const result = await body(client);
      await client.query("COMMIT");
      client.release();
      this.#querySucceeded();
      return result;
    } catch (error) {
      const broken = isUnavailable(error);
      if (!broken) await client.query("ROLLBACK").catch(() => undefined);
      client.release(broken ? true : undefined);
      throw this.#translate(error);
    }
  }

  #translate(error: unknown): unknown {
    if (!isUnavailable(error)) return error;
    this.#queryFailed(error);
    return new StoreUnavailableError(`PostgreSQL registry unavailable: ${(error as Error).message}`, {
      cause: error,
    });
  }

  #queryFailed(error: unknown): void {
    this.#queryError = error;
    this.#updateHealth();
  }

  #querySucceeded(): void {
    if (this.#queryError === undefined) return;
    this.#queryError = undefined;
    this.#updateHealth();
  }

  #updateHealth(): void {
    const error = this.#queryError ?? this.#listenerError;
    const ok = error === undefined;
    if (ok === this.#health.ok) return;
    this.#health = ok
      ? { kind: "postgres", ok, since: new Date() }
      : { kind: "postgres", ok, error: (error as Error)?.message ?? String(error), since: new Date() };
  }
}
