import { describe, expect, it } from 'vitest';
import { FakeClock } from './clock.ts';
import { createEventRecorder } from './events.ts';
import type { KubeClient } from './kube/client.ts';
import type { KubeObject } from './kube/types.ts';

function recordingClient() {
  const calls: Array<{ verb: string; body: unknown }> = [];
  const client = {
    create: async (obj: unknown) => {
      calls.push({ verb: 'create', body: obj });
      return obj;
    },
    patch: async (_ref: unknown, body: unknown) => {
      calls.push({ verb: 'patch', body });
      return body;
    },
  } as unknown as KubeClient;
  return { client, calls };
}

const pool: KubeObject = {
  apiVersion: 'aurora.health/v1alpha1',
  kind: 'InferencePool',
  metadata: { name: 'er-triage', namespace: 'er', uid: 'u-1', resourceVersion: '7' },
};

describe('event recorder', () => {
  it('creates one Event and folds repeats into one series update per interval', async () => {
    const clock = new FakeClock();
    const { client, calls } = recordingClient();
    const recorder = createEventRecorder({ client, controller: 'aurora', instance: 'op-1', clock });
    for (let i = 0; i < 5; i++) {
      recorder.record(pool, 'Warning', 'ModelNotReady', 'Reconcile', 'model er-v2 has not passed acceptance');
      clock.advance(1_000);
    }
    await recorder.flush();
    expect(calls.map((c) => c.verb)).toEqual(['create']);
    expect(calls[0]?.body).toMatchObject({
      reason: 'ModelNotReady',
      type: 'Warning',
      reportingController: 'aurora',
      reportingInstance: 'op-1',
      regarding: { kind: 'InferencePool', name: 'er-triage', namespace: 'er', uid: 'u-1' },
    });
    clock.advance(30_000);
    await recorder.flush();
    expect(calls.map((c) => c.verb)).toEqual(['create', 'patch']);
    expect(calls[1]?.body).toMatchObject({ series: { count: 5 } });
  });

  it('keeps different reasons, notes and objects apart', async () => {
    const clock = new FakeClock();
    const { client, calls } = recordingClient();
    const recorder = createEventRecorder({ client, controller: 'aurora', instance: 'op-1', clock });
    recorder.record(pool, 'Normal', 'Scaled', 'Scale', 'scaled to 3');
    recorder.record(pool, 'Normal', 'Scaled', 'Scale', 'scaled to 4');
    recorder.record(pool, 'Warning', 'Degraded', 'Scale', 'scaled to 4');
    recorder.record(
      { ...pool, metadata: { ...pool.metadata, uid: 'u-2' } },
      'Normal',
      'Scaled',
      'Scale',
      'scaled to 3',
    );
    await recorder.flush();
    expect(calls.filter((c) => c.verb === 'create')).toHaveLength(4);
  });

  it('starts a new Event once the dedup window has passed', async () => {
    const clock = new FakeClock();
    const { client, calls } = recordingClient();
    const recorder = createEventRecorder({ client, controller: 'aurora', instance: 'op-1', clock });
    recorder.record(pool, 'Normal', 'Scaled', 'Scale', 'scaled to 3');
    clock.advance(11 * 60_000);
    recorder.record(pool, 'Normal', 'Scaled', 'Scale', 'scaled to 3');
    await recorder.flush();
    expect(calls.map((c) => c.verb)).toEqual(['create', 'create']);
  });

  it('names Events validly and distinctly for the longest object names', async () => {
    const { client, calls } = recordingClient();
    const recorder = createEventRecorder({ client, controller: 'aurora', instance: 'op-1' });
    // Cut at 236 characters, this name would end in '-.': not a valid DNS subdomain label.
    const long = { ...pool, metadata: { ...pool.metadata, name: `${'a'.repeat(234)}-.b${'c'.repeat(16)}` } };
    recorder.record(long, 'Normal', 'Scaled', 'Scale', 'scaled to 3');
    recorder.record(long, 'Normal', 'Scaled', 'Scale', 'scaled to 4');
    await recorder.flush();
    const names = calls.map((c) => (c.body as KubeObject).metadata.name);
    for (const name of names) {
      expect(name.length).toBeLessThanOrEqual(253);
      expect(name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\.[0-9a-f]{16}$/);
    }
    expect(new Set(names).size).toBe(2);
  });
});
