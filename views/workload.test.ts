import { describe, expect, it } from 'vitest';
import { labelSelectorString, workloadView } from './workload.ts';

describe('labelSelectorString', () => {
  it.each([
    ['nothing selects everything', undefined, ''],
    ['labels, sorted by key', { matchLabels: { b: '2', a: '1' } }, 'a=1,b=2'],
    [
      'every operator',
      {
        matchLabels: { app: 'triage' },
        matchExpressions: [
          { key: 'tier', operator: 'In' as const, values: ['b', 'a'] },
          { key: 'zone', operator: 'NotIn' as const, values: ['x'] },
          { key: 'gpu', operator: 'Exists' as const },
          { key: 'legacy', operator: 'DoesNotExist' as const },
        ],
      },
      'app=triage,tier in (a,b),zone notin (x),gpu,!legacy',
    ],
  ])('%s', (_name, selector, expected) => {
    expect(labelSelectorString(selector)).toBe(expected);
  });
});

describe('workloadView', () => {
  it('keeps replicas, selector and revision, and drops the template and managed fields', () => {
    const view = workloadView({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'd', namespace: 'n', managedFields: [{}] } as never,
      spec: { replicas: 3, selector: { matchLabels: { app: 'd' } }, template: { spec: { containers: [] } } },
      status: { replicas: 2, readyReplicas: 2, updateRevision: 'r1' },
    } as never);
    expect(view).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'd', namespace: 'n' },
      spec: { replicas: 3, selector: { matchLabels: { app: 'd' } } },
      status: { replicas: 2, updateRevision: 'r1' },
    });
  });
});
