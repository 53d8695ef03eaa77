import { describe, expect, it } from 'vitest';
import type { Informer, InformerEvent } from './informer.ts';
import type { KubeObject } from './kube/types.ts';
import { owned, watch } from './sources.ts';

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
