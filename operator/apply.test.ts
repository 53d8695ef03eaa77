import { describe, expect, it } from 'vitest';
import { createChildApplier } from './apply.ts';
import type { KubeClient } from './kube/client.ts';
import type { KubeObject } from './kube/types.ts';

// A recording stand-in for the API server: the applier's decisions are pure bookkeeping.
function recordingClient() {
  const writes: KubeObject[] = [];
  let generation = 1;
  const client = {
    async apply(obj: KubeObject) {
      writes.push(obj);
      return { ...obj, metadata: { ...obj.metadata, generation } };
    },
  } as unknown as KubeClient;
  return { client, writes, bump: () => generation++ };
}

const deployment = (replicas: number, generation?: number): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'er-triage', namespace: 'emergency', ...(generation ? { generation } : {}) },
  spec: { replicas },
});

describe('createChildApplier', () => {
  it('applies once, then only when the intent or the live object changed', async () => {
    const { client, writes, bump } = recordingClient();
    const applier = createChildApplier(client);
    const wrote = async (desired: KubeObject, current: KubeObject | undefined) =>
      (await applier.apply(desired, current)) !== undefined;
    expect(await wrote(deployment(2), undefined)).toBe(true);
    expect(await wrote(deployment(2), deployment(2, 1))).toBe(false);
    expect(await wrote(deployment(3), deployment(2, 1))).toBe(true);
    // Someone edited the child (its generation moved): Aurora's intent is applied again.
    bump();
    expect(await wrote(deployment(3), deployment(5, 7))).toBe(true);
    expect(await wrote(deployment(3), deployment(3, 2))).toBe(false);
    // A child deleted behind Aurora's back is not in the cache: it is created again.
    expect(await wrote(deployment(3), undefined)).toBe(true);
    // Recreated by someone else at the same generation (a new uid), or relabelled: applied again.
    const recreated = { ...deployment(3, 2), metadata: { ...deployment(3, 2).metadata, uid: 'another' } };
    expect(await wrote(deployment(3), recreated)).toBe(true);
    const relabelled = {
      ...deployment(3, 2),
      metadata: { ...deployment(3, 2).metadata, labels: { x: 'y' } },
    };
    expect(await wrote(deployment(3), relabelled)).toBe(true);
    expect(writes.map((w) => (w.spec as { replicas: number }).replicas)).toEqual([2, 3, 3, 3, 3, 3]);
  });
});
