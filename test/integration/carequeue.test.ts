// The CareQueue controller on the real control plane, the real Redis and the real PostgreSQL. Targets
// here are plain Deployments whose pods the simulated nodes "run" without running anything; tests of
// consumers that really serve live in carequeue-consumers.test.ts.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { registerCareQueueController } from '../../controllers/carequeue/reconcile.ts';
import type { CareQueue } from '../../crds/kinds.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import { createStateStore, type StateStore } from '../../state/postgres.ts';
import { createTestManager, createTestNamespace, testAccess, uniqueSuffix } from '../harness/cluster.ts';

const client = createKubeClient(testAccess());
let namespace: string;
let cleanup: () => Promise<void>;
let manager: Manager;
let redis: Redis;
let store: StateStore;
const schema = `test_cq_${uniqueSuffix()}`;

beforeAll(async () => {
  ({ name: namespace, cleanup } = await createTestNamespace('carequeue'));
  redis = new Redis(inject('redisUrl'));
  store = createStateStore({ url: inject('postgresUrl'), schema });
  await store.migrate();
  await client.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'er-redis', namespace },
    stringData: { url: `${inject('redisUrl')}\n` },
  });
  manager = createTestManager(client, namespace);
  registerCareQueueController(manager, { store });
  await manager.start();
});

afterAll(async () => {
  await manager?.stop();
  const keys = await redis.keys(`aurora:${namespace}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  await store.pool.query(`drop schema ${schema} cascade`);
  await store.close();
  await cleanup();
});

async function deployment(name: string, replicas: number) {
  await client.create({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'consumer', image: 'registry.example/consumer:1' }] },
      },
    },
  });
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
    expect(queue.status?.categories?.[0]).toMatchObject({ name: 'immediate', depth: 30, breaching: true });
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
});
