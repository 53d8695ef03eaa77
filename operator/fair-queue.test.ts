import { describe, expect, it } from 'vitest';
import { createFairQueue } from './fair-queue.ts';

const tick = () => new Promise((r) => setImmediate(r));

/** Starts acquisitions in order and records the order in which they get a slot. */
function contenders(queue: ReturnType<typeof createFairQueue>, tenants: string[]) {
  const started: string[] = [];
  const releases: Array<() => void> = [];
  tenants.forEach((tenant, i) => {
    void queue.acquire(tenant).then((release) => {
      started.push(`${tenant}${i}`);
      releases.push(release);
    });
  });
  return { started, releases };
}

describe('fair queue', () => {
  it('gives a free slot to the next tenant in turn, not to the one with the longest backlog', async () => {
    const queue = createFairQueue({ concurrency: 1, perTenant: 1 });
    const { started, releases } = contenders(queue, ['a', 'a', 'a', 'a', 'b', 'c']);
    await tick();
    expect(started).toEqual(['a0']);
    for (let i = 0; i < 5; i++) {
      releases.shift()?.();
      await tick();
    }
    expect(started).toEqual(['a0', 'b4', 'c5', 'a1', 'a2', 'a3']);
  });

  it('never lets one tenant hold more than its share, so others get the rest', async () => {
    const queue = createFairQueue({ concurrency: 4, perTenant: 2 });
    const { started } = contenders(queue, ['slow', 'slow', 'slow', 'slow', 'er']);
    await tick();
    expect(started.sort()).toEqual(['er4', 'slow0', 'slow1']);
    expect(queue.stats()).toEqual({ running: 3, waiting: 2 });
  });

  it('drops a waiter whose signal aborts, and a released slot is counted once', async () => {
    const queue = createFairQueue({ concurrency: 1, perTenant: 1 });
    const first = await queue.acquire('a');
    const aborter = new AbortController();
    const waiting = queue.acquire('b', aborter.signal);
    aborter.abort(new Error('stopping'));
    await expect(waiting).rejects.toThrow('stopping');
    expect(queue.stats()).toEqual({ running: 1, waiting: 0 });
    first();
    first();
    expect(queue.stats()).toEqual({ running: 0, waiting: 0 });
    const again = await queue.acquire('c');
    expect(queue.stats().running).toBe(1);
    again();
  });
});
