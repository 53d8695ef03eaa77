import { describe, expect, it } from 'vitest';
import { careQueueSpec } from '../../crds/carequeue.ts';
import {
  atOnceSeconds,
  type CategoryObservation,
  categoryTerms,
  type DecisionInput,
  decideReplicas,
  isBreaching,
} from './decide.ts';

const now = Date.parse('2026-11-28T10:00:00Z');
const spec = (overrides: Record<string, unknown> = {}) =>
  careQueueSpec.parse({
    redis: { urlSecretRef: { name: 'er-redis', key: 'url' } },
    scaleTargetRef: { kind: 'InferencePool', name: 'er-triage' },
    minReplicas: 1,
    maxReplicas: 20,
    ...overrides,
  });
const names = ['immediate', 'very-urgent', 'urgent', 'standard', 'non-urgent'];
/** The five Manchester categories, empty unless given. */
const queue = (
  given: Record<string, Partial<CategoryObservation>> = {},
  /** Entries one consumer serves a second; null: not measured yet. */
  perConsumer: number | null = 1,
) => ({
  categories: names.map((name) => ({
    name,
    depth: 0,
    pending: 0,
    oldestWaitSeconds: 0,
    arrivalsPerSecond: 0,
    ...given[name],
  })),
  ...(perConsumer !== null ? { servedPerConsumerPerSecond: perConsumer } : {}),
});
const input = (over: Partial<DecisionInput> = {}): DecisionInput => ({
  spec: spec(),
  observed: queue(),
  breachingWhenLastSeen: false,
  currentReplicas: 2,
  history: [],
  changes: [],
  nowMs: now,
  ...over,
});

describe('categoryTerms', () => {
  it('sums demand from the top category down, since consumers serve higher acuity first', () => {
    const terms = categoryTerms(
      spec(),
      queue({
        immediate: { depth: 2, oldestWaitSeconds: 1, arrivalsPerSecond: 0.1 },
        'very-urgent': { depth: 30, oldestWaitSeconds: 300, arrivalsPerSecond: 0.5 },
        standard: { depth: 100, oldestWaitSeconds: 600, arrivalsPerSecond: 0.2 },
      }),
      0.5,
    );
    expect(terms.map((t) => [t.category, t.backlogAhead, t.arrivalsAheadPerSecond])).toEqual([
      ['immediate', 2, 0.1],
      ['very-urgent', 32, 0.6],
      ['urgent', 32, 0.6],
      ['standard', 132, 0.8],
      ['non-urgent', 132, 0.8],
    ]);
    // Red: wait 0, planned within 5 s: (2 + 0.1 × 5) / (0.5 × 5) → 1. Waiting 1 s is still "at once".
    expect(terms[0]).toMatchObject({ budgetSeconds: 5, replicas: 1, breaching: false });
    // Orange: 300 s left of 600: (32 + 0.6 × 300) / (0.5 × 300) = 1.41 → 2.
    expect(terms[1]).toMatchObject({ budgetSeconds: 300, replicas: 2, breaching: false });
    // Green: 6600 s left: (132 + 0.8 × 6600) / (0.5 × 6600) = 1.64 → 2.
    expect(terms[3]).toMatchObject({ budgetSeconds: 6600, replicas: 2 });
  });

  it('calls a category with no wait breached only past the moment being read takes', () => {
    expect(isBreaching(0, true, atOnceSeconds)).toBe(false);
    expect(isBreaching(0, true, atOnceSeconds + 0.5)).toBe(true);
    expect(isBreaching(0, false, 30)).toBe(false);
    expect(isBreaching(600, true, 600)).toBe(false);
    expect(isBreaching(600, true, 601)).toBe(true);
    // Only 0 gets the moment: a 1 s wait stays a 1 s wait.
    expect(isBreaching(1, true, 1.5)).toBe(true);
  });

  it('plans a breached category within the shortest budget, not a negative one', () => {
    const [, orange] = categoryTerms(
      spec(),
      queue({ 'very-urgent': { depth: 20, oldestWaitSeconds: 900 } }),
      1,
    );
    expect(orange).toMatchObject({ breaching: true, budgetSeconds: 5, replicas: 4 });
  });
});

describe('decideReplicas', () => {
  it.each<[string, Partial<DecisionInput>, number, string]>([
    ['an empty queue keeps the minimum', { currentReplicas: 3 }, 1, 'min'],
    [
      'a burst of orange patients scales out before their wait is up',
      {
        observed: queue(
          { 'very-urgent': { depth: 120, oldestWaitSeconds: 500, arrivalsPerSecond: 0.2 } },
          0.5,
        ),
      },
      // (120 + 0.2 × 100) / (0.5 × 100) = 2.8 → 3
      3,
      'none',
    ],
    [
      'one red arrival wakes a target at zero',
      {
        spec: spec({
          minReplicas: 0,
          categories: names.slice(1).map((name) => ({ name, maxWaitSeconds: 600 })),
        }),
        currentReplicas: 0,
        observed: {
          categories: names.slice(1).map((name, i) => ({
            name,
            depth: i === 0 ? 1 : 0,
            pending: 0,
            oldestWaitSeconds: 0,
            arrivalsPerSecond: 0,
          })),
        },
      },
      1,
      'none',
    ],
    [
      'the count target applies too',
      { spec: spec({ targetEntriesPerReplica: 10 }), observed: queue({ standard: { depth: 95 } }, 100) },
      10,
      'none',
    ],
    [
      'the steady arrival rate keeps consumers at most 80 % busy',
      { observed: queue({ urgent: { arrivalsPerSecond: 4 } }, 1) },
      5,
      'none',
    ],
    ['maxReplicas caps it', { observed: queue({ immediate: { depth: 500 } }, 1) }, 20, 'max'],
    [
      'a surge holds a floor until its time',
      { spec: spec({ surge: { minReplicas: 6, until: '2026-11-28T12:00:00Z' } }) },
      6,
      'surge',
    ],
    [
      'a surge that is over holds nothing',
      { spec: spec({ surge: { minReplicas: 6, until: '2026-11-28T09:00:00Z' } }), currentReplicas: 6 },
      1,
      'min',
    ],
    [
      'reserved replicas are a floor',
      {
        spec: spec({
          categories: [
            { name: 'immediate', maxWaitSeconds: 0, reservedReplicas: 2 },
            { name: 'urgent', maxWaitSeconds: 3600, reservedReplicas: 1 },
          ],
        }),
        observed: {
          categories: ['immediate', 'urgent'].map((name) => ({
            name,
            depth: 0,
            pending: 0,
            oldestWaitSeconds: 0,
            arrivalsPerSecond: 0,
          })),
          servedPerConsumerPerSecond: 1,
        },
        currentReplicas: 1,
      },
      3,
      'reserved',
    ],
    [
      'paused holds replicas where they are',
      { spec: spec({ paused: true }), currentReplicas: 7 },
      7,
      'paused',
    ],
    [
      'a queue that cannot be seen never loses a consumer',
      { observed: undefined, currentReplicas: 5 },
      5,
      'queue-unknown',
    ],
    [
      'a queue that cannot be seen gains one when a category was breaching',
      { observed: undefined, currentReplicas: 5, breachingWhenLastSeen: true },
      6,
      'queue-unknown',
    ],
    [
      'blind for minutes, it adds one a minute, not one a look',
      {
        observed: undefined,
        currentReplicas: 6,
        breachingWhenLastSeen: true,
        changes: [{ atMs: now - 5_000, from: 5, to: 6 }],
      },
      6,
      'queue-unknown',
    ],
    [
      'the first look after a start scales up at once (the seed of the windows is what runs)',
      {
        observed: queue({ immediate: { depth: 10 } }, 1),
        currentReplicas: 1,
        history: [{ atMs: now, replicas: 1 }],
      },
      2,
      'none',
    ],
    [
      'a category past its wait never loses a consumer',
      { observed: queue({ urgent: { depth: 4, oldestWaitSeconds: 4000 } }, 100), currentReplicas: 5 },
      5,
      'breach',
    ],
    [
      'until the service rate is measured, the assumed one plans',
      {
        spec: spec({ assumedServedPerConsumerPerSecond: 0.5 }),
        observed: queue({ immediate: { depth: 10 } }, null),
        currentReplicas: 1,
      },
      // 10 / (0.5 × 5 s)
      4,
      'none',
    ],
    [
      'blind, entries known to wait wake a target at zero',
      {
        spec: spec({
          minReplicas: 0,
          categories: [{ name: 'urgent', maxWaitSeconds: 3600 }],
        }),
        observed: undefined,
        knownWaiting: true,
        currentReplicas: 0,
      },
      1,
      'queue-unknown',
    ],
    [
      "an InferencePool's own maximum bounds it",
      { observed: queue({ immediate: { depth: 500 } }, 1), targetBounds: { min: 1, max: 6 } },
      6,
      'target-max',
    ],
    [
      "an InferencePool's own minimum bounds it",
      { currentReplicas: 4, targetBounds: { min: 3, max: 6 } },
      3,
      'target-min',
    ],
  ])('%s', (_name, over, replicas, limitedBy) => {
    const decision = decideReplicas(input(over));
    expect([decision.desiredReplicas, decision.limitedBy]).toEqual([replicas, limitedBy]);
  });

  it('scales in only to the highest recommendation of the scale-down window (300 s by default)', () => {
    const history = [
      { atMs: now - 400_000, replicas: 9 },
      { atMs: now - 200_000, replicas: 6 },
      { atMs: now - 10_000, replicas: 3 },
    ];
    const decision = decideReplicas(input({ currentReplicas: 8, history }));
    // The queue is empty now; 9 is outside the window and 6 the highest inside it.
    expect([decision.recommendation, decision.desiredReplicas, decision.limitedBy]).toEqual([
      0,
      6,
      'stabilization',
    ]);
  });

  it('scales up to the lowest recommendation of the scale-up window', () => {
    const decision = decideReplicas(
      input({
        spec: spec({
          behavior: {
            scaleUp: { stabilizationWindowSeconds: 60 },
            scaleDown: { stabilizationWindowSeconds: 300 },
          },
        }),
        observed: queue({ urgent: { arrivalsPerSecond: 8 } }, 1),
        currentReplicas: 2,
        history: [{ atMs: now - 30_000, replicas: 4 }],
      }),
    );
    expect([decision.recommendation, decision.desiredReplicas]).toEqual([10, 4]);
  });

  it('counts the changes of the last minute against its per-minute limit', () => {
    const decision = decideReplicas(
      input({
        spec: spec({
          behavior: {
            scaleUp: { stabilizationWindowSeconds: 0, maxChangePerMinute: 4 },
            scaleDown: { stabilizationWindowSeconds: 0 },
          },
        }),
        observed: queue({ immediate: { depth: 40 } }, 1),
        currentReplicas: 5,
        changes: [{ atMs: now - 20_000, from: 2, to: 5 }],
      }),
    );
    // The queue asks for 40 / 5 = 8; 3 were added 20 s ago, so 1 more now.
    expect([decision.desiredReplicas, decision.limitedBy]).toEqual([6, 'rate']);
  });

  it('takes the forecast when it asks for more than the queue does now, and says why', () => {
    const decision = decideReplicas(input({ forecastReplicas: 7, currentReplicas: 2 }));
    expect(decision.desiredReplicas).toBe(7);
    expect(decision.summary).toBe('the queue asks for 7; 2 → 7');
  });

  it('names the category that decided, in counts and seconds only', () => {
    const decision = decideReplicas(
      input({
        observed: queue(
          { 'very-urgent': { depth: 120, oldestWaitSeconds: 500, arrivalsPerSecond: 0.2 } },
          0.5,
        ),
      }),
    );
    expect(decision.summary).toBe(
      'very-urgent needs 3 (120 waiting at or above it, 0.20/s arriving, 100 s left); 2 → 3',
    );
  });
});
