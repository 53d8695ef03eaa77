import { describe, expect, it } from 'vitest';
import { advertisedUnifiedMemoryMiB, firstFitDecreasing, podUnifiedMemoryMiB } from './unified-memory.ts';

describe('advertisedUnifiedMemoryMiB', () => {
  it.each([
    [16, 12_288], // 4 GiB kept back: more than 15 %
    [24, 20_480], // Mac mini M4
    [64, 55_705], // Mac mini M4 Pro: 15 % (9,831 MiB) kept back
    [2, 0],
  ])('%i GiB → %i MiB', (gib, mib) => {
    expect(advertisedUnifiedMemoryMiB(gib)).toBe(mib);
  });
});

describe('podUnifiedMemoryMiB', () => {
  it.each([
    [22.7, 50, 192 + 35],
    [1_000, 50, 192 + 1_500],
    [1_000.2, 0, 192 + 1_001],
    [3_000, 25, 192 + 3_750],
  ])('%d MiB measured, %i %% headroom → %i MiB', (measured, headroom, expected) => {
    expect(podUnifiedMemoryMiB(measured, headroom)).toBe(expected);
  });
});

describe('firstFitDecreasing', () => {
  const fleet = [
    { name: 'm4-1', mib: 20_480 },
    { name: 'm4-2', mib: 20_480 },
  ];

  it('places the largest first and never overcommits a node', () => {
    const result = firstFitDecreasing(
      [
        { name: 'small', mib: 4_000 },
        { name: 'large', mib: 12_000 },
        { name: 'medium', mib: 8_000 },
        { name: 'huge', mib: 16_000 },
      ],
      fleet,
    );
    expect(result.placed).toEqual([
      { item: 'huge', node: 'm4-1' },
      { item: 'large', node: 'm4-2' },
      { item: 'medium', node: 'm4-2' },
      { item: 'small', node: 'm4-1' },
    ]);
    expect(result.unplaced).toEqual([]);
    expect(result.free).toEqual({ 'm4-1': 480, 'm4-2': 480 });
  });

  it('leaves out what fits nowhere', () => {
    const result = firstFitDecreasing(
      [
        { name: 'too-big', mib: 30_000 },
        { name: 'fits', mib: 1_000 },
      ],
      fleet,
    );
    expect(result.unplaced).toEqual(['too-big']);
    expect(result.placed).toEqual([{ item: 'fits', node: 'm4-1' }]);
  });
});
