// Test helpers for the PostgreSQL store: the test database and a fresh schema per test, dropped afterwards.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { quoteIdent } from "../migrations.ts";

export const PG_URL = process.env.PORTCULLIS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other run uses, so parallel runs never collide. */
export function freshSchema(): string {
  return `portcullis_test_${randomBytes(6).toString("hex")}`;
}

export async function pgQuery<R extends pg.QueryResultRow>(
  sql: string,
  params: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await pgQuery(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
}
