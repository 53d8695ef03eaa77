import { describe, expect, it } from 'vitest';
import { trustedReplicas } from './target.ts';

describe('trustedReplicas', () => {
  it.each([
    ['nothing known: the cache', { replicas: 3, generation: 4 }, undefined, 'cache'],
    [
      'the cache agrees with the write',
      { replicas: 6, generation: 5 },
      { replicas: 6, decidedAtGeneration: 4 },
      'cache',
    ],
    [
      'the cache has not seen the write yet',
      { replicas: 1, generation: 4 },
      { replicas: 6, decidedAtGeneration: 4 },
      'known',
    ],
    [
      // A status-only update or another writer's change before Aurora's: the cache moved on but still
      // shows a count from before the write; trusting it would turn a scale-in into a scale-up.
      'the cache moved past the decision yet disagrees',
      { replicas: 1, generation: 5 },
      { replicas: 6, decidedAtGeneration: 4 },
      'live',
    ],
    ['a live read the cache has not caught up with', { replicas: 2, generation: 9 }, { replicas: 4 }, 'live'],
    ['a live read the cache agrees with', { replicas: 4, generation: 9 }, { replicas: 4 }, 'cache'],
    ['no generation in the cache', { replicas: 1 }, { replicas: 6, decidedAtGeneration: 4 }, 'live'],
  ] as const)('%s', (_name, cached, known, expected) => {
    expect(trustedReplicas(cached, known)).toBe(expected);
  });
});
