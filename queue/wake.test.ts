import { describe, expect, it } from 'vitest';
import { maxStreamLooksPerSecond, notificationClasses, pollIntervalMs } from './wake.ts';

describe('pollIntervalMs', () => {
  it.each([
    [0, 250],
    [5, 250],
    // 250 streams at 250 ms is the budget exactly.
    [250, 250],
    [251, 251],
    // 500 queues of five categories: one look at each every 2.5 s.
    [2_500, 2_500],
    [10_000, 10_000],
  ])('%i streams: every %i ms', (keys, expected) => {
    expect(pollIntervalMs(keys, 250)).toBe(expected);
    expect((keys / expected) * 1000).toBeLessThanOrEqual(maxStreamLooksPerSecond);
  });
});

describe('notificationClasses', () => {
  it.each([
    ['', undefined],
    ['Ex', undefined],
    ['KEA', 'keyevent'],
    ['Et', 'keyevent'],
    ['Kt', 'keyspace'],
  ])('%j: %s', (setting, expected) => {
    expect(notificationClasses(setting)).toBe(expected);
  });
});
