import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../operator/clock.ts';
import { createMicroBatcher } from './batcher.ts';

const settle = () => new Promise((r) => setImmediate(r));

describe('micro-batcher', () => {
  it('sends a full batch at once and gives each caller its own row', async () => {
    const batches: number[][] = [];
    const b = createMicroBatcher<number, number>({
      maxBatchSize: 3,
      batchWindowMs: 1_000,
      clock: new FakeClock(),
      run: async (xs) => {
        batches.push(xs);
        return xs.map((x) => x * 10);
      },
    });
    const results = await Promise.all([b.submit(1), b.submit(2), b.submit(3)]);
    expect(results).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('sends a partial batch when the first request has waited the window', async () => {
    const clock = new FakeClock();
    const batches: number[][] = [];
    const b = createMicroBatcher<number, number>({
      maxBatchSize: 16,
      batchWindowMs: 5,
      clock,
      run: async (xs) => {
        batches.push(xs);
        return xs;
      },
    });
    const first = b.submit(1);
    clock.advance(3);
    const second = b.submit(2);
    await settle();
    expect(batches).toEqual([]);
    clock.advance(2);
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    expect(batches).toEqual([[1, 2]]);
  });

  it('fails every caller of a batch whose run fails, and carries on', async () => {
    let fail = true;
    const b = createMicroBatcher<number, number>({
      maxBatchSize: 2,
      batchWindowMs: 1_000,
      clock: new FakeClock(),
      run: async (xs) => {
        if (fail) throw new Error('session run failed');
        return xs;
      },
    });
    const failed = await Promise.allSettled([b.submit(1), b.submit(2)]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    expect(await Promise.all([b.submit(3), b.submit(4)])).toEqual([3, 4]);
  });
});

describe('micro-batcher under load', () => {
  it('batches the requests that arrive while the model runs, and sends them as soon as it is free', async () => {
    const batches: number[][] = [];
    let finish: () => void = () => {};
    const b = createMicroBatcher<number, number>({
      maxBatchSize: 16,
      batchWindowMs: 0,
      run: (xs) => {
        batches.push(xs);
        return new Promise((resolve) => {
          finish = () => resolve(xs);
        });
      },
    });
    const first = b.submit(1);
    await settle();
    expect(batches).toEqual([[1]]);
    // The model is busy: these wait for it, with no timer.
    const rest = [b.submit(2), b.submit(3), b.submit(4)];
    await settle();
    expect(batches).toEqual([[1]]);
    finish();
    expect(await first).toBe(1);
    await settle();
    expect(batches).toEqual([[1], [2, 3, 4]]);
    finish();
    expect(await Promise.all(rest)).toEqual([2, 3, 4]);
  });

  it('with no window, sends what arrived together on the next turn of the event loop', async () => {
    const batches: number[][] = [];
    const b = createMicroBatcher<number, number>({
      maxBatchSize: 16,
      batchWindowMs: 0,
      run: async (xs) => {
        batches.push(xs);
        return xs;
      },
    });
    expect(await Promise.all([b.submit(1), b.submit(2)])).toEqual([1, 2]);
    expect(batches).toEqual([[1, 2]]);
  });
});
