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

/** One candidate against the lease server, on a fake clock, noting when it leads and when it stops. */
function candidate() {
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
  /** Advances the clock in steps, letting the elector's promises run after each. */
  const advance = async (steps: number, stepMs: number) => {
    for (let i = 0; i < steps; i++) {
      clock.advance(stepMs);
      await settle();
    }
  };
  return { clock, server, events, elector, advance };
}

describe('leader election', () => {
  it('steps down at the renew deadline even while its renewal requests hang', async () => {
    const { clock, server, events, elector, advance } = candidate();
    await settle();
    expect(elector.isLeader()).toBe(true);
    const t0 = clock.now();
    await advance(1, 2_000);
    // Renewed at t0 + 2 s; from now on every request hangs forever.
    server.setHang(true);
    await advance(20, 500);
    expect(events).toEqual([`lead@${t0}`, `lost@${t0 + 2_000 + 8_000}`]);
    expect(elector.isLeader()).toBe(false);
  });

  it('keeps leading through an API server that fails for most of the renew deadline', async () => {
    const { clock, server, events, elector, advance } = candidate();
    await settle();
    const t0 = clock.now();
    // Renewed at t0; every request fails from 0.1 s to 7.2 s, within the 8 s renew deadline.
    await advance(1, 100);
    server.setFail(true);
    await advance(71, 100);
    server.setFail(false);
    await advance(30, 100);
    // Retried every 500 ms while failing, it renews before the deadline instead of every 2 s.
    expect(events).toEqual([`lead@${t0}`]);
    expect(elector.isLeader()).toBe(true);
  });
});
