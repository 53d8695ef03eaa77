import { describe, expect, it } from 'vitest';
import { FakeClock } from './clock.ts';
import type { KubeClient } from './kube/client.ts';
import { startLeaderElection } from './leader-election.ts';

/** A lease store whose requests can be made to hang, as an API server partitioned from the leader. */
function leaseServer() {
  let lease: Record<string, unknown> | undefined;
  let rv = 0;
  let hang = false;
  let fail = false;
  const pending = () =>
    fail ? Promise.reject(new Error('500 InternalError')) : new Promise<never>(() => {});
  const client = {
    get: async () => (hang || fail ? pending() : lease && structuredClone(lease)),
    create: async (obj: Record<string, unknown>) => {
      if (hang || fail) return pending();
      lease = { ...obj, metadata: { ...(obj.metadata as object), resourceVersion: String(++rv) } };
      return structuredClone(lease);
    },
    update: async (obj: Record<string, unknown>) => {
      if (hang || fail) return pending();
      lease = { ...obj, metadata: { ...(obj.metadata as object), resourceVersion: String(++rv) } };
      return structuredClone(lease);
    },
  } as unknown as KubeClient;
  return {
    client,
    setHang: (h: boolean) => {
      hang = h;
    },
    setFail: (f: boolean) => {
      fail = f;
    },
  };
}

const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

describe('leader election', () => {
  it('steps down at the renew deadline even while its renewal requests hang', async () => {
    const clock = new FakeClock();
    const server = leaseServer();
    const events: string[] = [];
    const elector = startLeaderElection({
      client: server.client,
      namespace: 'aurora-system',
      name: 'aurora-operator',
      identity: 'op-a',
      clock,
      onStartedLeading: () => events.push(`lead@${clock.now()}`),
      onStoppedLeading: () => events.push(`lost@${clock.now()}`),
    });
    await settle();
    expect(elector.isLeader()).toBe(true);
    const t0 = clock.now();
    clock.advance(2_000);
    await settle();
    // Renewed at t0 + 2 s; from now on every request hangs forever.
    server.setHang(true);
    for (let i = 0; i < 20; i++) {
      clock.advance(500);
      await settle();
    }
    expect(events).toEqual([`lead@${t0}`, `lost@${t0 + 2_000 + 8_000}`]);
    expect(elector.isLeader()).toBe(false);
  });

  it('keeps leading through an API server that fails for most of the renew deadline', async () => {
    const clock = new FakeClock();
    const server = leaseServer();
    const events: string[] = [];
    const elector = startLeaderElection({
      client: server.client,
      namespace: 'aurora-system',
      name: 'aurora-operator',
      identity: 'op-a',
      clock,
      onStartedLeading: () => events.push('lead'),
      onStoppedLeading: () => events.push('lost'),
    });
    await settle();
    // Renewed at 0; every request fails from 0.1 s to 7.2 s, within the 8 s renew deadline.
    clock.advance(100);
    server.setFail(true);
    for (let i = 0; i < 71; i++) {
      clock.advance(100);
      await settle();
    }
    server.setFail(false);
    for (let i = 0; i < 30; i++) {
      clock.advance(100);
      await settle();
    }
    // Retried every 500 ms while failing, it renews before the deadline instead of every 2 s.
    expect(events).toEqual(['lead']);
    expect(elector.isLeader()).toBe(true);
  });
});
