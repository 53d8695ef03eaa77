// Failure tests for the operator runtime. They kill and partition the API server, so they run on a
// control plane of their own, with the watch cache off so that history compacted in etcd is gone for
// watchers (410 Gone) as it would be after a long outage.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlane, repoRoot, startControlPlane } from '../../hack/local-cluster/control-plane.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import type { InformerEvent } from '../../operator/informer.ts';
import { createInformer } from '../../operator/informer.ts';
import { withServer } from '../../operator/kube/access.ts';
import { createKubeClient, type KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { LeaseRecord } from '../../operator/leader-state.ts';
import { silentLogger } from '../../operator/log.ts';
import { createManager } from '../../operator/manager.ts';
import { createMetrics } from '../../operator/metrics.ts';
import { operatorNodeFlags } from '../../operator/node-flags.ts';
import {
  type Echo,
  echoApiVersion,
  installEchoCrd,
  registerEchoController,
} from '../fixtures/echo-controller.ts';
import { uniqueSuffix } from '../harness/cluster.ts';
import { startPausableProxy } from '../harness/proxy.ts';

let controlPlane: ControlPlane;
let client: KubeClient;

beforeAll(async () => {
  controlPlane = await startControlPlane({ fleet: [], apiServerExtraArgs: ['--watch-cache=false'] });
  client = createKubeClient(controlPlane.access());
  await installEchoCrd(client);
}, 180_000);

afterAll(async () => {
  await controlPlane?.stop();
});

async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${uniqueSuffix()}`;
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  return name;
}

function waitForEchoReady(namespace: string, name: string, timeoutMs = 60_000): Promise<Echo> {
  return waitFor(
    `Echo ${namespace}/${name} Ready`,
    async () => {
      const echo = await client.get<Echo>({
        apiVersion: echoApiVersion,
        kind: 'Echo',
        metadata: { name, namespace },
      });
      return echo?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
        ? echo
        : undefined;
    },
    { timeoutMs },
  );
}

const echo = (namespace: string, name: string, message: string): Echo => ({
  apiVersion: echoApiVersion,
  kind: 'Echo',
  metadata: { name, namespace },
  spec: { message },
});

describe('the runtime under failure', () => {
  it('keeps reconciling after the API server process is killed and restarted', async () => {
    const namespace = await createNamespace('restart');
    const operatorClient = createKubeClient(controlPlane.access());
    const manager = createManager({
      client: operatorClient,
      log: silentLogger,
      namespace,
      metrics: createMetrics({ defaultMetrics: false }),
    });
    registerEchoController(manager);
    await manager.start();
    try {
      await client.create(echo(namespace, 'before', 'one'));
      await waitForEchoReady(namespace, 'before');

      await controlPlane.killApiServer();
      await sleep(2_000);
      await controlPlane.startApiServer();

      await client.create(echo(namespace, 'after', 'two'));
      await waitForEchoReady(namespace, 'after');
      await client.patch(
        { apiVersion: echoApiVersion, kind: 'Echo', metadata: { name: 'before', namespace } },
        { spec: { message: 'changed while recovering' } },
        { type: 'merge' },
      );
      const child = await waitFor('the first child to follow its changed spec', async () => {
        const cm = await client.get<KubeObject & { data?: Record<string, string> }>({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'before-echo', namespace },
        });
        return cm?.data?.message === 'changed while recovering' ? cm : undefined;
      });
      expect(child.metadata.ownerReferences?.[0]?.name).toBe('before');
    } finally {
      await manager.stop();
    }
  });

  it('recovers an informer from 410 Gone by listing again, reporting what changed while it was cut off', async () => {
    const namespace = await createNamespace('gone');
    const proxy = await startPausableProxy(Number(new URL(controlPlane.server).port));
    const viaProxy = withServer(controlPlane.access(), `https://127.0.0.1:${proxy.port}`);
    const informer = createInformer<KubeObject>({
      client: createKubeClient(viaProxy),
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace,
      backoff: { initialMs: 100, maxMs: 1_000 },
    });
    const events: InformerEvent<KubeObject>[] = [];
    informer.addHandler((e) => events.push(e));
    const cm = (name: string, value: string) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace },
      data: { value },
    });
    try {
      await client.create(cm('a', '1'));
      await client.create(cm('b', '1'));
      informer.start();
      await informer.synced();
      await waitFor('a and b in the cache', async () =>
        informer.get(`${namespace}/a`) && informer.get(`${namespace}/b`) ? true : undefined,
      );
      expect(informer.stats().lists).toBe(1);

      proxy.pause();
      await client.delete(cm('a', ''));
      await client.patch(cm('b', ''), { data: { value: '2' } }, { type: 'merge' });
      const last = await client.create<KubeObject>(cm('c', '1'));
      // Compact etcd up to the last write: the informer's resourceVersion is now history that is gone.
      const compaction = await fetch(`${controlPlane.etcdUrl}/v3/kv/compaction`, {
        method: 'POST',
        body: JSON.stringify({ revision: last.metadata.resourceVersion, physical: true }),
      });
      expect(compaction.ok).toBe(true);
      events.length = 0;
      proxy.resume();

      await waitFor('the cache to match the server again', async () =>
        !informer.get(`${namespace}/a`) &&
        (informer.get(`${namespace}/b`) as { data?: { value?: string } } | undefined)?.data?.value === '2' &&
        informer.get(`${namespace}/c`)
          ? true
          : undefined,
      );
      expect(informer.stats().lists).toBeGreaterThanOrEqual(2);
      const seen = events.map((e) => `${e.type}:${e.object.metadata.name}`);
      expect(seen).toEqual(expect.arrayContaining(['deleted:a', 'updated:b', 'added:c']));
    } finally {
      await informer.stop();
      await proxy.close();
    }
  });

  it('lets only one of two operator processes lead, and the other takes over within the lease duration', async () => {
    const namespace = await createNamespace('election');
    const kubeconfig = join(controlPlane.runDir, `election-${namespace}.kubeconfig`);
    writeFileSync(kubeconfig, controlPlane.kubeConfig().exportConfig());
    const leaseRef = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'echo-operator', namespace },
    };
    const readLease = async () => (await client.get<KubeObject & { spec?: LeaseRecord }>(leaseRef))?.spec;
    const processes = new Map<string, ChildProcess>();
    const startOperator = (identity: string) => {
      const child = spawn(
        process.execPath,
        [
          ...operatorNodeFlags,
          join(repoRoot, 'test/fixtures/echo-operator.ts'),
          `--kubeconfig=${kubeconfig}`,
          `--namespace=${namespace}`,
          `--leader-election-namespace=${namespace}`,
          '--leader-election-id=echo-operator',
          `--identity=${identity}`,
          '--http-port=0',
          '--log-level=warn',
        ],
        { stdio: 'ignore' },
      );
      processes.set(identity, child);
    };
    try {
      startOperator('op-a');
      startOperator('op-b');
      const first = await waitFor('a leader', async () => (await readLease())?.holderIdentity || undefined, {
        timeoutMs: 30_000,
      });
      expect(['op-a', 'op-b']).toContain(first);
      await client.create(echo(namespace, 'led', 'by one'));
      await waitForEchoReady(namespace, 'led');
      // Both keep running; the lease must not move while its holder renews it.
      await sleep(4_000);
      const steady = await readLease();
      expect(steady?.holderIdentity).toBe(first);
      expect(steady?.leaseTransitions).toBe(0);

      const lastRenew = Date.parse(steady?.renewTime ?? '');
      const leader = processes.get(first);
      leader?.kill('SIGKILL');
      const killedAt = Date.now();
      const second = await waitFor(
        'the standby to take over',
        async () => {
          const lease = await readLease();
          return lease?.holderIdentity && lease.holderIdentity !== first ? lease : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      const takeoverAt = Date.parse(second.acquireTime ?? '');
      const leaseDurationMs = (second.leaseDurationSeconds ?? 15) * 1000;
      console.log(
        `leader election: ${first} killed ${((killedAt - lastRenew) / 1000).toFixed(1)} s after its last renewal; ` +
          `${second.holderIdentity} took over ${((takeoverAt - killedAt) / 1000).toFixed(1)} s after the kill, ` +
          `${((takeoverAt - lastRenew) / 1000).toFixed(1)} s after the last renewal (lease ${leaseDurationMs / 1000} s)`,
      );
      // The lease runs out one lease duration after the dead leader's last renewal, no later than that after
      // the kill; the standby takes it then, give or take a request's latency.
      expect(takeoverAt - lastRenew).toBeGreaterThanOrEqual(leaseDurationMs - 3_000);
      expect(takeoverAt - lastRenew).toBeLessThanOrEqual(leaseDurationMs + 1_000);
      expect(second.leaseTransitions).toBe(1);

      await client.create(echo(namespace, 'after-failover', 'by the other'));
      await waitForEchoReady(namespace, 'after-failover');

      // A graceful stop (SIGTERM) drains and releases the lease, so a standby takes over at once.
      startOperator('op-c');
      // Time for op-c to start and become a standby that polls the lease.
      await sleep(4_000);
      const stopping = second.holderIdentity as string;
      processes.get(stopping)?.kill('SIGTERM');
      const stoppedAt = Date.now();
      const third = await waitFor(
        'op-c to take over after the release',
        async () => {
          const lease = await readLease();
          return lease?.holderIdentity === 'op-c' ? lease : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      const handoverMs = Date.parse(third.acquireTime ?? '') - stoppedAt;
      console.log(
        `leader election: after SIGTERM of ${stopping}, op-c took over in ${(handoverMs / 1000).toFixed(1)} s`,
      );
      expect(handoverMs).toBeLessThan(5_000);
    } finally {
      for (const child of processes.values()) child.kill('SIGKILL');
    }
  });
});
