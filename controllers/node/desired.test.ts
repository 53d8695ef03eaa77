import { describe, expect, it } from 'vitest';
import { unifiedMemoryResource } from '../../crds/labels.ts';
import type { NodeView } from '../../views/node.ts';
import { capacityPatch, desiredUnifiedMemoryMiB, unifiedMemoryFigures } from './desired.ts';

const apple = (gib: string) => ({
  'aurora.health/apple-silicon': 'true',
  'aurora.health/unified-memory-gib': gib,
});
const node = (labels: Record<string, string>, advertised?: string): NodeView => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: 'mac-mini-m4-1', labels },
  status: advertised
    ? {
        capacity: { [unifiedMemoryResource]: advertised },
        allocatable: { [unifiedMemoryResource]: advertised },
      }
    : { capacity: {}, allocatable: {} },
});

describe('desiredUnifiedMemoryMiB', () => {
  it.each([
    ['Mac mini M4, 24 GiB', apple('24'), 20_480],
    ['Mac mini M4 Pro, 64 GiB', apple('64'), 55_705],
    ['an amd64 node', { 'kubernetes.io/arch': 'amd64' }, undefined],
    ['apple-silicon=false', { ...apple('24'), 'aurora.health/apple-silicon': 'false' }, undefined],
    ['no memory label', { 'aurora.health/apple-silicon': 'true' }, undefined],
    ['a memory label that is not a whole number', apple('24.5'), undefined],
    ['a zero memory label', apple('0'), undefined],
  ])('%s → %s', (_name, labels, expected) => {
    expect(desiredUnifiedMemoryMiB(labels)).toBe(expected);
  });
});

describe('capacityPatch', () => {
  it.each([
    ['adds the resource to a profiled node', node(apple('24')), 20_480, '20480'],
    ['changes a stale figure', node(apple('24'), '16000'), 20_480, '20480'],
    ['removes it from a node no longer profiled', node({}, '20480'), undefined, null],
  ])('%s', (_name, n, desired, value) => {
    expect(capacityPatch(n, desired)).toEqual({
      status: {
        capacity: { [unifiedMemoryResource]: value },
        allocatable: { [unifiedMemoryResource]: value },
      },
    });
  });

  it.each([
    ['a node already advertising the figure', node(apple('24'), '20480'), 20_480],
    ['a plain node without the resource', node({}), undefined],
    ['a figure the server wrote back in canonical form', node(apple('24'), '20k'), 20_000],
  ])('writes nothing for %s', (_name, n, desired) => {
    expect(capacityPatch(n, desired)).toBeUndefined();
  });
});

describe('unifiedMemoryFigures', () => {
  it.each([
    [
      'a profiled Mac that advertises',
      node(apple('24'), '20480'),
      { totalMiB: 24_576, advertisedMiB: 20_480 },
    ],
    ['a profiled Mac not advertised yet', node(apple('24')), { totalMiB: 24_576, advertisedMiB: 0 }],
    [
      'a node that lost its profile but still advertises',
      node({}, '20480'),
      { totalMiB: 0, advertisedMiB: 20_480 },
    ],
    ['an amd64 node', node({ 'kubernetes.io/arch': 'amd64' }), undefined],
  ])('%s', (_what, n, expected) => {
    expect(unifiedMemoryFigures(n)).toEqual(expected);
  });
});
