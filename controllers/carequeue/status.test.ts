import { describe, expect, it } from 'vitest';
import type { CareQueueStatus } from '../../crds/carequeue.ts';
import { figureRefreshMs, statusRefreshMs, statusToWrite } from './status.ts';

describe('figureRefreshMs', () => {
  it.each([
    [1, statusRefreshMs],
    [100, 10_000],
    [101, 10_100],
    [500, 50_000],
  ])('%i queues refresh their figures every %i ms', (queues, expected) => {
    expect(figureRefreshMs(queues)).toBe(expected);
  });
});

/** A value with every object's keys sorted, as the API server serialises a custom resource. */
const asServed = <T>(value: T): T =>
  JSON.parse(
    JSON.stringify(value, (_k, v: unknown) =>
      v && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : v,
    ),
  ) as T;

describe('statusToWrite', () => {
  const written = {
    observedGeneration: 1,
    waitingEntries: 3,
    conditions: [
      {
        type: 'SLOMet',
        status: 'True',
        reason: 'WithinWaits',
        message: 'all within',
        lastTransitionTime: 't',
      },
    ],
  } as unknown as CareQueueStatus;
  const figuresMoved = { ...written, waitingEntries: 4 } as CareQueueStatus;
  const breached = {
    ...written,
    conditions: [
      { type: 'SLOMet', status: 'False', reason: 'Breached', message: 'red', lastTransitionTime: 't' },
    ],
  } as unknown as CareQueueStatus;
  it.each([
    ['nothing written yet: the new one', undefined, figuresMoved, undefined, 0, 10_000, figuresMoved],
    ['figures moved within the refresh: kept', written, figuresMoved, 0, 9_999, 10_000, written],
    ['figures moved, refresh due: the new one', written, figuresMoved, 0, 10_000, 10_000, figuresMoved],
    [
      'figures moved, due at 10 s but 500 queues share the budget: kept',
      written,
      figuresMoved,
      0,
      10_000,
      50_000,
      written,
    ],
    ['a condition changed: at once, whatever the refresh', written, breached, 0, 1, 50_000, breached],
    // As the API server returns it: keys sorted, so only a comparison of values sees nothing changed.
    [
      'read back with its keys in another order: kept',
      asServed(written),
      figuresMoved,
      0,
      9_999,
      10_000,
      'written',
    ],
  ] as const)('%s', (_name, before, next, lastWriteMs, nowMs, refreshMs, expected) => {
    expect(statusToWrite(before, next, lastWriteMs, nowMs, refreshMs)).toBe(
      expected === 'written' ? before : expected,
    );
  });
});
