// The CareQueue controller on the real control plane, the real Redis and the real PostgreSQL. Targets
// here are plain Deployments whose pods the simulated nodes "run" without running anything; tests of
// consumers that really serve live in carequeue-consumers.test.ts.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CareQueue } from '../../crds/kinds.ts';
import { freePort } from '../../hack/local-cluster/control-plane.ts';
import { type ManagedProcess, startProcess, waitFor } from '../../hack/local-cluster/process.ts';
import { redisAnswers } from '../../hack/local-cluster/services.ts';
import { deploymentManifest } from '../../hack/local-cluster/triage-servers.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { StateStore } from '../../state/postgres.ts';
import { type CareQueueTestbed, startCareQueueTestbed } from '../harness/carequeue.ts';
import { testAccess } from '../harness/cluster.ts';

const client = createKubeClient(testAccess());
let testbed: CareQueueTestbed;
let namespace: string;
let redis: Redis;
let store: StateStore;
let schema: string;

beforeAll(async () => {
  testbed = await startCareQueueTestbed('carequeue');
  ({ namespace, redis, store, schema } = testbed);
});

afterAll(async () => {
  await testbed?.cleanup();
});

async function deployment(name: string, replicas: number) {
  await client.create(deploymentManifest({ name, namespace, replicas }));
}

const replicasOf = async (name: string) =>
  (
    await client.get<KubeObject & { spec: { replicas: number } }>({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace },
    })
  )?.spec.replicas;

async function careQueue(name: string, target: string, spec: Record<string, unknown> = {}) {
  await client.create({
    apiVersion: 'aurora.health/v1alpha1',
    kind: 'CareQueue',
    metadata: { name, namespace },
    spec: {
      redis: { urlSecretRef: { name: 'er-redis', key: 'url' } },
      scaleTargetRef: { kind: 'Deployment', name: target },
      minReplicas: 1,
      maxReplicas: 10,
      ...spec,
    },
  });
}
const getQueue = (name: string) =>
  client.get<CareQueue>({
    apiVersion: 'aurora.health/v1alpha1',
    kind: 'CareQueue',
    metadata: { name, namespace },
  });
const condition = (q: CareQueue | undefined, type: string) =>
  q?.status?.conditions?.find((c) => c.type === type);

describe('the CareQueue controller', () => {
  it('scales out for a burst of red patients within a second, and records why', async () => {
    await deployment('burst-consumers', 1);
    await careQueue('burst', 'burst-consumers');
    await waitFor('the queue to be seen', async () =>
      condition(await getQueue('burst'), 'Ready')?.status === 'True' ? true : undefined,
    );
    const key = `aurora:${namespace}:burst:immediate`;
    await redis.xgroup('CREATE', key, 'triage', '0', 'MKSTREAM');
    const started = performance.now();
    const pipeline = redis.pipeline();
    for (let i = 0; i < 30; i++) pipeline.xadd(key, '*', 'features', '{"pulse": 140}');
    await pipeline.exec();
    // 30 red entries, nobody serving: planned within 5 s at the assumed 1 a second per consumer.
    await waitFor(
      '6 replicas',
      async () => ((await replicasOf('burst-consumers')) === 6 ? true : undefined),
      {
        intervalMs: 20,
      },
    );
    expect(performance.now() - started).toBeLessThan(2_000);
    const queue = await waitFor('the status to show it', async () => {
      const q = await getQueue('burst');
      return q?.status?.desiredReplicas === 6 ? q : undefined;
    });
    expect(queue.status?.categories?.[0]).toMatchObject({ name: 'immediate', depth: 30, replicasNeeded: 6 });
    expect(queue.status?.lastDecision).toMatchObject({ fromReplicas: 1, toReplicas: 6 });
    const { rows } = await store.pool.query(
      `select from_replicas, to_replicas, limited_by, terms from ${schema}.carequeue_decisions where namespace = $1 and queue = 'burst'`,
      [namespace],
    );
    expect(rows[0]).toMatchObject({ from_replicas: 1, to_replicas: 6 });
    expect(rows[0].terms[0]).toMatchObject({ category: 'immediate', depth: 30, replicas: 6 });
    const events = await client.list<KubeObject & { reason: string; note: string }>(
      'events.k8s.io/v1',
      'Event',
      { namespace },
    );
    expect(events.items.find((e) => e.reason === 'ScaledUp')?.note).toMatch(/immediate needs 6/);
  });

  it('scales an InferencePool written without spec.replicas, through its scale subresource', async () => {
    // No InferencePool controller runs here: the pool is only a scale target.
    const pool = {
      apiVersion: 'aurora.health/v1alpha1',
      kind: 'InferencePool',
      metadata: { name: 'er-pool', namespace },
    };
    await client.create({
      ...pool,
      spec: { modelRef: { name: 'er-news2-risk' }, minReplicas: 2, maxReplicas: 6 },
    });
    await careQueue('pooled', 'er-pool', {
      scaleTargetRef: { kind: 'InferencePool', name: 'er-pool' },
      minReplicas: 2,
      maxReplicas: 6,
      categories: [{ name: 'urgent', maxWaitSeconds: 10 }],
    });
    const poolReplicas = async () =>
      (await client.get<KubeObject & { spec: { replicas?: number } }>(pool))?.spec.replicas;
    await waitFor('the queue to be seen', async () =>
      condition(await getQueue('pooled'), 'Ready')?.status === 'True' ? true : undefined,
    );
    // What the pool ran (its minReplicas) is written down, so the scale subresource works.
    expect(await poolReplicas()).toBe(2);
    const key = `aurora:${namespace}:pooled:urgent`;
    await redis.xgroup('CREATE', key, 'triage', '0', 'MKSTREAM');
    for (let i = 0; i < 40; i++) await redis.xadd(key, '*', 'features', '{}');
    // 40 waiting, 10 s each at the assumed 1 a second: 4 consumers at first.
    await waitFor('at least 4 replicas', async () => (((await poolReplicas()) ?? 0) >= 4 ? true : undefined));
    // Nobody serves here, so the need grows as the wait runs down, until the bounds hold it.
    await waitFor('6 replicas', async () => ((await poolReplicas()) === 6 ? true : undefined));
    const held = await waitFor('the decision to say what held it', async () => {
      const q = await getQueue('pooled');
      return q?.status?.lastDecision?.toReplicas === 6 ? q.status.lastDecision : undefined;
    });
    expect(held.recommendation).toBeGreaterThan(6);
    expect(held.limitedBy).toMatch(/max$/);
  });

  it('spares the busy consumer on scale-in, and clears what it set when the queue moves to another target', async () => {
    await deployment('moving-a', 3);
    await deployment('moving-b', 1);
    const podsOf = async (app: string) =>
      (await client.list<KubeObject>('v1', 'Pod', { namespace, labelSelector: `app=${app}` })).items.filter(
        (p) => !p.metadata.deletionTimestamp,
      );
    await waitFor('3 pods', async () => ((await podsOf('moving-a')).length === 3 ? true : undefined));
    const busy = (await podsOf('moving-a'))[1]?.metadata.name ?? '';
    const key = `aurora:${namespace}:moving:urgent`;
    await redis.xgroup('CREATE', key, 'triage', '0', 'MKSTREAM');
    await redis.xadd(key, '*', 'features', '{}');
    // The middle pod's consumer holds the one entry.
    await redis.xreadgroup('GROUP', 'triage', busy, 'COUNT', 1, 'STREAMS', key, '>');
    await careQueue('moving', 'moving-a', {
      categories: [{ name: 'urgent', maxWaitSeconds: 3600 }],
      behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
    });
    await waitFor('1 replica', async () => ((await replicasOf('moving-a')) === 1 ? true : undefined));
    const cost = (p?: KubeObject) => p?.metadata.annotations?.['controller.kubernetes.io/pod-deletion-cost'];
    await waitFor('only the busy pod left', async () => {
      const left = await podsOf('moving-a');
      return left.length === 1 && left[0]?.metadata.name === busy ? true : undefined;
    });
    expect(cost((await podsOf('moving-a'))[0])).toBe('1');
    await client.patch(
      { apiVersion: 'aurora.health/v1alpha1', kind: 'CareQueue', metadata: { name: 'moving', namespace } },
      { spec: { scaleTargetRef: { kind: 'Deployment', name: 'moving-b' } } },
      { type: 'merge' },
    );
    await waitFor('the cost cleared on the target it left', async () =>
      cost((await podsOf('moving-a'))[0]) === undefined ? true : undefined,
    );
  });

  it('treats a stream that does not exist yet as an empty category', async () => {
    await deployment('fresh-consumers', 2);
    await careQueue('fresh', 'fresh-consumers', {
      categories: [
        { name: 'urgent', maxWaitSeconds: 600 },
        { name: 'standard', maxWaitSeconds: 3600 },
      ],
      behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
    });
    const queue = await waitFor('the empty queue to be seen', async () => {
      const q = await getQueue('fresh');
      return condition(q, 'Ready')?.status === 'True' && q?.status?.categories?.length === 2 ? q : undefined;
    });
    expect(queue.status?.categories?.map((c) => [c.name, c.depth, c.breaching])).toEqual([
      ['urgent', 0, false],
      ['standard', 0, false],
    ]);
    expect(condition(queue, 'Degraded')).toMatchObject({ status: 'False' });
    expect(condition(queue, 'SLOMet')).toMatchObject({ status: 'True' });
    // Seen and empty: an ordinary scale-in to the floor, not a hold.
    await waitFor('1 replica', async () => ((await replicasOf('fresh-consumers')) === 1 ? true : undefined));
    expect(await redis.exists(`aurora:${namespace}:fresh:urgent`)).toBe(0);
  });

  it('wakes a target at zero for a single red arrival, before any consumer made the group', async () => {
    await deployment('asleep-consumers', 0);
    await careQueue('asleep', 'asleep-consumers', {
      minReplicas: 0,
      categories: [
        { name: 'red', colour: 'red', maxWaitSeconds: 60 },
        { name: 'green', colour: 'green', maxWaitSeconds: 3600 },
      ],
    });
    await waitFor('the queue to be seen', async () =>
      condition(await getQueue('asleep'), 'Ready')?.status === 'True' ? true : undefined,
    );
    await sleep(1_000);
    expect(await replicasOf('asleep-consumers')).toBe(0);
    const started = performance.now();
    // No consumer has run yet, so no group exists: the entry alone must wake the target.
    await redis.xadd(`aurora:${namespace}:asleep:red`, '*', 'features', '{"pulse": 150}');
    await waitFor(
      '1 replica',
      async () => ((await replicasOf('asleep-consumers')) === 1 ? true : undefined),
      {
        intervalMs: 20,
      },
    );
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('holds the replicas while paused, whatever waits', async () => {
    await deployment('held-consumers', 2);
    await careQueue('held', 'held-consumers', {
      paused: true,
      categories: [{ name: 'urgent', maxWaitSeconds: 5 }],
    });
    const key = `aurora:${namespace}:held:urgent`;
    await redis.xgroup('CREATE', key, 'triage', '0', 'MKSTREAM');
    for (let i = 0; i < 40; i++) await redis.xadd(key, '*', 'features', '{}');
    const queue = await waitFor('the backlog to be seen', async () => {
      const q = await getQueue('held');
      return q?.status?.categories?.[0]?.depth === 40 ? q : undefined;
    });
    expect(condition(queue, 'Ready')).toMatchObject({ status: 'True', reason: 'Paused' });
    await sleep(7_000);
    expect(await replicasOf('held-consumers')).toBe(2);
    expect(condition(await getQueue('held'), 'SLOMet')).toMatchObject({
      status: 'False',
      reason: 'WaitBreached',
    });
    // Unpaused, the backlog is acted on at once.
    await client.patch(
      { apiVersion: 'aurora.health/v1alpha1', kind: 'CareQueue', metadata: { name: 'held', namespace } },
      { spec: { paused: false } },
      { type: 'merge' },
    );
    await waitFor('more replicas', async () =>
      ((await replicasOf('held-consumers')) ?? 0) > 2 ? true : undefined,
    );
  });

  it('keeps the surge floor until its time, then lets the replicas go', async () => {
    await deployment('surge-consumers', 1);
    const until = new Date(Date.now() + 12_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await careQueue('surge', 'surge-consumers', {
      surge: { minReplicas: 4, until, reason: 'major incident drill' },
      behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
      categories: [{ name: 'urgent', maxWaitSeconds: 600 }],
    });
    await waitFor('4 replicas', async () => ((await replicasOf('surge-consumers')) === 4 ? true : undefined));
    const queue = await waitFor('the decision to say why', async () => {
      const q = await getQueue('surge');
      return q?.status?.lastDecision?.toReplicas === 4 ? q : undefined;
    });
    expect(queue.status?.lastDecision).toMatchObject({ fromReplicas: 1, limitedBy: 'surge' });
    await sleep(Math.max(0, Date.parse(until) - Date.now() - 2_000));
    expect(await replicasOf('surge-consumers')).toBe(4);
    await waitFor(
      'back to 1 after the surge',
      async () => ((await replicasOf('surge-consumers')) === 1 ? true : undefined),
      { timeoutMs: 15_000 },
    );
  });
});

describe('when Redis stops', () => {
  let server: ManagedProcess | undefined;
  let port = 0;
  const dir = mkdtempSync(join(tmpdir(), 'aurora-redis-'));
  const startRedis = async () => {
    server = startProcess(
      'redis',
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { logDir: dir, pidDir: inject('workloadPidDir') },
    );
    await waitFor('a private Redis', async () =>
      (await redisAnswers(`redis://127.0.0.1:${port}`)) ? true : undefined,
    );
  };

  beforeAll(async () => {
    port = await freePort();
    await startRedis();
    await client.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'private-redis', namespace },
      stringData: { url: `redis://127.0.0.1:${port}` },
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('never scales in while blind, says Degraded, and recovers on its own when Redis returns', async () => {
    await deployment('blind-consumers', 3);
    await careQueue('blind', 'blind-consumers', {
      redis: { urlSecretRef: { name: 'private-redis', key: 'url' } },
      categories: [{ name: 'urgent', maxWaitSeconds: 600 }],
      behavior: { scaleDown: { stabilizationWindowSeconds: 6 } },
    });
    await waitFor('the queue to be seen', async () =>
      condition(await getQueue('blind'), 'Ready')?.status === 'True' ? true : undefined,
    );
    await server?.kill();
    const degraded = await waitFor('Degraded', async () => {
      const c = condition(await getQueue('blind'), 'Degraded');
      return c?.status === 'True' ? c : undefined;
    });
    expect(degraded.reason).toBe('RedisUnreachable');
    // Far past the scale-down window with nothing seen: the consumers stay.
    await sleep(10_000);
    expect(await replicasOf('blind-consumers')).toBe(3);
    const blind = await getQueue('blind');
    expect(condition(blind, 'Ready')?.status).toBe('False');
    expect(condition(blind, 'SLOMet')?.reason).toBe('QueueUnknown');
    await startRedis();
    await waitFor(
      'recovered',
      async () => (condition(await getQueue('blind'), 'Degraded')?.status === 'False' ? true : undefined),
      { timeoutMs: 15_000 },
    );
    // Seen again and empty: now, and only now, the window runs and replicas go.
    await waitFor('1 replica', async () => ((await replicasOf('blind-consumers')) === 1 ? true : undefined), {
      timeoutMs: 20_000,
    });
    const events = await client.list<KubeObject & { reason: string; regarding?: { name?: string } }>(
      'events.k8s.io/v1',
      'Event',
      { namespace },
    );
    const reasons = events.items.filter((e) => e.regarding?.name === 'blind').map((e) => e.reason);
    expect(reasons).toContain('RedisUnreachable');
  });
});
