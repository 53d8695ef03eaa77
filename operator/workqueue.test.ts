import { describe, expect, it } from 'vitest';
import { FakeClock } from './clock.ts';
import { backoffDelayMs, createWorkQueue, routineShare } from './workqueue.ts';

/** Takes every ready key without waiting. */
async function drainReady(queue: ReturnType<typeof createWorkQueue>): Promise<string[]> {
  const keys: string[] = [];
  while (queue.len() > 0) keys.push((await queue.get()) as string);
  return keys;
}

describe('backoffDelayMs', () => {
  it.each([
    [0, 5],
    [1, 10],
    [2, 20],
    [10, 5_120],
    [17, 655_360],
    [18, 1_000_000],
    [1_000, 1_000_000],
  ])('after %i failures waits %i ms', (failures, expected) => {
    expect(backoffDelayMs(failures)).toBe(expected);
  });
});

describe('work queue', () => {
  it('merges repeated adds of a waiting key', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.add('ns/a');
    q.add('ns/b');
    q.add('ns/a');
    expect(q.len()).toBe(2);
    expect(await drainReady(q)).toEqual(['ns/a', 'ns/b']);
  });

  it('never hands one key to two workers at once, and requeues it once done if it was added meanwhile', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.add('ns/a');
    const first = await q.get();
    expect(first).toBe('ns/a');
    q.add('ns/a');
    q.add('ns/a');
    expect(q.len()).toBe(0);
    q.done('ns/a');
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('ns/a');
    q.done('ns/a');
    expect(q.len()).toBe(0);
  });

  it('wakes a waiting worker when a key is added', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    const pending = q.get();
    q.add('ns/a');
    expect(await pending).toBe('ns/a');
  });

  it('backs off failures per key exponentially and forgets on success', async () => {
    const clock = new FakeClock();
    const q = createWorkQueue({ clock });
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const before = clock.now();
      q.addRateLimited('ns/a');
      expect(q.len()).toBe(0);
      while (q.len() === 0) clock.advance(1);
      delays.push(clock.now() - before);
      expect(await q.get()).toBe('ns/a');
      q.done('ns/a');
    }
    expect(delays).toEqual([5, 10, 20, 40]);
    expect(q.failures('ns/a')).toBe(4);
    expect(q.failures('ns/b')).toBe(0);
    q.forget('ns/a');
    expect(q.failures('ns/a')).toBe(0);
  });

  it('keeps the earliest of several delayed adds for a key', async () => {
    const clock = new FakeClock();
    const q = createWorkQueue({ clock });
    q.addAfter('ns/a', 10_000);
    q.addAfter('ns/a', 2_000);
    q.addAfter('ns/a', 5_000);
    clock.advance(1_999);
    expect(q.len()).toBe(0);
    clock.advance(1);
    expect(q.len()).toBe(1);
    expect(await drainReady(q)).toEqual(['ns/a']);
    q.done('ns/a');
    clock.advance(60_000);
    expect(q.len()).toBe(0);
  });

  it('hands out delayed keys in time order', async () => {
    const clock = new FakeClock();
    const q = createWorkQueue({ clock });
    q.addAfter('ns/c', 300);
    q.addAfter('ns/a', 100);
    q.addAfter('ns/b', 200);
    clock.advance(1_000);
    expect(await drainReady(q)).toEqual(['ns/a', 'ns/b', 'ns/c']);
  });

  it('runs at most N keys at a time with N workers, each key alone', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    let active = 0;
    let maxActive = 0;
    const activeKeys = new Set<string>();
    const processed: string[] = [];
    const worker = async () => {
      for (;;) {
        const key = await q.get();
        if (key === undefined) return;
        expect(activeKeys.has(key)).toBe(false);
        activeKeys.add(key);
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setImmediate(r));
        processed.push(key);
        activeKeys.delete(key);
        active--;
        q.done(key);
      }
    };
    for (let i = 0; i < 50; i++) q.add(`ns/k${i % 20}`);
    const workers = [worker(), worker(), worker()];
    while (processed.length < 20) await new Promise((r) => setImmediate(r));
    await q.shutdown();
    await Promise.all(workers);
    expect(maxActive).toBe(3);
    expect(new Set(processed).size).toBe(20);
  });

  it('drains on shutdown: waits for keys in progress, drops the rest, refuses new adds', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.add('ns/a');
    q.add('ns/b');
    const key = (await q.get()) as string;
    let drained = false;
    const shutdown = q.shutdown().then(() => {
      drained = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(drained).toBe(false);
    q.add('ns/c');
    q.done(key);
    await shutdown;
    expect(drained).toBe(true);
    expect(await q.get()).toBeUndefined();
    expect(q.len()).toBe(0);
  });

  it('resolves every shutdown() caller once the keys in progress are done', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.add('ns/a');
    const key = (await q.get()) as string;
    const first = q.shutdown();
    const second = q.shutdown();
    q.done(key);
    await expect(Promise.all([first, second])).resolves.toEqual([undefined, undefined]);
  });

  it(`hands out prompt keys before routine ones, yet gives routine keys every ${routineShare}th turn`, async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    for (const k of ['r1', 'r2', 'r3']) q.add(k, 'routine');
    for (const k of ['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7']) q.add(k);
    expect(q.len()).toBe(10);
    expect(await drainReady(q)).toEqual(['p1', 'p2', 'p3', 'r1', 'p4', 'p5', 'p6', 'r2', 'p7', 'r3']);
  });

  it('moves a waiting routine key ahead when it is added again as prompt, and counts it once', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    q.add('r1', 'routine');
    q.add('r2', 'routine');
    q.add('p1');
    q.add('r2');
    q.add('r2', 'routine');
    expect(q.len()).toBe(3);
    expect(await drainReady(q)).toEqual(['p1', 'r2', 'r1']);
    expect(q.len()).toBe(0);
  });

  it('keeps a routine delay routine, and requeues a key re-added during processing at its priority', async () => {
    const clock = new FakeClock();
    const q = createWorkQueue({ clock });
    q.addAfter('late', 1_000, 'routine');
    q.add('busy');
    expect(await q.get()).toBe('busy');
    q.add('busy', 'routine');
    clock.advance(1_000);
    q.add('now');
    q.done('busy');
    expect(await drainReady(q)).toEqual(['now', 'late', 'busy']);
  });

  it('keeps a key that moved ahead and came back from its old place out of turn', async () => {
    const q = createWorkQueue({ clock: new FakeClock() });
    for (const k of ['a', 'k', 'b']) q.add(k, 'routine');
    q.add('k');
    expect(await q.get()).toBe('k');
    q.done('k');
    q.add('k', 'routine');
    expect(await drainReady(q)).toEqual(['a', 'b', 'k']);
  });

  it('merges delayed adds of a key at the earlier time and the stronger priority', async () => {
    const clock = new FakeClock();
    const q = createWorkQueue({ clock });
    q.addAfter('retry', 100);
    q.addAfter('retry', 50, 'routine');
    q.addAfter('look', 100, 'routine');
    clock.advance(100);
    for (const k of ['r1', 'r2', 'r3']) q.add(k, 'routine');
    for (const k of ['p1', 'p2']) q.add(k);
    expect(await drainReady(q)).toEqual(['retry', 'p1', 'p2', 'look', 'r1', 'r2', 'r3']);
  });

  it('reports depth, adds, retries and queue wait to its observer', async () => {
    const clock = new FakeClock();
    const seen = { depth: [] as number[], added: 0, retried: 0, queued: [] as number[] };
    const q = createWorkQueue({
      clock,
      observer: {
        depth: (d) => seen.depth.push(d),
        added: () => seen.added++,
        retried: () => seen.retried++,
        queued: (s) => seen.queued.push(s),
      },
    });
    q.add('ns/a');
    clock.advance(1_500);
    await q.get();
    q.addRateLimited('ns/b');
    expect(seen).toEqual({ depth: [1, 0], added: 1, retried: 1, queued: [1.5] });
  });
});
