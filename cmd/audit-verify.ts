// Verifies a HealingPolicy audit trail: npm run audit:verify -- --postgres-url URL [--schema aurora]
// [--expect-head SEQ:HASH]. Exit 0 when the chain holds, 1 at the first changed, removed, inserted or
// reordered row, 2 on bad usage or when the database cannot be read.
import { parseArgs } from 'node:util';
import { verifyAuditTrail } from '../state/audit.ts';

const usage =
  'usage: npm run audit:verify -- --postgres-url postgres://… [--schema aurora] [--expect-head SEQ:HASH]\n' +
  '  (the URL may also come from AURORA_POSTGRES_URL)';

async function main(): Promise<number> {
  let values: { 'postgres-url'?: string; schema?: string; 'expect-head'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        'postgres-url': { type: 'string' },
        schema: { type: 'string', default: process.env.AURORA_POSTGRES_SCHEMA ?? 'aurora' },
        'expect-head': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    console.error(`${(err as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const url = values['postgres-url'] ?? process.env.AURORA_POSTGRES_URL;
  if (!url) {
    console.error(`--postgres-url is required\n${usage}`);
    return 2;
  }
  const expect = values['expect-head']?.match(/^(\d+):([0-9a-f]{64})$/);
  if (values['expect-head'] && !expect) {
    console.error(`--expect-head must be SEQ:HASH (a row number and its 64-hex hash)\n${usage}`);
    return 2;
  }
  const schema = values.schema ?? 'aurora';
  console.log(`verifying ${schema}.audit_trail …`);
  let result: Awaited<ReturnType<typeof verifyAuditTrail>>;
  try {
    result = await verifyAuditTrail({
      url,
      schema,
      ...(expect ? { expectHead: { seq: Number(expect[1]), hash: expect[2] ?? '' } } : {}),
      onProgress: (n) => {
        if (n > 0 && n % 50_000 === 0) console.log(`  … ${n} rows read`);
      },
    });
  } catch (err) {
    // The code and message of the database's answer; the URL (and any password in it) is never printed.
    const e = err as { code?: string; message?: string };
    console.error(`cannot read the audit trail: ${e.code ?? ''} ${e.message ?? err}`.trim());
    return 2;
  }
  if (!result.ok) {
    console.log(`✗ ${result.problem} at row ${result.seq}: ${result.detail} (${result.rows} rows read)`);
    return 1;
  }
  console.log(
    `✓ ${result.rows} rows, chain intact${result.head ? `; head ${result.head.seq}:${result.head.hash}` : ''}`,
  );
  return 0;
}

process.exit(await main());
