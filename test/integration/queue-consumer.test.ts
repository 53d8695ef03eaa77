import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../hack/local-cluster/process.ts';
import {
  exampleModelEnv,
  exampleModelSpec,
  startTriageServerProcess,
  type TriageServerProcess,
} from '../../hack/local-cluster/triage-servers.ts';
import { recognisablePatient } from '../harness/carequeue.ts';
import { uniqueSuffix } from '../harness/cluster.ts';

const prefix = `test:consumer:${uniqueSuffix()}`;
const categories = ['immediate', 'very-urgent', 'standard'];
const keyOf = (c: string) => `${prefix}:${c}`;
const results = `${prefix}:results`;
const logDir = mkdtempSync(join(tmpdir(), 'aurora-consumer-'));
const spec = exampleModelSpec();
// Recognisable values that must never leave Redis through a log.
const { patient, recognisable } = recognisablePatient();
let redis: Redis;

beforeAll(() => {
  redis = new Redis(inject('redisUrl'));
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

const consumerEnv = (consumer: string, extra: Record<string, string> = {}) => ({
  ...exampleModelEnv(),
  AURORA_QUEUE_REDIS_URL: inject('redisUrl'),
  AURORA_QUEUE_STREAMS: JSON.stringify(categories.map((c) => ({ category: c, streamKey: keyOf(c) }))),
  AURORA_QUEUE_GROUP: 'triage',
  AURORA_QUEUE_RESULT_STREAM: results,
  AURORA_QUEUE_CONSUMER: consumer,
  AURORA_QUEUE_CLAIM_IDLE_SECONDS: '2',
  AURORA_QUEUE_BATCH_SIZE: '8',
  ...extra,
});

const featuresOf = (i: number) =>
  Object.fromEntries(spec.inputs.features.map((f) => [f.name, patient[f.name as keyof typeof patient] ?? i]));

async function resultsFor(): Promise<Record<string, string>[]> {
  const entries = await redis.xrange(results, '-', '+');
  return entries.map(([, fields]) => {
    const out: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i] ?? ''] = fields[i + 1] ?? '';
    return out;
  });
}

describe('the triage server as a queue consumer', () => {
  let server: TriageServerProcess;
  // The last test stops it; when only some tests run, this does.
  afterAll(async () => {
    if (server?.process.isRunning()) await server.process.stop(5_000);
  });

  it('serves the highest category first, writes each result, acknowledges, and rejects a bad entry by field', async () => {
    // A backlog before any consumer: 20 green, then 3 red, then 1 malformed orange.
    await redis.xgroup('CREATE', keyOf('standard'), 'triage', '0', 'MKSTREAM');
    for (let i = 0; i < 20; i++)
      await redis.xadd(
        keyOf('standard'),
        '*',
        'features',
        JSON.stringify(featuresOf(i)),
        'ref',
        `green-${i}`,
      );
    for (let i = 0; i < 3; i++)
      await redis.xadd(keyOf('immediate'), '*', 'features', JSON.stringify(featuresOf(i)), 'ref', `red-${i}`);
    // A consumer that read an orange patient and died before acknowledging it.
    await redis.xgroup('CREATE', keyOf('very-urgent'), 'triage', '0', 'MKSTREAM');
    await redis.xadd(keyOf('very-urgent'), '*', 'features', JSON.stringify(featuresOf(1)), 'ref', 'orphan');
    await redis.xreadgroup('GROUP', 'triage', 'ghost', 'COUNT', 1, 'STREAMS', keyOf('very-urgent'), '>');
    await redis.xadd(keyOf('very-urgent'), '*', 'features', '{"pulse": "fast"}', 'ref', 'orange-bad');

    server = await startTriageServerProcess('consumer-a', consumerEnv('consumer-a'), {
      logDir,
      pidDir: inject('workloadPidDir'),
    });
    const served = await waitFor('24 results', async () => {
      const r = await resultsFor();
      return r.length >= 24 ? r : undefined;
    });
    // Red before orange before green.
    expect(served.slice(0, 3).map((r) => r.category)).toEqual(['immediate', 'immediate', 'immediate']);
    expect(served[3]).toMatchObject({ category: 'very-urgent', ref: 'orange-bad' });
    expect(served[3]?.error).toMatch(/^features\.\w+: (must be a number|required)$/);
    expect(served.slice(4).every((r) => r.category === 'standard')).toBe(true);
    const red = served[0] ?? {};
    expect(red).toMatchObject({ ref: 'red-0', modelVersion: expect.any(String) });
    expect(spec.outputs.labels).toContain(red.label);
    expect(Object.keys(JSON.parse(red.probabilities ?? '{}'))).toEqual(spec.outputs.labels);
    expect(red.modelDigest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(red.entry).toMatch(/^\d+-\d+$/);
    for (const c of ['immediate', 'standard']) {
      const [count] = (await redis.xpending(keyOf(c), 'triage')) as [number];
      expect(count).toBe(0);
    }
    expect(served.some((r) => r.ref === 'orphan')).toBe(false);
    // Each entry once, though two batches are in flight at a time.
    // (An ID is unique within its stream only: the category completes it.)
    expect(new Set(served.map((r) => `${r.category}|${r.entry}`)).size).toBe(served.length);
  });

  it('claims what a dead consumer held after the idle time', async () => {
    const found = await waitFor(
      'the orphan served',
      async () => (await resultsFor()).find((r) => r.ref === 'orphan'),
      {
        timeoutMs: 10_000,
      },
    );
    expect(spec.outputs.labels).toContain(found.label);
    const [pending] = (await redis.xpending(keyOf('very-urgent'), 'triage')) as [number];
    expect(pending).toBe(0);
  });

  it('answers an entry whose batch failed delivery after delivery with an error, and lets it go', async () => {
    // Added and taken by a consumer that then died, in one transaction (the running one reads at once).
    const replies = (await redis
      .multi()
      .xadd(keyOf('standard'), '*', 'features', JSON.stringify(featuresOf(3)), 'ref', 'poison')
      .xreadgroup('GROUP', 'triage', 'ghost', 'COUNT', 1, 'STREAMS', keyOf('standard'), '>')
      .exec()) as [Error | null, unknown][];
    const id = String(replies[0]?.[1]);
    // As if it had been claimed and failed nine times already.
    await redis.xclaim(keyOf('standard'), 'triage', 'ghost', 0, id, 'RETRYCOUNT', 9);
    const result = await waitFor(
      'its answer',
      async () => (await resultsFor()).find((r) => r.ref === 'poison'),
      {
        timeoutMs: 10_000,
      },
    );
    expect(result.error).toBe('not classified after 5 deliveries');
    expect(result.label).toBeUndefined();
    const [pending] = (await redis.xpending(keyOf('standard'), 'triage')) as [number];
    expect(pending).toBe(0);
  });

  it('after a restart serves everything it held before, not one batch of it', async () => {
    const key = `${prefix}:held`;
    await redis.xgroup('CREATE', key, 'triage', '0', 'MKSTREAM');
    for (let i = 0; i < 20; i++)
      await redis.xadd(key, '*', 'features', JSON.stringify(featuresOf(i)), 'ref', `held-${i}`);
    // A consumer of this name held all 20 (several lanes of batches) when it stopped.
    await redis.xreadgroup('GROUP', 'triage', 'consumer-c', 'COUNT', 20, 'STREAMS', key, '>');
    const restarted = await startTriageServerProcess(
      'consumer-c',
      consumerEnv('consumer-c', {
        AURORA_QUEUE_STREAMS: JSON.stringify([{ category: 'held', streamKey: key }]),
        AURORA_QUEUE_RESULT_STREAM: `${key}:results`,
        // Claims come too late to help: only its own pending can serve them in time.
        AURORA_QUEUE_CLAIM_IDLE_SECONDS: '600',
      }),
      { logDir, pidDir: inject('workloadPidDir') },
    );
    try {
      await waitFor(
        'all 20 served',
        async () => ((await redis.xlen(`${key}:results`)) === 20 ? true : undefined),
        {
          timeoutMs: 5_000,
        },
      );
      const [pending] = (await redis.xpending(key, 'triage')) as [number];
      expect(pending).toBe(0);
    } finally {
      await restarted.process.stop();
    }
  });

  it('answers an entry at once when the queue is quiet, whichever lane holds the blocking read', async () => {
    const before = (await resultsFor()).length;
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 300));
      const id = await redis.xadd(
        keyOf('immediate'),
        '*',
        'features',
        JSON.stringify(featuresOf(i)),
        'ref',
        `quiet-${i}`,
      );
      const result = await waitFor(
        'its result',
        async () => (await resultsFor()).find((r) => r.entry === id),
        {
          intervalMs: 5,
        },
      );
      expect(result.ref).toBe(`quiet-${i}`);
      const [written] = (await redis.xrange(results, '-', '+')).filter(([, f]) => f.includes(id ?? ''));
      waits.push(Number(written?.[0].split('-')[0]) - Number(id?.split('-')[0]));
    }
    expect((await resultsFor()).length).toBe(before + 5);
    // A blocked read holds its connection; a lane sharing it would wait up to a second to write.
    expect(Math.max(...waits)).toBeLessThan(400);
  });

  it('skips a category whose key is not a stream and serves the others', async () => {
    const odd = `${prefix}:odd`;
    await redis.set(keyOf('wrong'), 'not a stream');
    const oddServer = await startTriageServerProcess(
      'consumer-odd',
      consumerEnv('consumer-odd', {
        AURORA_QUEUE_STREAMS: JSON.stringify([
          { category: 'wrong', streamKey: keyOf('wrong') },
          { category: 'fine', streamKey: odd },
        ]),
        AURORA_QUEUE_RESULT_STREAM: `${odd}:results`,
      }),
      { logDir, pidDir: inject('workloadPidDir') },
    );
    try {
      const id = await redis.xadd(odd, '*', 'features', JSON.stringify(featuresOf(2)), 'ref', 'fine-0');
      const served = await waitFor('the other category served', async () => {
        const [first] = await redis.xrange(`${odd}:results`, '-', '+');
        return first;
      });
      expect(served[1]).toContain(id);
      expect(await oddServer.process.logTail(50)).toMatch(/not a stream/);
      // Mended: the key is deleted and a producer adds to it as a stream (no group yet).
      await redis.del(keyOf('wrong'));
      const mended = await redis.xadd(
        keyOf('wrong'),
        '*',
        'features',
        JSON.stringify(featuresOf(4)),
        'ref',
        'mended',
      );
      await waitFor(
        'the mended category served',
        async () =>
          (await redis.xrange(`${odd}:results`, '-', '+')).some(([, f]) => f.includes(mended ?? ''))
            ? true
            : undefined,
        { timeoutMs: 10_000 },
      );
    } finally {
      await oddServer.process.stop();
    }
  });

  it('on SIGTERM stops reading, finishes and acknowledges what it holds, and exits', async () => {
    const before = (await resultsFor()).length;
    const pipeline = redis.pipeline();
    for (let i = 0; i < 20_000; i++)
      pipeline.xadd(keyOf('standard'), '*', 'features', JSON.stringify(featuresOf(i)), 'ref', `late-${i}`);
    await pipeline.exec();
    // Stopped while it is working through them.
    await waitFor(
      'the first late result',
      async () => ((await resultsFor()).length > before ? true : undefined),
      {
        intervalMs: 5,
      },
    );
    await server.process.stop(15_000);
    expect(await server.process.exited).toBe(0);
    const [pendingAfter] = (await redis.xpending(keyOf('standard'), 'triage')) as [number];
    expect(pendingAfter).toBe(0);
    // Everything delivered to it was served: one result per entry read, and the rest still waiting.
    const late = (await resultsFor()).filter((r) => r.ref?.startsWith('late-')).length;
    const groups = (await redis.xinfo('GROUPS', keyOf('standard'))) as (string | number)[][];
    const lag = Number(groups[0]?.[groups[0].indexOf('lag') + 1]);
    expect(late).toBeGreaterThan(0);
    expect(late + lag).toBe(20_000);
    const log = readFileSync(server.process.logPath, 'utf8');
    expect(log).toContain('queue consumer stopped');
    // No patient value or reference reached the log.
    for (const value of recognisable) expect(log).not.toContain(value);
    expect(log).not.toContain('red-0');
  });
});
