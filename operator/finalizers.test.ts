import { describe, expect, it } from 'vitest';
import { withFinalizer } from './finalizers.ts';

describe('withFinalizer', () => {
  it.each([
    { current: undefined, present: true, expected: ['aurora.health/cleanup'] },
    { current: ['other/x'], present: true, expected: ['other/x', 'aurora.health/cleanup'] },
    { current: ['aurora.health/cleanup'], present: true, expected: undefined },
    {
      current: ['other/x', 'aurora.health/cleanup', 'other/y'],
      present: false,
      expected: ['other/x', 'other/y'],
    },
    { current: ['other/x'], present: false, expected: undefined },
    { current: undefined, present: false, expected: undefined },
  ])('$current, present=$present → $expected', ({ current, present, expected }) => {
    expect(withFinalizer(current, 'aurora.health/cleanup', present)).toEqual(expected);
  });
});
