import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { readStreams, streamStateScript } from '../../queue/observe.ts';
import { createStreamWaker, type WakeMode } from '../../queue/wake.ts';
import { uniqueSuffix } from '../harness/cluster.ts';

let redis: Redis;
const prefix = `test:observe:${uniqueSuffix()}`;
const seededPulse = '173.5';

beforeAll(async () => {
  redis = new Redis(inject('redisUrl'));
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

/** A stream with 5 entries, 3 delivered to consumer pod-a of group triage, 1 of those acknowledged. */
async function seed(key: string) {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    ids.push(
      (await redis.xadd(
        key,
        '*',
        'features',
        JSON.stringify({ pulse: Number(seededPulse) }),
        'ref',
        `p${i}`,
      )) ?? '',
    );
  }
  await redis.xgroup('CREATE', key, 'triage', '0');
  await redis.xreadgroup('GROUP', 'triage', 'pod-a', 'COUNT', 3, 'STREAMS', key, '>');
  await redis.xack(key, 'triage', ids[0] ?? '');
  return ids;
}

describe.each([
  ['Redis 7 counters', false],
  ['counts as before Redis 7', true],
])('stream state from inside Redis (%s)', (_name, legacyCounts) => {
  it('gives depth, in flight, oldest IDs and counters of a stream, and nothing of its entries', async () => {
    const key = `${prefix}:${legacyCounts ? 'legacy' : 'modern'}`;
    const ids = await seed(key);
    const [state] = await readStreams(
      redis,
      'triage',
      [{ key, cursor: { lastGeneratedId: ids[1], lastDeliveredId: ids[0] } }],
      {
        legacyCounts,
      },
    );
    expect(state).toMatchObject({
      exists: true,
      length: 5,
      lastGeneratedId: ids[4],
      firstAddedSinceId: ids[2],
    });
    if (!state?.exists || state.notAStream || !state.group) throw new Error('no group state');
    expect(state.group).toMatchObject({
      pending: 2,
      lastDeliveredId: ids[2],
      depth: 2,
      depthCapped: false,
      firstUndeliveredId: ids[3],
      oldestPendingId: ids[1],
    });
    expect([...state.group.inFlight]).toEqual([['pod-a', 2]]);
    // pod-a read a moment ago; a consumer that has not read for longer than the window is not listed.
    expect(state.group.activeConsumers).toEqual(['pod-a']);
    if (legacyCounts) {
      // Counted between the IDs seen before and now.
      expect(state.addedSince).toBe(3);
      expect(state.group.deliveredSince).toBe(2);
      expect(state.entriesAdded).toBeUndefined();
    } else {
      expect(state.entriesAdded).toBe(5);
      expect(state.group.entriesRead).toBe(3);
    }
    expect(Math.abs(state.serverTimeMs - Date.now())).toBeLessThan(5_000);
    // The raw reply carries no field of any entry.
    const raw = await redis.eval(
      streamStateScript,
      1,
      key,
      'triage',
      '',
      '',
      legacyCounts ? '1' : '0',
      '10000',
      '5000',
    );
    const text = JSON.stringify(raw);
    expect(text).not.toContain(seededPulse);
    expect(text).not.toContain('features');
    expect(text).not.toContain('p3');
  });
});

describe('streams that are not there yet', () => {
  it('reports a missing stream as missing, a stream without the group as such, a wrong type as such', async () => {
    const noGroup = `${prefix}:nogroup`;
    const notStream = `${prefix}:string`;
    await redis.xadd(noGroup, '*', 'features', '{}');
    await redis.set(notStream, 'x');
    const [missing, withoutGroup, wrongType] = await readStreams(redis, 'triage', [
      { key: `${prefix}:missing` },
      { key: noGroup },
      { key: notStream },
    ]);
    expect(missing).toMatchObject({ exists: false });
    expect(withoutGroup).toMatchObject({ exists: true, length: 1 });
    expect(withoutGroup && 'group' in withoutGroup ? withoutGroup.group : undefined).toBeUndefined();
    expect(wrongType).toMatchObject({ exists: true, notAStream: true });
  });

  it('reads streams whose IDs a producer chose, however large their sequence numbers', async () => {
    const key = `${prefix}:explicit`;
    await redis.xadd(key, '1-100000000000000', 'features', '{}');
    await redis.xadd(key, '1-100000000000001', 'features', '{}');
    await redis.xgroup('CREATE', key, 'triage', '0');
    await redis.xreadgroup('GROUP', 'triage', 'pod-a', 'COUNT', 1, 'STREAMS', key, '>');
    for (const legacyCounts of [false, true]) {
      const [state] = await readStreams(
        redis,
        'triage',
        [{ key, cursor: { lastGeneratedId: '1-100000000000000', lastDeliveredId: '1-100000000000000' } }],
        { legacyCounts },
      );
      if (!state?.exists || state.notAStream || !state.group) throw new Error('no group state');
      expect(state.group).toMatchObject({ depth: 1, pending: 1, firstUndeliveredId: '1-100000000000001' });
    }
  });

  it('caps a count it must walk, and says so', async () => {
    const key = `${prefix}:long`;
    const pipeline = redis.pipeline();
    for (let i = 0; i < 10_050; i++) pipeline.xadd(key, '*', 'features', '{}');
    await pipeline.exec();
    await redis.xgroup('CREATE', key, 'triage', '0');
    const [state] = await readStreams(redis, 'triage', [{ key }], { legacyCounts: true });
    expect(state && 'group' in state ? state.group : undefined).toMatchObject({
      depth: 10_000,
      depthCapped: true,
    });
  });
});

describe('waking on a new entry', () => {
  const wakeWithin = async (mode: WakeMode, key: string) => {
    const client = new Redis(inject('redisUrl'));
    const woken: { owner: string; atMs: number }[] = [];
    const waker = createStreamWaker(client, (owner) => woken.push({ owner, atMs: performance.now() }));
    try {
      await waitFor('the waker to settle', async () => (waker.mode() === mode ? true : undefined), {
        timeoutMs: 5_000,
      });
      waker.watch('emergency/er-queue', [key]);
      await redis.xadd(key, '*', 'features', '{}');
      // The poll needs one look to learn the last ID; the second entry must wake it.
      await new Promise((r) => setTimeout(r, 600));
      woken.length = 0;
      const addedAt = performance.now();
      await redis.xadd(key, '*', 'features', '{}');
      const first = await waitFor('a wake', async () => woken[0], { timeoutMs: 2_000 });
      expect(first.owner).toBe('emergency/er-queue');
      return first.atMs - addedAt;
    } finally {
      waker.close();
      client.disconnect();
    }
  };

  it('polls stream IDs when the server sends no notifications, and wakes within a second', async () => {
    expect(await wakeWithin('poll', `${prefix}:wake-poll`)).toBeLessThan(1_000);
  });

  it('uses keyspace notifications when the server sends them', async () => {
    const [, before] = (await redis.config('GET', 'notify-keyspace-events')) as string[];
    await redis.config('SET', 'notify-keyspace-events', 'Et');
    try {
      expect(await wakeWithin('notifications', `${prefix}:wake-notify`)).toBeLessThan(200);
    } finally {
      await redis.config('SET', 'notify-keyspace-events', before ?? '');
    }
  });

  it('polls past a key that is missing or no stream, and still wakes on the one that is', async () => {
    const client = new Redis(inject('redisUrl'));
    const woken: string[] = [];
    const waker = createStreamWaker(client, (owner) => woken.push(owner));
    const key = `${prefix}:wake-mixed`;
    await redis.set(`${prefix}:not-a-stream`, 'x');
    try {
      await waitFor('the waker to settle', async () => (waker.mode() === 'poll' ? true : undefined), {
        timeoutMs: 5_000,
      });
      waker.watch('emergency/er-queue', [`${prefix}:missing`, `${prefix}:not-a-stream`, key]);
      await redis.xadd(key, '*', 'features', '{}');
      await new Promise((r) => setTimeout(r, 600));
      woken.length = 0;
      await redis.xadd(key, '*', 'features', '{}');
      expect(await waitFor('a wake', async () => woken[0], { timeoutMs: 2_000 })).toBe('emergency/er-queue');
    } finally {
      waker.close();
      client.disconnect();
    }
  });
});
