import { describe, expect, it } from 'vitest';
import type { Informer, InformerEvent } from './informer.ts';
import type { KubeObject } from './kube/types.ts';
import { changedBeyondVersion, owned, watch } from './sources.ts';

/** An informer that hands the test's events to whoever subscribed. */
function informerStub() {
  let handler: ((event: InformerEvent<KubeObject>) => void) | undefined;
  const informer = {
    addHandler(h: (event: InformerEvent<KubeObject>) => void) {
      handler = h;
      return () => {
        handler = undefined;
      };
    },
  } as unknown as Informer<KubeObject>;
  return { informer, emit: (event: InformerEvent<KubeObject>) => handler?.(event) };
}

const pod = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: {
    name,
    namespace: 'ward',
    ownerReferences: [
      { apiVersion: 'aurora.health/v1alpha1', kind: 'InferencePool', name: 'er', uid: 'u', controller: true },
    ],
  },
});

describe('event sources', () => {
  it.each([
    [
      'watch',
      (i: Informer<KubeObject>) => watch(i, (o) => [`ward/${o.metadata.name}-queue`]),
      'ward/p-queue',
    ],
    [
      'owned',
      (i: Informer<KubeObject>) => owned(i, { apiVersion: 'aurora.health/v1alpha1', kind: 'InferencePool' }),
      'ward/er',
    ],
  ])('%s: a change wakes at once, a resync waits behind changes', (_name, source, key) => {
    const { informer, emit } = informerStub();
    const woken: Array<[string, string | undefined]> = [];
    const stop = source(informer).start((k, priority) => woken.push([k, priority]));
    emit({ type: 'updated', object: pod('p'), old: pod('p') });
    emit({ type: 'resync', object: pod('p') });
    stop();
    emit({ type: 'added', object: pod('p') });
    expect(woken).toEqual([
      [key, 'prompt'],
      [key, 'routine'],
    ]);
  });
});

describe('changedBeyondVersion', () => {
  const view = (resourceVersion: string, replicas: number, labels: Record<string, string> = {}): KubeObject =>
    ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'triage', namespace: 'ward', resourceVersion, labels },
      spec: { replicas },
      status: { replicas },
    }) as KubeObject;

  it.each([
    ['an add', { type: 'added', object: view('1', 2) }, true],
    ['a delete', { type: 'deleted', object: view('1', 2) }, true],
    ['a resync', { type: 'resync', object: view('1', 2) }, true],
    ['a write to fields the view drops', { type: 'updated', object: view('2', 2), old: view('1', 2) }, false],
    ['a replica count', { type: 'updated', object: view('2', 3), old: view('1', 2) }, true],
    ['a label', { type: 'updated', object: view('2', 2, { tier: 'a' }), old: view('1', 2) }, true],
    ['an update with no old object', { type: 'updated', object: view('2', 2) }, true],
  ] as Array<[string, InformerEvent<KubeObject>, boolean]>)('%s counts: %s', (_name, event, counts) => {
    expect(changedBeyondVersion(event)).toBe(counts);
  });

  it('keeps a watch quiet for writes the view drops', () => {
    const { informer, emit } = informerStub();
    const woken: string[] = [];
    watch(informer, () => ['ward/policy'], changedBeyondVersion).start((k) => woken.push(k));
    emit({ type: 'updated', object: view('2', 2), old: view('1', 2) });
    expect(woken).toEqual([]);
    emit({ type: 'updated', object: view('3', 3), old: view('2', 2) });
    expect(woken).toEqual(['ward/policy']);
  });
});
