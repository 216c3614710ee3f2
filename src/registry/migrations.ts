// Versioned schema migrations for both engines, applied at start in one transaction; re-running is a no-op.
import type { DatabaseSync } from "node:sqlite";
import type { ClientBase } from "pg";

interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sqlite: readonly string[];
  readonly postgres: readonly string[];
}

const STATUS_CHECK = "status IN ('active', 'suspended', 'revoked', 'pending')";
const KIND_CHECK = "kind IN ('fingerprint', 'spki', 'cn', 'uri', 'dns')";
const OPERATION_CHECK = "operation IN ('enroll', 'reenroll')";

/** Append only: an applied migration is never edited, a change is a new version. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "devices, bindings, groups, changes",
    sqlite: [
      // Times are epoch milliseconds: SQLite has no time type and integers sort and compare exactly.
      `CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (${STATUS_CHECK}),
        groups TEXT NOT NULL DEFAULT '[]',
        metadata TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        last_seen_at INTEGER,
        version INTEGER NOT NULL DEFAULT 1
      ) STRICT`,
      "CREATE INDEX devices_status ON devices (status, id)",
      // (kind, value) is the primary key: one binding maps to exactly one device.
      `CREATE TABLE bindings (
        device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (${KIND_CHECK}),
        value TEXT NOT NULL,
        pos INTEGER NOT NULL,
        PRIMARY KEY (kind, value)
      ) STRICT, WITHOUT ROWID`,
      "CREATE INDEX bindings_device ON bindings (device_id)",
      // SQLite cannot index inside a JSON array, so group membership is mirrored here for the filter.
      `CREATE TABLE device_groups (
        device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        grp TEXT NOT NULL,
        PRIMARY KEY (grp, device_id)
      ) STRICT, WITHOUT ROWID`,
      "CREATE INDEX device_groups_device ON device_groups (device_id)",
      // The change feed that processes sharing one file poll (see sqlite-change-feed.ts).
      `CREATE TABLE changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        origin TEXT NOT NULL,
        device_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        bindings TEXT NOT NULL,
        status TEXT,
        at INTEGER NOT NULL
      ) STRICT`,
    ],
    postgres: [
      // COLLATE "C" so that keyset pagination orders ids byte-wise, exactly as SQLite does.
      `CREATE TABLE devices (
        id text COLLATE "C" PRIMARY KEY,
        status text NOT NULL CHECK (${STATUS_CHECK}),
        groups text[] NOT NULL DEFAULT '{}',
        metadata jsonb NOT NULL DEFAULT '{}',
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        last_seen_at timestamptz,
        version integer NOT NULL DEFAULT 1
      )`,
      "CREATE INDEX devices_status ON devices (status, id)",
      "CREATE INDEX devices_groups ON devices USING gin (groups)",
      `CREATE TABLE bindings (
        device_id text COLLATE "C" NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        kind text NOT NULL CHECK (${KIND_CHECK}),
        value text NOT NULL,
        pos integer NOT NULL,
        PRIMARY KEY (kind, value)
      )`,
      "CREATE INDEX bindings_device ON bindings (device_id)",
    ],
  },
  {
    version: 2,
    name: "enrollment: tokens, issued certificates, binding retirement",
    sqlite: [
      // When a superseded certificate's binding stops working (epoch ms); NULL: bound until changed.
      "ALTER TABLE bindings ADD COLUMN retire_at INTEGER",
      "CREATE INDEX bindings_retire ON bindings (retire_at) WHERE retire_at IS NOT NULL",
      // device_id is no foreign key: a token may be issued for a device that does not exist yet.
      `CREATE TABLE enrollment_tokens (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL,
        device_id TEXT NOT NULL,
        profile TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER,
        revoked_at INTEGER
      ) STRICT`,
      "CREATE INDEX enrollment_tokens_device ON enrollment_tokens (device_id, id)",
      // device_id is no foreign key: the record of an issued certificate outlives a deleted device.
      `CREATE TABLE issued_certificates (
        serial TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        profile TEXT NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        issued_at INTEGER NOT NULL,
        operation TEXT NOT NULL CHECK (${OPERATION_CHECK}),
        pem TEXT NOT NULL,
        revoked_at INTEGER,
        revocation_reason TEXT
      ) STRICT`,
      "CREATE INDEX issued_certificates_device ON issued_certificates (device_id, serial)",
      "CREATE INDEX issued_certificates_profile ON issued_certificates (profile, revoked_at)",
    ],
    postgres: [
      "ALTER TABLE bindings ADD COLUMN retire_at timestamptz",
      "CREATE INDEX bindings_retire ON bindings (retire_at) WHERE retire_at IS NOT NULL",
      `CREATE TABLE enrollment_tokens (
        id text COLLATE "C" PRIMARY KEY,
        secret_hash text NOT NULL,
        device_id text COLLATE "C" NOT NULL,
        profile text COLLATE "C" NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz,
        revoked_at timestamptz
      )`,
      "CREATE INDEX enrollment_tokens_device ON enrollment_tokens (device_id, id)",
      `CREATE TABLE issued_certificates (
        serial text COLLATE "C" PRIMARY KEY,
        device_id text COLLATE "C" NOT NULL,
        profile text COLLATE "C" NOT NULL,
        fingerprint text NOT NULL UNIQUE,
        subject text NOT NULL,
        not_before timestamptz NOT NULL,
        not_after timestamptz NOT NULL,
        issued_at timestamptz NOT NULL,
        operation text NOT NULL CHECK (${OPERATION_CHECK}),
        pem text NOT NULL,
        revoked_at timestamptz,
        revocation_reason text
      )`,
      "CREATE INDEX issued_certificates_device ON issued_certificates (device_id, serial)",
      "CREATE INDEX issued_certificates_profile ON issued_certificates (profile, revoked_at)",
    ],
  },
];

const LATEST = Math.max(...MIGRATIONS.map((m) => m.version));

function tooNew(version: number): Error {
  return new Error(
    `the registry schema is at version ${version}, newer than this Portcullis knows (${LATEST}); upgrade Portcullis`,
  );
}

/**
 * Applies pending migrations up to `target` (the latest unless a test stops earlier); returns the versions
 * applied now (empty when up to date).
 */
export function migrateSqlite(db: DatabaseSync, target = LATEST): number[] {
  // IMMEDIATE takes the write lock first, so two processes starting together cannot both migrate.
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`);
    const rows = db.prepare("SELECT version FROM schema_migrations").all() as { version: number }[];
    const done = new Set(rows.map((r) => r.version));
    for (const v of done) if (v > LATEST) throw tooNew(v);
    const applied: number[] = [];
    const record = db.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)");
    for (const migration of MIGRATIONS) {
      if (done.has(migration.version) || migration.version > target) continue;
      for (const statement of migration.sqlite) db.exec(statement);
      record.run(migration.version, migration.name, Date.now());
      applied.push(migration.version);
    }
    db.exec("COMMIT");
    return applied;
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Applies pending migrations up to `target` (the latest unless a test stops earlier) in `schema` (created
 * when missing); returns the versions applied now.
 */
export async function migratePostgres(
  client: ClientBase,
  schema: string,
  target = LATEST,
): Promise<number[]> {
  await client.query("BEGIN");
  try {
    // Serialises nodes that start together; released at COMMIT/ROLLBACK.
    await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [`portcullis_migrations:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(`SET LOCAL search_path TO ${quoteIdent(schema)}`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number }>("SELECT version FROM schema_migrations");
    const done = new Set(rows.map((r) => r.version));
    for (const v of done) if (v > LATEST) throw tooNew(v);
    const applied: number[] = [];
    for (const migration of MIGRATIONS) {
      if (done.has(migration.version) || migration.version > target) continue;
      for (const statement of migration.postgres) await client.query(statement);
      await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    await client.query("COMMIT");
    return applied;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}
