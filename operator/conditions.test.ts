import { describe, expect, it } from 'vitest';
import {
  type Condition,
  isConditionTrue,
  rfc3339Seconds,
  setCondition,
  setConditions,
} from './conditions.ts';

const t0 = new Date('2026-11-23T10:00:00.123Z');
const t1 = new Date('2026-11-23T10:05:00.000Z');
const ready = (status: Condition['status'], reason = 'Reason'): Omit<Condition, 'lastTransitionTime'> => ({
  type: 'Ready',
  status,
  reason,
  message: `ready is ${status}`,
});

describe('setCondition', () => {
  const cases: Array<{
    name: string;
    before: Condition[];
    next: ReturnType<typeof ready>;
    generation: number;
    expected: Partial<Condition>;
  }> = [
    {
      name: 'adds a missing condition with the current time',
      before: [],
      next: ready('True'),
      generation: 1,
      expected: { status: 'True', lastTransitionTime: '2026-11-23T10:05:00Z', observedGeneration: 1 },
    },
    {
      name: 'keeps lastTransitionTime when the status does not flip, even if reason and message change',
      before: [{ ...ready('False', 'Old'), lastTransitionTime: rfc3339Seconds(t0), observedGeneration: 1 }],
      next: ready('False', 'New'),
      generation: 2,
      expected: { reason: 'New', lastTransitionTime: '2026-11-23T10:00:00Z', observedGeneration: 2 },
    },
    {
      name: 'moves lastTransitionTime when the status flips',
      before: [{ ...ready('False'), lastTransitionTime: rfc3339Seconds(t0), observedGeneration: 1 }],
      next: ready('True'),
      generation: 1,
      expected: { status: 'True', lastTransitionTime: '2026-11-23T10:05:00Z', observedGeneration: 1 },
    },
    {
      name: 'treats Unknown to False as a flip',
      before: [{ ...ready('Unknown'), lastTransitionTime: rfc3339Seconds(t0) }],
      next: ready('False'),
      generation: 3,
      expected: { status: 'False', lastTransitionTime: '2026-11-23T10:05:00Z', observedGeneration: 3 },
    },
  ];
  it.each(cases)('$name', ({ before, next, generation, expected }) => {
    const after = setCondition(before, next, generation, t1);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject(expected);
  });

  it('leaves other conditions and the input array untouched', () => {
    const before: Condition[] = [
      { type: 'ContractValid', status: 'True', reason: 'Matches', message: '', lastTransitionTime: 'x' },
    ];
    const after = setCondition(before, ready('True'), 4, t1);
    expect(before).toHaveLength(1);
    expect(after.map((c) => c.type)).toEqual(['ContractValid', 'Ready']);
    expect(after[0]).toBe(before[0]);
  });

  it('sets several in order and answers isConditionTrue', () => {
    const after = setConditions(undefined, [ready('True'), { ...ready('False'), type: 'Degraded' }], 7, t1);
    expect(isConditionTrue(after, 'Ready')).toBe(true);
    expect(isConditionTrue(after, 'Degraded')).toBe(false);
    expect(isConditionTrue(after, 'Missing')).toBe(false);
    expect(after.every((c) => c.observedGeneration === 7)).toBe(true);
  });

  it('caps a long message at 1024 characters, keeping short ones as they are', () => {
    const long = setCondition(undefined, { ...ready('False'), message: 'x'.repeat(5000) }, 1, t1);
    expect(long[0]?.message).toHaveLength(1024);
    expect(long[0]?.message.endsWith('…')).toBe(true);
    const exact = setCondition(undefined, { ...ready('False'), message: 'y'.repeat(1024) }, 1, t1);
    expect(exact[0]?.message).toBe('y'.repeat(1024));
  });
});
