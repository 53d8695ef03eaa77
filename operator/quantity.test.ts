import { describe, expect, it } from 'vitest';
import { quantityToMiB, quantityValue } from './quantity.ts';

describe('quantityValue', () => {
  it.each([
    ['20480', 20_480],
    ['3k', 3000], // how the API server writes a request of 3000
    ['500m', 0.5],
    ['1.5Gi', 1.5 * 2 ** 30],
    ['1e3', 1000],
    ['12Mi', 12 * 2 ** 20],
    [64, 64],
  ])('%s → %d', (q, value) => {
    expect(quantityValue(q)).toBe(value);
  });

  it.each(['', 'ten', '5 Mi', '5XB', undefined])('%s is not a quantity', (q) => {
    expect(quantityValue(q)).toBeNaN();
  });
});

describe('quantityToMiB', () => {
  it.each([
    ['512Mi', 512],
    ['2Gi', 2048],
    ['1G', 954],
    ['1073741824', 1024],
    ['1.5Gi', 1536],
  ])('%s → %i MiB', (q, mib) => {
    expect(quantityToMiB(q)).toBe(mib);
  });

  it('refuses what is not a quantity', () => {
    expect(() => quantityToMiB('lots')).toThrow('lots is not a quantity');
  });
});
