import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../hack/example-model/patients.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { mutate } from './fuzz.ts';

const base = {
  apiVersion: 'aurora.health/v1alpha1',
  kind: 'CareQueue',
  metadata: { name: 'q', namespace: 'n' },
  spec: {
    minReplicas: 1,
    maxReplicas: 5,
    paused: false,
    consumerGroup: 'triage',
    categories: [{ name: 'immediate', maxWaitSeconds: 0 }],
  },
} as unknown as KubeObject;

describe('mutate', () => {
  it('gives the same cases for a seed, other cases for another seed', () => {
    const a = mutate(base, { seed: 1, perKind: 20, prefix: 'f' }).map((m) => m.description);
    expect(mutate(base, { seed: 1, perKind: 20, prefix: 'f' }).map((m) => m.description)).toEqual(a);
    expect(mutate(base, { seed: 2, perKind: 20, prefix: 'f' }).map((m) => m.description)).not.toEqual(a);
  });

  it('draws every (field, mutation) pair once at most, each a changed whole manifest with a name of its own', () => {
    const all = mutate(base, { seed: 7, perKind: 1000, prefix: 'f' });
    expect(new Set(all.map((m) => m.description)).size).toBe(all.length);
    expect(new Set(all.map((m) => m.manifest.metadata.name)).size).toBe(all.length);
    for (const m of all) {
      expect(m.manifest.kind).toBe('CareQueue');
      expect(m.manifest.metadata).toEqual({ name: m.manifest.metadata.name });
      expect((m.manifest as KubeObject & { spec: unknown }).spec).not.toEqual(
        (base as KubeObject & { spec: unknown }).spec,
      );
    }
    // The base is never changed in place.
    expect((base as KubeObject & { spec: { minReplicas: number } }).spec.minReplicas).toBe(1);
  });

  it.each<[string, Record<string, unknown>]>([
    ['wrong-type spec.minReplicas', { minReplicas: '1' }],
    ['missing spec.consumerGroup', { consumerGroup: undefined }],
    ['min-above-max(minReplicas) spec', { minReplicas: 6 }],
    ['unknown-field spec', { unexpectedField: 1 }],
    ['empty-list spec.categories', { categories: [] }],
    ['wrong-type spec.paused', { paused: 'yes' }],
    [
      'fraction spec.categories[0].maxWaitSeconds',
      { categories: [{ name: 'immediate', maxWaitSeconds: 0.5 }] },
    ],
  ])('%s', (description, change) => {
    const m = mutate(base, { seed: 7, perKind: 1000, prefix: 'f' }).find(
      (x) => x.description === description,
    );
    const expected = { ...(base as KubeObject & { spec: Record<string, unknown> }).spec, ...change };
    for (const [k, v] of Object.entries(change)) if (v === undefined) delete expected[k];
    if (!m) throw new Error(`no case ${description}`);
    expect((m.manifest as KubeObject & { spec: unknown }).spec).toEqual(expected);
  });

  it('seededRandom stays in [0, 1)', () => {
    const r = seededRandom(3);
    for (let i = 0; i < 1000; i++) expect(r()).toBeGreaterThanOrEqual(0);
    const values = Array.from({ length: 1000 }, r);
    expect(Math.max(...values)).toBeLessThan(1);
  });
});
