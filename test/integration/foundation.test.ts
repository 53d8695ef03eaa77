import { AppsV1Api, CoreV1Api, type V1Pod, VersionApi } from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { nodeLabels } from '../../crds/labels.ts';
import { isNodeReady } from '../../hack/local-cluster/control-plane.ts';
import { hospitalFleet, kwokNodeAnnotation } from '../../hack/local-cluster/fleet.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { pinnedVersions } from '../../hack/local-cluster/versions.ts';
import { createTestNamespace, testKubeConfig, uniqueSuffix } from '../harness/cluster.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);

describe('the control plane', () => {
  it('reports the pinned Kubernetes version, not the v0.0.0 of an unstamped build', async () => {
    const pinned = pinnedVersions().kube;
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(pinned);
    expect(version.gitVersion).not.toBe('v0.0.0');
    expect(`v${version.major}.${version.minor}`).toBe(pinned.split('.').slice(0, 2).join('.'));
  });

  it('has the simulated fleet Ready: four Apple-silicon arm64 machines and two amd64 cloud nodes', async () => {
    // The simulated machines are kwok's; other test files add plain Node objects of their own for a while.
    const nodes = (await core.listNode()).items.filter(
      (n) => n.metadata?.annotations?.[kwokNodeAnnotation.key] === kwokNodeAnnotation.value,
    );
    expect(nodes.map((n) => n.metadata?.name).sort()).toEqual(hospitalFleet.map((m) => m.name).sort());
    expect(nodes.every(isNodeReady)).toBe(true);
    const apple = nodes.filter((n) => n.metadata?.labels?.[nodeLabels.appleSilicon] === 'true');
    expect(apple).toHaveLength(4);
    for (const node of apple) expect(node.metadata?.labels?.['kubernetes.io/arch']).toBe('arm64');
    const pro = nodes.find((n) => n.metadata?.name === 'mac-mini-m4-pro-1');
    expect(pro?.metadata?.labels).toMatchObject({
      [nodeLabels.chip]: 'm4-pro',
      [nodeLabels.gpuCores]: '16',
      [nodeLabels.unifiedMemoryGiB]: '64',
    });
    expect(pro?.status?.allocatable).toMatchObject({ cpu: '12', memory: '64Gi' });
    const cloud = nodes.filter((n) => n.metadata?.labels?.['kubernetes.io/arch'] === 'amd64');
    expect(cloud).toHaveLength(2);
  });
});

describe('scheduling', () => {
  let namespace: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ name: namespace, cleanup } = await createTestNamespace('foundation')));
  afterAll(async () => cleanup());

  it('places a Deployment that requires arm64 only on the Apple machines, and its pods reach Running', async () => {
    const replicas = 6;
    await apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name: 'arm-only' },
        spec: {
          replicas,
          selector: { matchLabels: { app: 'arm-only' } },
          template: {
            metadata: { labels: { app: 'arm-only' } },
            spec: {
              affinity: {
                nodeAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: {
                    nodeSelectorTerms: [
                      {
                        matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values: ['arm64'] }],
                      },
                    ],
                  },
                },
              },
              containers: [
                { name: 'app', image: 'example.invalid/app:1', resources: { requests: { cpu: '100m' } } },
              ],
            },
          },
        },
      },
    });
    const pods = await waitFor(
      `${replicas} Running pods`,
      async () => {
        const list = await core.listNamespacedPod({ namespace, labelSelector: 'app=arm-only' });
        const running = list.items.filter((p: V1Pod) => p.status?.phase === 'Running');
        return running.length === replicas ? running : undefined;
      },
      { timeoutMs: 60_000 },
    );
    const appleNodes = new Set(hospitalFleet.filter((m) => m.apple).map((m) => m.name));
    for (const pod of pods) {
      expect(appleNodes.has(pod.spec?.nodeName ?? '')).toBe(true);
      expect(pod.status?.podIP).toMatch(/^10\./);
    }
    // The controller manager's deployment controller sees the pods kwok made Ready.
    const available = await waitFor('the Deployment to count its replicas available', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'arm-only', namespace });
      return d.status?.availableReplicas === replicas ? d.status.availableReplicas : undefined;
    });
    expect(available).toBe(replicas);
  });
});

describe('state services', () => {
  it('writes a row to PostgreSQL and reads it back, in a schema of its own', async () => {
    const schema = `t_${uniqueSuffix()}`;
    const client = new pg.Client({ connectionString: inject('postgresUrl') });
    await client.connect();
    try {
      await client.query(`create schema ${schema}`);
      await client.query(`create table ${schema}.audit (id bigserial primary key, action text not null)`);
      await client.query(`insert into ${schema}.audit (action) values ($1)`, ['restart-pod']);
      const { rows } = await client.query(`select action from ${schema}.audit`);
      expect(rows).toEqual([{ action: 'restart-pod' }]);
    } finally {
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
    }
  });

  it('adds an entry to a Redis stream and reads it back', async () => {
    const key = `aurora:test:${uniqueSuffix()}:red`;
    const redis = new Redis(inject('redisUrl'));
    try {
      const id = await redis.xadd(key, '*', 'ticket', 'T-1001', 'category', 'red');
      const entries = await redis.xrange(key, '-', '+');
      expect(entries).toEqual([[id, ['ticket', 'T-1001', 'category', 'red']]]);
    } finally {
      await redis.del(key);
      redis.disconnect();
    }
  });
});
