import { rootCertificates } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { applyChild, writeStatus } from '../../operator/apply.ts';
import { clusterAccess } from '../../operator/kube/access.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { silentLogger } from '../../operator/log.ts';
import { createManager, type Manager } from '../../operator/manager.ts';
import { createMetrics } from '../../operator/metrics.ts';
import {
  desiredEchoChild,
  type Echo,
  echoApiVersion,
  echoFinalizer,
  installEchoCrd,
  registerEchoController,
} from '../fixtures/echo-controller.ts';
import { createTestManager, createTestNamespace, testAccess } from '../harness/cluster.ts';

const client = createKubeClient(testAccess());
let namespace: string;
let cleanup: () => Promise<void>;
let manager: Manager;

const echoRef = (name: string) => ({
  apiVersion: echoApiVersion,
  kind: 'Echo',
  metadata: { name, namespace },
});
const childRef = (name: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: `${name}-echo`, namespace },
});

async function createEcho(name: string, message: string): Promise<Echo> {
  return client.create<Echo>({ ...echoRef(name), spec: { message } });
}

async function waitForReadyGeneration(name: string, generation: number): Promise<Echo> {
  return waitFor(`Echo ${name} Ready at generation ${generation}`, async () => {
    const echo = await client.get<Echo>(echoRef(name));
    const ready = echo?.status?.conditions?.find((c) => c.type === 'Ready');
    return ready?.status === 'True' && echo?.status?.observedGeneration === generation ? echo : undefined;
  });
}

beforeAll(async () => {
  ({ name: namespace, cleanup } = await createTestNamespace('runtime'));
  await installEchoCrd(client);
  manager = createTestManager(client, namespace, { health: { port: 0, host: '127.0.0.1' } });
  registerEchoController(manager, { useFinalizer: true, workers: 2 });
  await manager.start();
});

afterAll(async () => {
  await manager.stop();
  await cleanup();
});

describe('a controller on the real API server', () => {
  it('applies the child with a controller ownerReference and reports Ready with observedGeneration', async () => {
    const echo = await createEcho('alpha', 'hello');
    const ready = await waitForReadyGeneration('alpha', 1);
    const child = (await client.get<KubeObject & { data: Record<string, string> }>(
      childRef('alpha'),
    )) as KubeObject & {
      data: Record<string, string>;
    };
    expect(child.data).toEqual({ message: 'hello' });
    expect(child.metadata.ownerReferences).toEqual([
      {
        apiVersion: echoApiVersion,
        kind: 'Echo',
        name: 'alpha',
        uid: echo.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(ready.status?.conditions?.[0]).toMatchObject({ reason: 'ChildApplied', observedGeneration: 1 });
    expect(ready.metadata.finalizers).toContain(echoFinalizer);
  });

  it('follows a spec change, keeping lastTransitionTime because Ready did not flip', async () => {
    await createEcho('beta', 'one');
    const first = await waitForReadyGeneration('beta', 1);
    await client.patch(echoRef('beta'), { spec: { message: 'two' } }, { type: 'merge' });
    const second = await waitForReadyGeneration('beta', 2);
    const child = await client.get<KubeObject & { data: Record<string, string> }>(childRef('beta'));
    expect(child?.data.message).toBe('two');
    expect(second.status?.conditions?.[0]?.lastTransitionTime).toBe(
      first.status?.conditions?.[0]?.lastTransitionTime,
    );
  });

  it('re-creates a child someone deleted: owned objects wake their owner', async () => {
    await createEcho('gamma', 'keep me');
    await waitForReadyGeneration('gamma', 1);
    const before = await client.get(childRef('gamma'));
    await client.delete(childRef('gamma'));
    const after = await waitFor('the child to come back', async () => {
      const child = await client.get(childRef('gamma'));
      return child && child.metadata.uid !== before?.metadata.uid ? child : undefined;
    });
    expect(after.metadata.ownerReferences?.[0]?.name).toBe('gamma');
  });

  it('removes its finalizer when the object is deleted, so deletion completes', async () => {
    await createEcho('delta', 'bye');
    await waitForReadyGeneration('delta', 1);
    await client.delete(echoRef('delta'));
    await waitFor('the Echo to be gone', async () =>
      (await client.get(echoRef('delta'))) ? undefined : true,
    );
  });

  it('records an Event about the object through events.k8s.io', async () => {
    await createEcho('epsilon', 'event');
    const echo = await waitForReadyGeneration('epsilon', 1);
    const event = await waitFor('an Applied Event', async () => {
      const list = await client.list<KubeObject & Record<string, unknown>>('events.k8s.io/v1', 'Event', {
        namespace,
      });
      return list.items.find(
        (e) => (e.regarding as { uid?: string })?.uid === echo.metadata.uid && e.reason === 'Applied',
      );
    });
    expect(event).toMatchObject({ type: 'Normal', action: 'Reconcile', reportingController: 'echo' });
  });

  it('writes nothing when the desired state is unchanged: the resourceVersion stays the same', async () => {
    const echo = await waitForReadyGeneration('alpha', 1);
    const childBefore = await client.get(childRef('alpha'));
    const applied = await applyChild(client, desiredEchoChild(echo));
    expect(applied.metadata.resourceVersion).toBe(childBefore?.metadata.resourceVersion);
    const wrote = await writeStatus(client, echo, echo.status as Record<string, unknown>);
    expect(wrote).toBe(false);
    const echoAfter = await client.get(echoRef('alpha'));
    expect(echoAfter?.metadata.resourceVersion).toBe(echo.metadata.resourceVersion);
  });

  it('refuses a status computed from an older version of the object', async () => {
    const echo = await waitForReadyGeneration('alpha', 1);
    await client.patch(echoRef('alpha'), { metadata: { annotations: { moved: 'on' } } }, { type: 'merge' });
    const stale = await writeStatus(client, echo, { observedGeneration: 1, conditions: [] }).catch(
      (e: unknown) => e,
    );
    expect(stale).toMatchObject({ status: 409 });
    const now = await client.get<Echo>(echoRef('alpha'));
    expect(now?.status?.conditions?.[0]?.reason).toBe('ChildApplied');
  });

  it('trusts the API server only through its CA: a wrong CA fails, an explicit skip does not check', async () => {
    const access = testAccess();
    // A real root certificate that did not sign this API server's.
    const wrongCa = clusterAccess({ server: access.server, ca: rootCertificates[0] as string, token: 'x' });
    await expect(createKubeClient(wrongCa).list('v1', 'Namespace', { limit: 1 })).rejects.toThrow();
    const headers = await access.authHeaders();
    const token = headers.authorization?.replace(/^Bearer /, '') ?? '';
    const unchecked = clusterAccess({ server: access.server, token, insecureSkipTlsVerify: true });
    const list = await createKubeClient(unchecked).list('v1', 'Namespace', { limit: 1 });
    expect(list.items.length).toBe(1);
  });

  it('reports controller-runtime metrics', async () => {
    const text = await manager.metrics.registry.metrics();
    const total = text.match(
      /controller_runtime_reconcile_total\{controller="echo",result="success"\} (\d+)/,
    );
    expect(Number(total?.[1])).toBeGreaterThan(0);
    expect(text).toContain('workqueue_depth{name="echo",controller="echo"}');
    expect(text).toContain('controller_runtime_reconcile_time_seconds_bucket');
  });
});

describe('probes', () => {
  it('serves /healthz, /readyz once caches synced and controllers run, and /metrics', async () => {
    const base = `http://127.0.0.1:${manager.healthPort()}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect([ready.status, await ready.text()]).toEqual([200, 'ok']);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/aurora_cache_objects\{kind="Echo"\} \d+/);
    expect((await fetch(`${base}/nothing`)).status).toBe(404);
  });

  it('is not ready before its caches have synced', async () => {
    const unreachable = createKubeClient(testAccess());
    // A manager whose informer cannot list (the kind does not exist) never syncs.
    const stuck = createManager({
      client: unreachable,
      log: silentLogger,
      namespace,
      metrics: createMetrics({ defaultMetrics: false }),
      health: { port: 0, host: '127.0.0.1' },
    });
    stuck.informer('test.aurora.health/v1', 'Missing');
    const starting = stuck.start();
    await waitFor('the probe server', async () => stuck.healthPort());
    const res = await fetch(`http://127.0.0.1:${stuck.healthPort()}/readyz`);
    expect([res.status, await res.text()]).toEqual([503, 'caches not synced']);
    expect((await fetch(`http://127.0.0.1:${stuck.healthPort()}/healthz`)).status).toBe(200);
    await stuck.stop();
    void starting.catch(() => {});
  });
});
