// CareQueues whose consumers really serve: triage servers run as local processes that follow the
// target's ready pods (simulated nodes run no containers), on the real control plane, Redis and
// PostgreSQL. Consumers are held to a known pace (AURORA_QUEUE_MAX_ENTRIES_PER_SECOND), so how many are
// needed is arithmetic a test can check.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { careQueueSpec } from '../../crds/carequeue.ts';
import type { CareQueue } from '../../crds/kinds.ts';
import { followPodWorkloads, type PodWorkloads } from '../../hack/local-cluster/pod-workloads.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import {
  consumerPodEnv,
  deploymentManifest,
  exampleModelSpec,
} from '../../hack/local-cluster/triage-servers.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { createLogger } from '../../operator/log.ts';
import type { Manager } from '../../operator/manager.ts';
import type { StateStore } from '../../state/postgres.ts';
import { type CareQueueTestbed, recognisablePatient, startCareQueueTestbed } from '../harness/carequeue.ts';
import { testAccess } from '../harness/cluster.ts';

const client = createKubeClient(testAccess());
let testbed: CareQueueTestbed;
let namespace: string;
let redis: Redis;
let store: StateStore;
let schema: string;
let manager: Manager;
const operatorLog: string[] = [];
const workDir = mkdtempSync(join(tmpdir(), 'aurora-consumers-'));
const followers: PodWorkloads[] = [];
const model = exampleModelSpec();

// Recognisable patient values: they must appear in no log, Event, status, metric or decision row.
const { patient, recognisable } = recognisablePatient(4);
const entry = JSON.stringify(
  Object.fromEntries(model.inputs.features.map((f) => [f.name, patient[f.name as keyof typeof patient]])),
);

beforeAll(async () => {
  testbed = await startCareQueueTestbed('cq-consumers', {
    log: createLogger({
      level: 'debug',
      destination: { write: (line: string) => void operatorLog.push(line) },
    }),
  });
  ({ namespace, redis, store, schema, manager } = testbed);
});

afterAll(async () => {
  await Promise.all(followers.map((f) => f.stop()));
  await testbed?.cleanup();
});

/**
 * A Deployment of triage servers consuming a queue at `pace` entries a second each, followed by local
 * processes; the CareQueue itself is created by the returned function, when the test wants it.
 */
async function consumersFor(name: string, replicas: number, pace: number, spec: Record<string, unknown>) {
  const queueSpec = {
    redis: { urlSecretRef: { name: 'er-redis', key: 'url' } },
    scaleTargetRef: { kind: 'Deployment', name: `${name}-consumers` },
    ...spec,
  };
  const env = consumerPodEnv({ namespace, name, spec: careQueueSpec.parse(queueSpec) }, pace);
  await client.create(deploymentManifest({ name: `${name}-consumers`, namespace, replicas, env }));
  const follower = followPodWorkloads({
    client,
    namespace,
    labelSelector: `app=${name}-consumers`,
    workDir: join(workDir, name),
    pidDir: inject('workloadPidDir'),
  });
  followers.push(follower);
  const createQueue = () =>
    client.create({
      apiVersion: 'aurora.health/v1alpha1',
      kind: 'CareQueue',
      metadata: { name, namespace },
      spec: queueSpec,
    });
  return { follower, createQueue };
}

const getQueue = (name: string) =>
  client.get<CareQueue>({
    apiVersion: 'aurora.health/v1alpha1',
    kind: 'CareQueue',
    metadata: { name, namespace },
  });
const podNames = async (app: string) =>
  (await client.list<KubeObject>('v1', 'Pod', { namespace, labelSelector: `app=${app}` })).items
    .filter((p) => !p.metadata.deletionTimestamp)
    .map((p) => p.metadata.name)
    .sort();

describe('consumers that really serve', () => {
  it('a quiet queue scales in after the scale-down window, and the busy consumer keeps and acknowledges its entries', async () => {
    // One entry per 20 s each: a consumer that takes a patient holds it that long.
    const { follower, createQueue } = await consumersFor('calm', 3, 0.05, {
      minReplicas: 1,
      maxReplicas: 5,
      categories: [{ name: 'standard', maxWaitSeconds: 7200 }],
      behavior: { scaleUp: { stabilizationWindowSeconds: 0 }, scaleDown: { stabilizationWindowSeconds: 5 } },
    });
    await waitFor('3 consumers running', async () => (follower.running().size === 3 ? true : undefined), {
      timeoutMs: 60_000,
    });
    const pods = await podNames('calm-consumers');
    const key = `aurora:${namespace}:calm:standard`;
    await redis.xadd(key, '*', 'features', entry, 'ref', 'calm-0');
    const holder = await waitFor('one consumer to hold it', async () => {
      const summary = (await redis.xpending(key, 'triage')) as [
        number,
        string,
        string,
        [string, string][] | null,
      ];
      return summary[3]?.length === 1 ? summary[3][0]?.[0] : undefined;
    });
    expect(pods).toContain(holder);
    // Now the queue: it sees three consumers, one entry in flight, and nothing waiting.
    await createQueue();
    // The window passes with nothing waiting: down to one, and the one left is the busy one.
    await waitFor(
      'the Deployment at 1',
      async () => ((await podNames('calm-consumers')).length === 1 ? true : undefined),
      {
        timeoutMs: 30_000,
        intervalMs: 100,
      },
    );
    expect(await podNames('calm-consumers')).toEqual([holder]);
    await waitFor(
      'every entry served',
      async () => {
        const [pending] = (await redis.xpending(key, 'triage')) as [number];
        const results = await redis.xlen(`aurora:${namespace}:calm:results`);
        return pending === 0 && results === 1 ? true : undefined;
      },
      { timeoutMs: 30_000 },
    );
    const queue = await getQueue('calm');
    expect(queue?.status?.lastDecision).toMatchObject({ toReplicas: 1 });
    expect(queue?.status?.lastDecision?.summary).toMatch(/→ 1/);
  });

  it('measures what one consumer serves while it is kept busy', async () => {
    // One consumer at 4 entries a second, held at one replica, with 80 waiting: busy for 20 s.
    const { follower, createQueue } = await consumersFor('steady', 1, 4, {
      minReplicas: 1,
      maxReplicas: 1,
      categories: [{ name: 'standard', colour: 'green', maxWaitSeconds: 7200 }],
    });
    await waitFor('the consumer', async () => (follower.running().size === 1 ? true : undefined), {
      timeoutMs: 60_000,
    });
    const key = `aurora:${namespace}:steady:standard`;
    await waitFor('the group', async () => ((await redis.exists(key)) === 1 ? true : undefined));
    await createQueue();
    const pipeline = redis.pipeline();
    for (let i = 0; i < 80; i++) pipeline.xadd(key, '*', 'features', entry, 'ref', `steady-${i}`);
    await pipeline.exec();
    const rate = await waitFor(
      'a measured rate',
      async () => (await getQueue('steady'))?.status?.servedPerConsumerPerMinute,
      { timeoutMs: 40_000 },
    );
    // 4 a second is 240 a minute; the measure may run a little under (reads, writes, acknowledgements).
    expect(rate).toBeGreaterThan(120);
    expect(rate).toBeLessThan(300);
  });

  it('scales out for a burst in one category before its maximum wait is breached', async () => {
    // Each consumer serves 4 a second; 200 very-urgent patients at once need about 7 of them to be seen
    // within 30 s (200 / (4 × 30) = 1.7 at the start, more as the wait runs down and consumers start).
    const maxWaitSeconds = 30;
    const { follower, createQueue } = await consumersFor('rush', 1, 4, {
      minReplicas: 1,
      maxReplicas: 8,
      assumedServedPerConsumerPerSecond: 4,
      categories: [
        { name: 'very-urgent', colour: 'orange', maxWaitSeconds },
        { name: 'standard', colour: 'green', maxWaitSeconds: 7200 },
      ],
    });
    await waitFor('the first consumer', async () => (follower.running().size === 1 ? true : undefined), {
      timeoutMs: 60_000,
    });
    await createQueue();
    await waitFor('the queue to be seen', async () =>
      (await getQueue('rush'))?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True'
        ? true
        : undefined,
    );
    const key = `aurora:${namespace}:rush:very-urgent`;
    // The first consumer created the group when it started.
    await waitFor('the group', async () => ((await redis.exists(key)) === 1 ? true : undefined));
    const pipeline = redis.pipeline();
    for (let i = 0; i < 200; i++) pipeline.xadd(key, '*', 'features', entry, 'ref', `rush-${i}`);
    const added = (await pipeline.exec())?.map(([, id]) => String(id)) ?? [];
    const firstArrivalMs = Number(added[0]?.split('-')[0]);
    let scaledOutAtMs: number | undefined;
    let most = 1;
    const results = `aurora:${namespace}:rush:results`;
    await waitFor(
      'all 200 served',
      async () => {
        const replicas =
          (
            await client.get<KubeObject & { spec: { replicas: number } }>({
              apiVersion: 'apps/v1',
              kind: 'Deployment',
              metadata: { name: 'rush-consumers', namespace },
            })
          )?.spec.replicas ?? 0;
        if (replicas > 1 && scaledOutAtMs === undefined) scaledOutAtMs = Date.now();
        most = Math.max(most, replicas);
        return (await redis.xlen(results)) === 200 ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 100 },
    );
    expect(scaledOutAtMs).toBeDefined();
    expect((scaledOutAtMs ?? Infinity) - firstArrivalMs).toBeLessThan(2_000);
    expect(most).toBeGreaterThan(1);
    // Every patient's result was written within the maximum wait of their arrival (both IDs are Redis
    // server times).
    const written = await redis.xrange(results, '-', '+');
    const waits = written.map(([id, fields]) => {
      const entryId = fields[fields.indexOf('entry') + 1] ?? '';
      return Number(id.split('-')[0]) - Number(entryId.split('-')[0]);
    });
    expect(waits).toHaveLength(200);
    expect(Math.max(...waits)).toBeLessThanOrEqual(maxWaitSeconds * 1000);
  });

  it('finds no patient value in what the operator and the consumers wrote out', async () => {
    const queue = await getQueue('calm');
    const rush = await getQueue('rush');
    const events = await client.list('events.k8s.io/v1', 'Event', { namespace });
    const { rows } = await store.pool.query(`select * from ${schema}.carequeue_decisions`);
    // Every consumer of every test here (the burst alone served 200 entries carrying the values).
    const consumerLogs = readdirSync(workDir).flatMap((dir) =>
      readdirSync(join(workDir, dir))
        .filter((f) => f.endsWith('.log'))
        .map((f) => readFileSync(join(workDir, dir, f), 'utf8')),
    );
    const everything = [
      JSON.stringify(queue?.status),
      JSON.stringify(rush?.status),
      JSON.stringify(events.items),
      JSON.stringify(rows),
      await manager.metrics.registry.metrics(),
      ...operatorLog,
      ...consumerLogs,
    ].join('\n');
    expect(rows.length).toBeGreaterThan(0);
    expect(consumerLogs.length).toBeGreaterThan(0);
    for (const value of recognisable) expect(everything).not.toContain(value);
    expect(everything).not.toContain('calm-0');
    expect(everything).not.toMatch(/rush-\d/);
    // The results did carry the classification back into Redis, where patient data belongs.
    const [first] = await redis.xrange(`aurora:${namespace}:calm:results`, '-', '+', 'COUNT', 1);
    expect(first?.[1]).toContain('label');
  });
});
