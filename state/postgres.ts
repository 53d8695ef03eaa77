// Aurora's state in PostgreSQL: the decision records and arrival history of care queues (and, later,
// the healing audit trail). One schema, migrated forward in order under an advisory lock, so two
// operator replicas starting together never migrate twice.
import pg from 'pg';

export interface StateStore {
  readonly pool: pg.Pool;
  readonly schema: string;
  /** Creates or updates the schema's tables; safe to call from every replica at start. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}

/** A schema name goes into SQL as an identifier, so only plain lower-case names are taken. */
export const schemaNamePattern = /^[a-z_][a-z0-9_]{0,62}$/;

/** Each migration, in order; one applied is never changed, only followed by another. */
const migrations = (schema: string): string[] => [
  `create table ${schema}.carequeue_decisions (
     id bigserial primary key,
     decided_at timestamptz not null,
     namespace text not null,
     queue text not null,
     queue_uid text not null,
     generation bigint not null,
     from_replicas integer not null,
     to_replicas integer not null,
     recommendation integer not null,
     limited_by text not null,
     summary text not null,
     queue_seen boolean not null,
     served_per_consumer_per_second double precision,
     served_rate_measured boolean not null,
     forecast_replicas integer,
     terms jsonb not null
   );
   create index carequeue_decisions_by_queue on ${schema}.carequeue_decisions (namespace, queue, decided_at desc);
   create table ${schema}.carequeue_arrivals (
     namespace text not null,
     queue text not null,
     category text not null,
     bucket_start timestamptz not null,
     arrivals integer not null,
     primary key (namespace, queue, bucket_start, category)
   );`,
];

/** The checks every Aurora store makes of a schema name before it goes into SQL. */
export function checkSchemaName(schema: string): string {
  if (!schemaNamePattern.test(schema)) {
    throw new Error(`the PostgreSQL schema '${schema}' must be lower-case letters, digits and _`);
  }
  return schema;
}

/** A small pool with short time-outs: a PostgreSQL that does not answer fails fast, and is tried again. */
export function openPool(url: string, max = 4, options?: { role?: string }): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    // A role taken at connection start: every session acts as it before its first query.
    ...(options?.role ? { options: `-c role=${options.role}` } : {}),
    connectionTimeoutMillis: 3_000,
    query_timeout: 10_000,
    idleTimeoutMillis: 30_000,
    application_name: 'aurora-operator',
  });
  // A connection that breaks while idle is dropped by the pool; the next query opens another.
  pool.on('error', () => {});
  return pool;
}

/**
 * Applies the migrations not yet recorded in `<schema>.<ledger>`, in order, in one transaction under an
 * advisory lock, so replicas starting together never apply one twice.
 */
export async function applyMigrations(
  pool: pg.Pool,
  schema: string,
  ledger: string,
  steps: readonly string[],
): Promise<void> {
  // Up to date: nothing to do, and a role that may only read and insert (the audit writer) gets no further.
  const current = await pool
    .query<{ version: number }>(
      `select coalesce(max(version), 0)::integer as version from ${schema}.${ledger}`,
    )
    .then((r) => r.rows[0]?.version ?? 0)
    .catch(() => 0);
  if (current >= steps.length) return;
  const client = await pool.connect();
  try {
    await client.query('begin');
    // One migration at a time across replicas: a lock held until commit.
    await client.query("select pg_advisory_xact_lock(hashtext('aurora-migrations'))");
    await client.query(`create schema if not exists ${schema}`);
    await client.query(
      `create table if not exists ${schema}.${ledger} (version integer primary key, applied_at timestamptz not null default now())`,
    );
    const { rows } = await client.query<{ version: number }>(
      `select coalesce(max(version), 0) as version from ${schema}.${ledger}`,
    );
    const applied = rows[0]?.version ?? 0;
    for (const [i, sql] of steps.entries()) {
      if (i + 1 <= applied) continue;
      await client.query(sql);
      await client.query(`insert into ${schema}.${ledger} (version) values ($1)`, [i + 1]);
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

export function createStateStore(options: { url: string; schema?: string }): StateStore {
  const schema = checkSchemaName(options.schema ?? 'aurora');
  const pool = openPool(options.url);
  return {
    pool,
    schema,
    migrate: () => applyMigrations(pool, schema, 'schema_migrations', migrations(schema)),
    close: () => pool.end(),
  };
}
