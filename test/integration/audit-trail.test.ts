// The healing audit trail on the real PostgreSQL: the database keeps it append-only and chained, the role
// Aurora writes as may only read and insert, and the verifier finds each kind of tampering a superuser
// could do with the triggers switched off.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type AuditEntry, type AuditTrail, openAuditTrail, verifyAuditTrail } from '../../state/audit.ts';
import { uniqueSuffix } from '../harness/cluster.ts';

const url = inject('postgresUrl');
const superuser = new pg.Pool({ connectionString: url, max: 2 });
const schemas: string[] = [];
const trails: AuditTrail[] = [];

const entry = (n: number, type: AuditEntry['type'] = 'Intent'): AuditEntry => ({
  type,
  atMs: Date.now(),
  operator: 'aurora-test',
  policy: { namespace: 'er', name: 'heal', uid: 'policy-uid' },
  target: { kind: 'Deployment', namespace: 'er', name: `svc-${n}`, uid: `t-${n}` },
  mode: 'Enforce',
  step: 0,
  action: 'RestartPod',
  reason: 'CrashLoop',
  details: { pods: [`svc-${n}-abc`], restarts: n },
});

/** A trail of its own schema holding n rows. */
async function trailWith(rows: number): Promise<{ trail: AuditTrail; schema: string }> {
  const schema = `test_audit_${uniqueSuffix()}`;
  schemas.push(schema);
  const trail = openAuditTrail({ url, schema });
  trails.push(trail);
  await trail.migrate();
  for (let n = 1; n <= rows; n++) await trail.append(entry(n));
  return { trail, schema };
}

/** Runs SQL as a superuser would to tamper: in one session with triggers off. */
async function tamper(sql: string): Promise<void> {
  const client = await superuser.connect();
  try {
    await client.query('begin');
    await client.query("set local session_replication_role = 'replica'");
    await client.query(sql);
    await client.query('commit');
  } finally {
    client.release();
  }
}

afterAll(async () => {
  await Promise.all(trails.map((t) => t.close()));
  for (const s of schemas) await superuser.query(`drop schema if exists ${s} cascade`);
  await superuser.end();
});

describe('the audit trail in PostgreSQL', () => {
  let trail: AuditTrail;
  let schema: string;
  beforeAll(async () => {
    ({ trail, schema } = await trailWith(5));
  });

  it('chains each row to the one before and reads a policy’s rows back', async () => {
    const rows = await trail.policyRows('policy-uid', 0);
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(rows[1]?.prevHash).toBe(rows[0]?.hash);
    expect(rows[4]).toMatchObject({ target: { name: 'svc-5' }, details: { restarts: 5 } });
    expect(await verifyAuditTrail({ url, schema })).toMatchObject({ ok: true, rows: 5 });
    // Applying the migrations again changes nothing.
    await trail.migrate();
    expect(await trail.head()).toMatchObject({ seq: 5 });
  });

  it('stays one chain when two writers append at once (a new leader beside an old one)', async () => {
    const { trail: a, schema: s } = await trailWith(1);
    const b = openAuditTrail({ url, schema: s });
    trails.push(b);
    await b.migrate();
    // Each writer's next row goes after the last it wrote, unless the other wrote since: then the
    // database refuses it and the writer appends under the chain's lock.
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).append(entry(i + 2))));
    expect(await verifyAuditTrail({ url, schema: s })).toMatchObject({ ok: true, rows: 41 });
    expect((await a.head())?.seq).toBe(41);
  });

  it('keeps the rows of an open episode however old', async () => {
    const { trail: t } = await trailWith(0);
    const old = Date.now() - 10 * 86_400_000;
    await t.append({ ...entry(1, 'Detected'), atMs: old });
    await t.append({ ...entry(2, 'Detected'), atMs: old });
    await t.append({ ...entry(2, 'Recovered'), atMs: old + 1000 });
    await t.append({ ...entry(3, 'Intent'), atMs: Date.now() });
    const rows = await t.policyRows('policy-uid', Date.now() - 3_600_000);
    // Target 1's episode is open (seq 1), so everything from it on is read; nothing older exists.
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4]);
    const { trail: closed } = await trailWith(0);
    await closed.append({ ...entry(2, 'Detected'), atMs: old });
    await closed.append({ ...entry(2, 'Recovered'), atMs: old + 1000 });
    await closed.append({ ...entry(3, 'Intent'), atMs: Date.now() });
    expect((await closed.policyRows('policy-uid', Date.now() - 3_600_000)).map((r) => r.seq)).toEqual([3]);
  });

  it('refuses UPDATE, DELETE and TRUNCATE, even from a superuser', async () => {
    for (const sql of [
      `update ${schema}.audit_trail set content = content where seq = 1`,
      `delete from ${schema}.audit_trail where seq = 1`,
      `truncate ${schema}.audit_trail`,
    ]) {
      await expect(superuser.query(sql), sql).rejects.toThrow(/append-only/);
    }
  });

  it('refuses a row that does not extend the chain', async () => {
    const { rows } = await superuser.query(`select hash from ${schema}.audit_trail where seq = 5`);
    const bad = [
      // a position already taken, a gap, a wrong link, a hash that does not match
      [5, rows[0].hash, 'x'.repeat(64)],
      [7, rows[0].hash, 'x'.repeat(64)],
      [6, '0'.repeat(64), 'x'.repeat(64)],
      [6, rows[0].hash, 'x'.repeat(64)],
    ];
    for (const [seq, prev, hash] of bad) {
      await expect(
        superuser.query(
          `insert into ${schema}.audit_trail (seq, content, prev_hash, hash) values ($1, $2, $3, $4)`,
          [seq, JSON.stringify({ seq }), prev, hash],
        ),
      ).rejects.toThrow();
    }
    expect(await verifyAuditTrail({ url, schema })).toMatchObject({ ok: true, rows: 5 });
  });

  it('lets the writer role only read and insert', async () => {
    const role = `aurora_test_op_${uniqueSuffix()}`;
    await superuser.query(`create role ${role} login in role aurora_audit_writer`);
    const asOperator = new URL(url);
    asOperator.username = role;
    const writer = openAuditTrail({ url: asOperator.toString(), schema });
    const direct = new pg.Pool({ connectionString: asOperator.toString(), max: 1 });
    try {
      // Already migrated: the writer needs no more than it has.
      await writer.migrate();
      const row = await writer.append(entry(6));
      expect(row.seq).toBe(6);
      await direct.query('set role aurora_audit_writer');
      await expect(direct.query(`update ${schema}.audit_trail set seq = seq`)).rejects.toThrow(
        /permission denied/,
      );
      await expect(direct.query(`alter table ${schema}.audit_trail disable trigger all`)).rejects.toThrow(
        /must be owner|permission denied/,
      );
      expect((await direct.query(`select count(*)::int as n from ${schema}.audit_log`)).rows[0].n).toBe(6);
    } finally {
      await writer.close();
      await direct.end();
      await superuser.query(`drop owned by ${role}`);
      await superuser.query(`drop role ${role}`);
    }
  });
});

describe('npm run audit:verify', () => {
  const run = (schema: string) =>
    promisify(execFile)(process.execPath, [
      'cmd/audit-verify.ts',
      '--postgres-url',
      url,
      '--schema',
      schema,
    ]).then(
      (r) => ({ code: 0, out: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );

  it('passes on an intact trail and names its head', async () => {
    const { schema } = await trailWith(4);
    const result = await run(schema);
    expect(result).toMatchObject({ code: 0 });
    expect(result.out).toMatch(/✓ 4 rows, chain intact; head 4:[0-9a-f]{64}/);
  });

  it.each([
    [
      'changed',
      (s: string) =>
        `update ${s}.audit_trail set content = replace(content, 'RestartPod', 'ScaleOut') where seq = 3`,
      3,
    ],
    ['removed', (s: string) => `delete from ${s}.audit_trail where seq = 3`, 3],
    [
      'inserted',
      // Rows from 3 on moved down one, and a forged row chained properly to row 2 put in their place.
      (s: string) => `
        update ${s}.audit_trail set seq = seq + 1000000 where seq >= 3;
        update ${s}.audit_trail set seq = seq - 999999 where seq > 1000000;
        insert into ${s}.audit_trail (seq, content, prev_hash, hash)
          select 3, c, p, encode(sha256(convert_to(p || E'\\n' || c, 'UTF8')), 'hex')
          from (select '{"seq":3,"type":"Intent","action":"CordonNode"}' as c, hash as p
                from ${s}.audit_trail where seq = 2) forged;`,
      3,
    ],
    [
      'reordered',
      (s: string) => `
        update ${s}.audit_trail set seq = case seq when 3 then 1000004 else 1000003 end where seq in (3, 4);
        update ${s}.audit_trail set seq = seq - 1000000 where seq > 1000000;`,
      3,
    ],
  ])('finds a %s row', async (problem, sql, seq) => {
    const { schema } = await trailWith(6);
    await tamper(sql(schema));
    const result = await run(schema);
    expect(result.code).toBe(1);
    expect(result.out).toContain(`✗ ${problem} at row ${seq}`);
  });
});
