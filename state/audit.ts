// The healing audit trail in PostgreSQL: every finding, intent and outcome of a HealingPolicy as one
// row, append-only and hash-chained, so an auditor can trust that what it says happened is all that
// happened, in that order.
//
// How the database enforces it (migrations below):
// - each row holds `content`, the canonical JSON (RFC 8785) of what it records, its own position `seq`
//   included; `hash` = sha256(prev_hash + "\n" + content) and `prev_hash` is the row before's hash, so
//   changing, removing, inserting or moving a row breaks the chain where it happened;
// - a trigger refuses UPDATE, DELETE and TRUNCATE, and checks on INSERT that a row extends the chain
//   (the next seq, the last row's hash, a hash that matches its content);
// - the role Aurora writes as, aurora_audit_writer, may only INSERT and SELECT.
// A superuser can still switch triggers off and rewrite rows; `npm run audit:verify` finds where.
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import pg from 'pg';
import { applyMigrations, checkSchemaName, openPool } from './postgres.ts';

export const auditWriterRole = 'aurora_audit_writer';
export const genesisHash = '0'.repeat(64);

export const auditRecordTypes = [
  /** A target found failing: its detector and diagnosed cause; an episode begins. */
  'Detected',
  /** A step of the ladder passed over, with the reason (the diagnosis rules it out). */
  'Skipped',
  /** A step that waits for a person's approval annotation. */
  'AwaitingApproval',
  /** An action about to be taken, committed before it is. */
  'Intent',
  /** What came of an intent: its own row, naming the intent. */
  'Outcome',
  /** The ladder ran out: the target is left to a person. */
  'Escalated',
  /** The target is healthy again: the episode ends. */
  'Recovered',
  /** More of the watched targets failed than the policy allows: nothing is done. */
  'StormStarted',
  /** The storm is over; its cool-down begins. */
  'StormEnded',
] as const;
export type AuditRecordType = (typeof auditRecordTypes)[number];

export interface AuditTarget {
  kind: string;
  namespace: string;
  name: string;
  uid: string;
}

/**
 * One record: names, reasons, counts, revisions and model versions. Never patient data and never a
 * log line or a message copied from a pod: every string here is one Aurora composed.
 */
export interface AuditEntry {
  type: AuditRecordType;
  atMs: number;
  /** The operator replica that wrote it. */
  operator: string;
  policy: { namespace: string; name: string; uid: string };
  target?: AuditTarget;
  mode?: 'Enforce' | 'DryRun';
  step?: number;
  action?: string;
  /** For an Outcome: the seq of its Intent. */
  intent?: number;
  outcome?: string;
  detector?: string;
  cause?: string;
  reason?: string;
  message?: string;
  details?: Record<string, string | number | boolean | string[]>;
}

export interface AuditRow extends AuditEntry {
  seq: number;
  hash: string;
  prevHash: string;
}

export const rowHash = (prevHash: string, content: string) =>
  createHash('sha256').update(`${prevHash}\n${content}`, 'utf8').digest('hex');

/** The canonical encoding a row's hash covers: RFC 8785 JSON of the entry with its seq. */
export function canonicalContent(entry: AuditEntry, seq: number): string {
  const text = canonicalize({ ...entry, seq });
  if (text === undefined) throw new Error('audit entry cannot be encoded');
  return text;
}

const migrations = (s: string): string[] => [
  `create table ${s}.audit_trail (
     seq bigint primary key check (seq > 0),
     content text not null,
     prev_hash text not null,
     hash text not null unique,
     -- Read from content, so they can never disagree with what the hash covers.
     at_ms bigint generated always as (((content::jsonb) ->> 'atMs')::bigint) stored,
     type text generated always as ((content::jsonb) ->> 'type') stored,
     policy_uid text generated always as ((content::jsonb) #>> '{policy,uid}') stored,
     target_uid text generated always as ((content::jsonb) #>> '{target,uid}') stored
   );
   create index audit_trail_by_policy on ${s}.audit_trail (policy_uid, seq);
   create index audit_trail_by_policy_type on ${s}.audit_trail (policy_uid, type, seq);

   create function ${s}.audit_trail_append_only() returns trigger language plpgsql as $$
   begin
     raise exception 'the audit trail is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
   end $$;
   create trigger audit_trail_no_update before update or delete on ${s}.audit_trail
     for each row execute function ${s}.audit_trail_append_only();
   create trigger audit_trail_no_truncate before truncate on ${s}.audit_trail
     for each statement execute function ${s}.audit_trail_append_only();

   create function ${s}.audit_trail_extends_chain() returns trigger language plpgsql as $$
   declare
     last_seq bigint;
     last_hash text;
   begin
     select seq, hash into last_seq, last_hash from ${s}.audit_trail order by seq desc limit 1;
     if new.seq <> coalesce(last_seq, 0) + 1 then
       raise exception 'audit row % does not follow row %', new.seq, coalesce(last_seq, 0);
     end if;
     if new.prev_hash <> coalesce(last_hash, repeat('0', 64)) then
       raise exception 'audit row % does not link to the row before it', new.seq;
     end if;
     if ((new.content::jsonb) ->> 'seq')::bigint is distinct from new.seq then
       raise exception 'audit row % records another position', new.seq;
     end if;
     if new.hash <> encode(sha256(convert_to(new.prev_hash || E'\\n' || new.content, 'UTF8')), 'hex') then
       raise exception 'audit row % has a hash that does not match its content', new.seq;
     end if;
     return new;
   end $$;
   create trigger audit_trail_chain before insert on ${s}.audit_trail
     for each row execute function ${s}.audit_trail_extends_chain();

   -- For people: the trail with readable times.
   create view ${s}.audit_log as
     select seq, to_timestamp(at_ms / 1000.0) as at, type,
            content::jsonb #>> '{policy,namespace}' as policy_namespace,
            content::jsonb #>> '{policy,name}' as policy,
            content::jsonb #>> '{target,kind}' as target_kind,
            content::jsonb #>> '{target,namespace}' as target_namespace,
            content::jsonb #>> '{target,name}' as target,
            (content::jsonb ->> 'step')::integer as step,
            content::jsonb ->> 'action' as action,
            content::jsonb ->> 'mode' as mode,
            content::jsonb ->> 'outcome' as outcome,
            (content::jsonb ->> 'intent')::bigint as intent,
            content::jsonb ->> 'cause' as cause,
            content::jsonb ->> 'reason' as reason,
            content::jsonb ->> 'message' as message
     from ${s}.audit_trail;

   do $$ begin
     if not exists (select 1 from pg_roles where rolname = '${auditWriterRole}') then
       create role ${auditWriterRole} nologin;
     end if;
   end $$;
   revoke all on ${s}.audit_trail from public;
   grant usage on schema ${s} to ${auditWriterRole};
   grant select, insert on ${s}.audit_trail to ${auditWriterRole};
   grant select on ${s}.audit_log, ${s}.audit_migrations to ${auditWriterRole};`,
];

/** The database would let Aurora write the trail only with more rights than reading and inserting. */
export class AuditRoleError extends Error {
  readonly code = 'AuditRoleRefused';
}

export interface AuditTrail {
  readonly schema: string;
  /** Applies the schema's migrations (as the login role); then every write runs as the writer role. */
  migrate(): Promise<void>;
  /** Appends one row and returns it once committed. */
  append(entry: AuditEntry): Promise<AuditRow>;
  /**
   * The policy's rows a controller needs to carry on where another replica stopped: those since the
   * given time, and every row of an episode (or storm) still open, however old.
   */
  policyRows(policyUid: string, sinceMs: number): Promise<AuditRow[]>;
  /** The newest row, or undefined for an empty trail. */
  head(): Promise<{ seq: number; hash: string } | undefined>;
  /** One round trip as the writer: fails when the database cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const parseRow = (r: { seq: string; content: string; hash: string; prev_hash: string }): AuditRow => ({
  ...(JSON.parse(r.content) as AuditEntry),
  seq: Number(r.seq),
  hash: r.hash,
  prevHash: r.prev_hash,
});

export function openAuditTrail(options: { url: string; schema?: string }): AuditTrail {
  const schema = checkSchemaName(options.schema ?? 'aurora');
  // Opened once the migrations ran: every session then acts as the writer role where the login role may
  // (is a member, or a superuser, as in a sandbox), so it may only read and insert, whatever else the
  // login could do.
  let pool: pg.Pool | undefined;
  const ready = (): pg.Pool => {
    if (!pool) throw new Error('the audit trail is used before its migrations ran');
    return pool;
  };
  const table = `${schema}.audit_trail`;
  /** The last row this writer wrote: the next append goes after it without a lock, if nobody wrote since. */
  let lastWritten: { seq: number; hash: string } | undefined;
  /** Appends one row: after the last this process wrote in one statement, else under the lock. */
  async function appendNow(entry: AuditEntry): Promise<AuditRow> {
    const insert = (client: pg.PoolClient | pg.Pool, seq: number, prevHash: string) => {
      const content = canonicalContent(entry, seq);
      const hash = rowHash(prevHash, content);
      // Under the chain's lock, taken by the same statement (its transaction holds it until commit), so
      // a writer that read the last row under the lock is never overtaken between its read and insert.
      return client
        .query(
          `with locked as (select pg_advisory_xact_lock(hashtext('${table}')))
           insert into ${table} (seq, content, prev_hash, hash) select $1, $2, $3, $4 from locked`,
          [seq, content, prevHash, hash],
        )
        .then(() => {
          lastWritten = { seq, hash };
          return { ...entry, seq, hash, prevHash };
        });
    };
    // The row after the last one this writer wrote, in one statement: the usual case (the leader is the
    // only writer). The trigger and the primary key refuse it if another wrote meanwhile.
    if (lastWritten) {
      try {
        return await insert(ready(), lastWritten.seq + 1, lastWritten.hash);
      } catch (err) {
        if (!isChainConflict(err)) throw err;
        lastWritten = undefined;
      }
    }
    // Otherwise under the chain's lock, after reading the last row (begin, lock and read in one trip).
    const client = await ready().connect();
    try {
      const results = (await client.query(
        `begin; select pg_advisory_xact_lock(hashtext('${table}')); select seq, hash from ${table} order by seq desc limit 1`,
      )) as unknown as Array<pg.QueryResult<{ seq: string; hash: string }>>;
      const last = results[2]?.rows[0];
      const row = await insert(client, Number(last?.seq ?? 0) + 1, last?.hash ?? genesisHash);
      await client.query('commit');
      return row;
    } catch (err) {
      lastWritten = undefined;
      await client.query('rollback').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }
  let queue: Promise<void> = Promise.resolve();
  return {
    schema,
    async migrate() {
      // Migrations need the login role's rights, not the writer's: their own connection.
      const migrator = new pg.Pool({ connectionString: options.url, max: 1, connectionTimeoutMillis: 3_000 });
      migrator.on('error', () => {});
      try {
        await applyMigrations(migrator, schema, 'audit_migrations', migrations(schema));
        // Whether the login may act as the writer role: SET (PostgreSQL 16 and later), else membership.
        const canSet = await migrator
          .query<{ ok: boolean }>(`select pg_has_role(current_user, '${auditWriterRole}', 'SET') as ok`)
          .catch(() =>
            migrator.query<{ ok: boolean }>(
              `select pg_has_role(current_user, '${auditWriterRole}', 'MEMBER') as ok`,
            ),
          );
        if (!canSet.rows[0]?.ok) {
          // A login that cannot take the role writes as itself, which is fine only if it, too, may only
          // read and insert: one that could change the trail (its owner, say) is refused.
          const { rows } = await migrator.query<{ changes: boolean }>(
            // Rights on the table, or membership (inherited or not) of the table's or the schema's owner.
            `select has_table_privilege(current_user, '${schema}.audit_trail', 'UPDATE, DELETE, TRUNCATE')
                 or pg_has_role(current_user, (select tableowner::text from pg_tables
                                               where schemaname = '${schema}' and tablename = 'audit_trail'), 'MEMBER')
                 or pg_has_role(current_user, (select nspowner from pg_namespace where nspname = '${schema}'), 'MEMBER')
               as changes`,
          );
          if (rows[0]?.changes)
            throw new AuditRoleError(
              `the login may change the audit trail and cannot act as ${auditWriterRole}: grant it that role (and nothing more)`,
            );
        }
        pool ??= openPool(options.url, 4, canSet.rows[0]?.ok ? { role: auditWriterRole } : {});
      } finally {
        await migrator.end();
      }
    },
    append(entry) {
      // One append at a time from this process, so each goes after the last one written, in one trip.
      const run = queue.then(() => appendNow(entry));
      queue = run.then(
        () => {},
        () => {},
      );
      return run;
    },
    async policyRows(policyUid, sinceMs) {
      // Where the oldest open episode or storm began: the latest boundary row per target (and for the
      // storm), kept when it opens one.
      const open = await ready().query<{ seq: string }>(
        `select min(seq) as seq from (
           select distinct on (coalesce(target_uid, '')) seq, type from ${table}
           where policy_uid = $1 and type in ('Detected', 'Recovered', 'StormStarted', 'StormEnded')
           order by coalesce(target_uid, ''), seq desc
         ) boundaries where type in ('Detected', 'StormStarted')`,
        [policyUid],
      );
      const openSeq = open.rows[0]?.seq ? Number(open.rows[0].seq) : Number.MAX_SAFE_INTEGER;
      const { rows } = await ready().query<{ seq: string; content: string; hash: string; prev_hash: string }>(
        `select seq, content, hash, prev_hash from ${table}
         where policy_uid = $1 and (at_ms >= $2 or seq >= $3) order by seq`,
        [policyUid, Math.floor(sinceMs), openSeq],
      );
      return rows.map(parseRow);
    },
    async head() {
      const { rows } = await ready().query<{ seq: string; hash: string }>(
        `select seq, hash from ${table} order by seq desc limit 1`,
      );
      return rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : undefined;
    },
    async ping() {
      await ready().query('select 1');
    },
    close: async () => {
      await pool?.end();
    },
  };
}

/** The database refused a row because another took its place: a unique seq or hash, or the chain trigger. */
const isChainConflict = (err: unknown) => {
  const code = (err as { code?: string }).code;
  return code === '23505' || (code === 'P0001' && /does not (follow|link)/.test((err as Error).message));
};

/** What the verifier found: the first row where the chain breaks, or that it holds. */
export type VerifyResult =
  | { ok: true; rows: number; head?: { seq: number; hash: string } }
  | {
      ok: false;
      rows: number;
      problem: 'changed' | 'removed' | 'inserted' | 'reordered';
      /** The position (seq) where the trail first differs from what was written. */
      seq: number;
      detail: string;
    };

/** The parts of a stored row the verifier reads. */
export interface StoredRow {
  seq: number;
  content: string;
  prevHash: string;
  hash: string;
}

interface Checked {
  seq: number;
  /** Whether the row's hash matches its content and its link, and its content parses. */
  intact: boolean;
  /** The position its content records. */
  claimed: number;
  prevHash: string;
  hash: string;
}

function check(row: StoredRow): Checked {
  let claimed = Number.NaN;
  try {
    claimed = Number((JSON.parse(row.content) as { seq?: unknown }).seq);
  } catch {}
  return {
    seq: row.seq,
    intact: Number.isInteger(claimed) && rowHash(row.prevHash, row.content) === row.hash,
    claimed,
    prevHash: row.prevHash,
    hash: row.hash,
  };
}

/**
 * Walks a trail in the order of its seq column and reports the first place it differs from a chain
 * written by appending: a row whose content or hash was altered (changed), a position with no row or a
 * row whose predecessor is gone (removed), a row no later row links to while its neighbours link past it
 * (inserted), or an intact row standing where another belongs (reordered). Removing the newest rows
 * cannot be seen from the chain alone: compare the head with one noted before (--expect-head).
 */
export function verifyChain(
  stored: readonly StoredRow[],
  expectHead?: { seq: number; hash: string },
): VerifyResult {
  const rows = stored.map(check);
  const byHash = new Map(rows.map((r) => [r.hash, r]));
  const linkedTo = new Set(rows.map((r) => r.prevHash));
  const claimedCount = new Map<number, number>();
  for (const r of rows) claimedCount.set(r.claimed, (claimedCount.get(r.claimed) ?? 0) + 1);
  const fail = (problem: Exclude<VerifyResult, { ok: true }>['problem'], seq: number, detail: string) =>
    ({ ok: false, rows: rows.length, problem, seq, detail }) as const;

  for (const [i, r] of rows.entries()) {
    const before = rows[i - 1];
    const expectedSeq = (before?.seq ?? 0) + 1;
    if (!r.intact) return fail('changed', r.seq, `row ${r.seq}'s content does not match its hash`);
    if (r.seq > expectedSeq) {
      const missing = r.seq - 1 === expectedSeq ? `${expectedSeq}` : `${expectedSeq}-${r.seq - 1}`;
      return fail(
        'removed',
        expectedSeq,
        `no row at ${missing}: the trail goes from ${expectedSeq - 1} to ${r.seq}`,
      );
    }
    if (r.claimed !== r.seq) {
      if ((claimedCount.get(r.claimed) ?? 0) > 1) {
        // Two rows claim one position: the one no row links to is the stranger.
        const twin = rows.find((o) => o !== r && o.claimed === r.claimed);
        const stranger = twin && !linkedTo.has(twin.hash) && linkedTo.has(r.hash) ? twin : r;
        return fail(
          'inserted',
          stranger.seq,
          `row ${stranger.seq} was not written there: two rows claim position ${r.claimed}`,
        );
      }
      if (!claimedCount.has(r.seq) && r.claimed === r.seq + 1 && !byHash.has(r.prevHash)) {
        return fail('removed', r.seq, `the row written at ${r.seq} is gone and later rows moved up`);
      }
      return fail('reordered', r.seq, `row ${r.seq} holds the row written at position ${r.claimed}`);
    }
    const expectedPrev = before?.hash ?? genesisHash;
    if (r.prevHash !== expectedPrev) {
      const target = byHash.get(r.prevHash);
      if (target && target.seq > r.seq) {
        return fail('reordered', r.seq, `row ${r.seq} follows row ${target.seq}, written after it`);
      }
      if (before && target && target.seq < before.seq) {
        return fail(
          'inserted',
          before.seq,
          `row ${before.seq} was not written there: row ${r.seq} follows row ${target.seq}`,
        );
      }
      if (before)
        return fail(
          'changed',
          before.seq,
          `row ${before.seq} was rewritten: row ${r.seq} was chained to another hash`,
        );
      return fail('changed', r.seq, `row ${r.seq} does not start the chain`);
    }
  }
  const last = rows.at(-1);
  if (expectHead) {
    const noted = rows.find((r) => r.seq === expectHead.seq);
    if (!noted)
      return fail(
        'removed',
        (last?.seq ?? 0) + 1,
        `the trail ends at ${last?.seq ?? 0}, before the noted head ${expectHead.seq}`,
      );
    if (noted.hash !== expectHead.hash)
      return fail('changed', noted.seq, `row ${noted.seq} is not the row noted as the head then`);
  }
  return { ok: true, rows: rows.length, ...(last ? { head: { seq: last.seq, hash: last.hash } } : {}) };
}

/** Reads a whole trail in pages (with progress) and verifies it. */
export async function verifyAuditTrail(options: {
  url: string;
  schema: string;
  expectHead?: { seq: number; hash: string };
  onProgress?: (rowsRead: number) => void;
}): Promise<VerifyResult> {
  const schema = checkSchemaName(options.schema);
  const client = new pg.Client({ connectionString: options.url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    const stored: StoredRow[] = [];
    const page = 5_000;
    for (let after = 0; ; ) {
      const { rows } = await client.query<{ seq: string; content: string; prev_hash: string; hash: string }>(
        `select seq, content, prev_hash, hash from ${schema}.audit_trail where seq > $1 order by seq limit ${page}`,
        [after],
      );
      for (const r of rows)
        stored.push({ seq: Number(r.seq), content: r.content, prevHash: r.prev_hash, hash: r.hash });
      options.onProgress?.(stored.length);
      if (rows.length < page) break;
      after = stored.at(-1)?.seq ?? after;
    }
    return verifyChain(stored, options.expectHead);
  } finally {
    await client.end();
  }
}
