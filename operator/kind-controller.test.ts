import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createChildApplier } from './apply.ts';
import { FakeClock } from './clock.ts';
import { type Condition, type ConditionInput, setConditions } from './conditions.ts';
import { createController, type ReconcileContext } from './controller.ts';
import { TerminalError } from './errors.ts';
import { createFakeClient, type FakeClient } from './fake-client.ts';
import { createInformer } from './informer.ts';
import { addKindController, type KindContext, type KindControllerOptions } from './kind-controller.ts';
import type { KubeObject } from './kube/types.ts';
import { silentLogger } from './log.ts';
import { createManager, type Manager } from './manager.ts';
import { createMetrics } from './metrics.ts';
import { channelSource } from './sources.ts';

const apiVersion = 'test.aurora.health/v1';
type Widget = KubeObject & {
  spec: { replicas: number };
  status?: { observedGeneration?: number; conditions?: Condition[] };
};
const widgetSpec = z.object({ replicas: z.number().int().min(0) });
const widget = (name: string, spec: Record<string, unknown>): Widget =>
  ({ apiVersion, kind: 'Widget', metadata: { name, namespace: 'er' }, spec }) as Widget;
const ref = (name: string) => ({ apiVersion, kind: 'Widget', metadata: { name, namespace: 'er' } });

/** Lets promises and the fake API server's synchronous watch deliveries run. */
async function settle(rounds = 30) {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

/** Polls between turns of the event loop; by wall-clock time, since retries wait on timers and a loaded machine is slow. */
async function until<T>(what: string, read: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const value = read();
    if (value !== undefined && value !== false) return value;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** until, for a check that must await (the metrics registry's text). */
async function untilAsync(what: string, check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`timed out waiting for ${what}`);
}

let running: Manager[] = [];
afterEach(async () => {
  await Promise.all(running.map((m) => m.stop()));
  running = [];
});

function harness(options: { clock?: FakeClock } = {}) {
  const client = createFakeClient();
  const metrics = createMetrics({ defaultMetrics: false });
  const manager = createManager({
    client,
    log: silentLogger,
    metrics,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  running.push(manager);
  const reconcileTotal = async () => {
    const text = await metrics.registry.metrics();
    return [
      ...text.matchAll(/controller_runtime_reconcile_total\{controller="widget",result="[a-z_]+"\} (\d+)/g),
    ]
      .map((m) => Number(m[1]))
      .reduce((a, b) => a + b, 0);
  };
  return { client, manager, metrics, reconcileTotal };
}

/** The Widget controller on the kit, with what a test adds. */
function addWidgetController<Spec>(
  manager: Manager,
  options: Omit<KindControllerOptions<Widget, Spec, NonNullable<Widget['status']>>, 'name' | 'informer'>,
) {
  addKindController(manager, {
    name: 'widget',
    informer: manager.informer<Widget>(apiVersion, 'Widget'),
    ...options,
  });
}

const ready = (client: FakeClient, name: string) =>
  (
    client.objects(apiVersion, 'Widget').find((w) => w.metadata.name === name) as Widget | undefined
  )?.status?.conditions?.find((c) => c.type === 'Ready');

describe('the kind reconciler', () => {
  it('reports a spec its schema refuses as a terminal InvalidSpec, and looks again only at a new generation', async () => {
    const clock = new FakeClock();
    const { client, manager, metrics, reconcileTotal } = harness({ clock });
    const seen: number[] = [];
    let parses = 0;
    addWidgetController(manager, {
      spec: z.preprocess((spec) => {
        parses++;
        return spec;
      }, widgetSpec),
      async reconcile(ctx, w) {
        seen.push(w.spec.replicas);
        return {
          status: {
            observedGeneration: w.metadata.generation,
            conditions: [
              {
                type: 'Ready',
                status: 'True',
                reason: 'Fine',
                message: 'ok',
                lastTransitionTime: ctx.now().toISOString(),
                observedGeneration: w.metadata.generation,
              },
            ],
          },
        };
      },
    });
    await client.create(widget('w1', { replicas: 'many' }));
    await manager.start();
    const refused = await until('the InvalidSpec condition', () => ready(client, 'w1'));
    expect(refused).toMatchObject({ status: 'False', reason: 'InvalidSpec', observedGeneration: 1 });
    expect(refused.message).toContain('spec.replicas');
    expect(seen).toEqual([]);
    await until('the Warning Event', () =>
      client
        .objects('events.k8s.io/v1', 'Event')
        .find((e) => e.reason === 'InvalidSpec' && e.type === 'Warning'),
    );
    expect(await metrics.registry.metrics()).toMatch(
      /controller_runtime_terminal_reconcile_errors_total\{controller="widget"\} 1/,
    );

    // No retry: an hour of backoff timers firing runs nothing, and a label change is no new generation.
    const writes = client.requests.length;
    const reconciles = await reconcileTotal();
    // (An hour without events also has the informer reopen its quiet watch, as it should.)
    for (let i = 0; i < 60; i++) {
      clock.advance(60_000);
      await settle();
    }
    expect(await reconcileTotal()).toBe(reconciles);
    expect(parses).toBe(1);
    await client.patch(ref('w1'), { metadata: { labels: { team: 'er' } } }, { type: 'merge' });
    // The informer may be between watches (its quiet watch was reopened): let it come back.
    for (let i = 0; i < 3; i++) {
      clock.advance(30_000);
      await settle();
    }
    expect(await reconcileTotal()).toBe(reconciles + 1);
    expect(parses).toBe(1);
    expect(client.requests.slice(writes).filter((r) => r.startsWith('APPLY'))).toEqual([]);
    expect(seen).toEqual([]);

    // A new generation is looked at again.
    await client.patch(ref('w1'), { spec: { replicas: 3 } }, { type: 'merge' });
    await until('Ready after the fix', () => ready(client, 'w1')?.status === 'True');
    expect(seen).toEqual([3]);
    expect(ready(client, 'w1')).toMatchObject({ reason: 'Fine', observedGeneration: 2 });
  });

  it('does not retry a TerminalError from the reconcile, but a new event looks again; a transient error is retried', async () => {
    const clock = new FakeClock();
    const { client, manager } = harness({ clock });
    const calls = new Map<string, number>();
    const wake = channelSource();
    addWidgetController(manager, {
      spec: widgetSpec,
      sources: [wake],
      async reconcile(ctx) {
        calls.set(ctx.name, (calls.get(ctx.name) ?? 0) + 1);
        if (ctx.name === 'never') throw new TerminalError('ImpossibleRequest', 'no machine has 2 TiB');
        throw new Error('the API server answered 503');
      },
    });
    await client.create(widget('never', { replicas: 1 }));
    await client.create(widget('flaky', { replicas: 1 }));
    await manager.start();
    await until('the terminal condition', () => ready(client, 'never'));
    expect(ready(client, 'never')).toMatchObject({ status: 'False', reason: 'ImpossibleRequest' });
    for (let i = 0; i < 10; i++) {
      clock.advance(60_000);
      await settle();
    }
    expect(calls.get('never')).toBe(1);
    expect(calls.get('flaky')).toBeGreaterThan(5);
    const warning = client
      .objects('events.k8s.io/v1', 'Event')
      .filter((e) => e.reason === 'ImpossibleRequest');
    expect(warning).toMatchObject([{ type: 'Warning', note: 'no machine has 2 TiB' }]);
    // What the world tells about the object may mend it: a wake-up looks again.
    wake.send('er/never');
    await until('a second look', () => calls.get('never') === 2);
  });

  it('tells a refused spec with one Warning naming the field, not one per condition it leaves Unknown', async () => {
    const { client, manager } = harness();
    addWidgetController(manager, {
      spec: widgetSpec,
      events: [
        { type: 'Ready', healthyStatus: 'True', announce: 'changes' },
        { type: 'Placed', healthyStatus: 'True', announce: 'faultsAndRecoveries' },
        { type: 'ModelCurrent', announce: 'changes' },
      ],
      async reconcile() {
        return undefined;
      },
    });
    const created = await client.create(widget('w1', { replicas: 'many' }));
    const condition = (type: string, status: 'True' | 'False') => ({
      type,
      status,
      reason: 'AsBefore',
      message: 'before the spec broke',
      lastTransitionTime: '2026-11-28T10:00:00Z',
    });
    await client.patch(
      created,
      { status: { conditions: [condition('Placed', 'True'), condition('ModelCurrent', 'True')] } },
      { type: 'merge', subresource: 'status' },
    );
    await manager.start();
    await until('InvalidSpec', () => ready(client, 'w1')?.reason === 'InvalidSpec');
    const status = (client.objects(apiVersion, 'Widget')[0] as Widget).status;
    expect(status?.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Placed', 'Unknown', 'InvalidSpec'],
      ['ModelCurrent', 'Unknown', 'InvalidSpec'],
      ['Ready', 'False', 'InvalidSpec'],
    ]);
    await settle();
    await manager.stop();
    const events = client.objects('events.k8s.io/v1', 'Event');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'Warning', reason: 'InvalidSpec', action: 'Reconcile' });
    expect(events[0]?.note).toMatch(/^spec\.replicas: /);
  });

  it('aborts a running reconcile at shutdown: a reconcile that waits is released within a second, and nothing is written after', async () => {
    const { client, manager } = harness();
    let entered: KindContext | undefined;
    let returned = false;
    addWidgetController(manager, {
      workers: 2,
      async reconcile(ctx, w) {
        if (w.metadata.name === 'late') {
          // Ignores its signal and comes back with a status after the stop began.
          await new Promise((r) => setTimeout(r, 100));
          return { status: { observedGeneration: 1 } };
        }
        entered = ctx;
        try {
          // A long validation that waits on the signal, as downloads and model runners do.
          await new Promise((_, reject) =>
            ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)),
          );
        } finally {
          returned = true;
        }
        return undefined;
      },
    });
    await client.create(widget('slow', { replicas: 1 }));
    await client.create(widget('late', { replicas: 1 }));
    await manager.start();
    const ctx = await until('the reconcile to start', () => entered);
    const t0 = performance.now();
    await manager.stop();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(ctx.signal.aborted).toBe(true);
    expect(returned).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(client.requests.filter((r) => r.startsWith('APPLY'))).toEqual([]);
  });

  it('gives up waiting for a reconcile that ignores its signal after the stop timeout', async () => {
    const client = createFakeClient();
    const manager = createManager({
      client,
      log: silentLogger,
      metrics: createMetrics({ defaultMetrics: false }),
      stopTimeoutMs: 200,
    });
    let started = false;
    addWidgetController(manager, {
      async reconcile() {
        started = true;
        await new Promise(() => {});
        return undefined;
      },
    });
    await client.create(widget('stuck', { replicas: 1 }));
    await manager.start();
    await until('the reconcile to start', () => started);
    const t0 = performance.now();
    await manager.stop();
    const waitedMs = performance.now() - t0;
    expect(waitedMs).toBeGreaterThanOrEqual(190);
    expect(waitedMs).toBeLessThan(1000);
  });

  it('stops handing out keys at once when aborted (leadership lost), with the signal aborted', async () => {
    const client = createFakeClient();
    const informer = createInformer<Widget>({ client, apiVersion, kind: 'Widget' });
    const seen: string[] = [];
    let inFlight: ReconcileContext | undefined;
    const controller = createController({
      name: 'widget',
      primary: informer,
      log: silentLogger,
      async reconcile(ctx) {
        seen.push(ctx.name);
        inFlight = ctx;
        await new Promise((r) => setTimeout(r, 50));
        return undefined;
      },
    });
    informer.start();
    await client.create(widget('first', { replicas: 1 }));
    await informer.synced();
    controller.start();
    const ctx = await until('the first reconcile', () => inFlight);
    controller.abort('leader election lost');
    expect(ctx.signal.aborted).toBe(true);
    await client.create(widget('second', { replicas: 1 }));
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual(['first']);
    await controller.stop();
    await informer.stop();
  });

  it('is woken by a source outside Kubernetes', async () => {
    const { client, manager } = harness();
    const woken: string[] = [];
    const redisWatcher = channelSource();
    addWidgetController(manager, {
      sources: [redisWatcher],
      async reconcile(ctx) {
        woken.push(ctx.key);
        return undefined;
      },
    });
    await client.create(widget('queue-a', { replicas: 1 }));
    await client.create(widget('queue-b', { replicas: 1 }));
    await manager.start();
    await until('the first look at both', () => woken.length === 2);
    // Nothing changed in Kubernetes: only the source can wake queue-b now.
    redisWatcher.send('er/queue-b');
    await until('the wake-up', () => woken.length === 3);
    expect(woken[2]).toBe('er/queue-b');
    redisWatcher.send('er/queue-b');
    await until('the second wake-up', () => woken.length === 4);
    expect(woken.slice(2)).toEqual(['er/queue-b', 'er/queue-b']);
  });

  it('adds its finalizer, runs the finalize step on deletion, then lets the object go; forgets it when gone', async () => {
    const { client, manager } = harness();
    const finalized: string[] = [];
    const forgotten: string[] = [];
    let attempts = 0;
    addWidgetController(manager, {
      finalizer: {
        name: 'test.aurora.health/cleanup',
        finalize: async (_ctx, w) => {
          // The first attempt fails for good, as far as it can tell: deletion still tries again.
          if (attempts++ === 0) throw new TerminalError('CleanupFailed', 'the audit trail is unreachable');
          finalized.push(w.metadata.name);
        },
      },
      forget: (key) => void forgotten.push(key),
      async reconcile() {
        return undefined;
      },
    });
    await client.create(widget('w1', { replicas: 1 }));
    await manager.start();
    await until('the finalizer', () => client.objects(apiVersion, 'Widget')[0]?.metadata.finalizers?.length);
    await client.delete(ref('w1'));
    expect(client.objects(apiVersion, 'Widget')).toHaveLength(1);
    await until('the object to go', () => client.objects(apiVersion, 'Widget').length === 0);
    expect(attempts).toBe(2);
    expect(finalized).toEqual(['w1']);
    await until('the object to be forgotten', () => forgotten.length >= 2);
    expect(new Set(forgotten)).toEqual(new Set(['er/w1']));
  });

  it('writes status only when it changed and tells condition changes through the kind event policy', async () => {
    const { client, manager } = harness();
    let healthy = false;
    const wake = channelSource();
    addWidgetController(manager, {
      spec: widgetSpec,
      sources: [wake],
      events: [{ type: 'Ready', healthyStatus: 'True', announce: 'changes', action: 'Serve' }],
      async reconcile(ctx, w) {
        const ready: ConditionInput = healthy
          ? { type: 'Ready', status: 'True', reason: 'Serving', message: 'all pods ready' }
          : { type: 'Ready', status: 'False', reason: 'NoPods', message: 'no pod is ready' };
        const generation = w.metadata.generation;
        return {
          status: {
            observedGeneration: generation,
            conditions: setConditions(w.status?.conditions, [ready], generation, ctx.now()),
          },
        };
      },
    });
    await client.create(widget('w1', { replicas: 1 }));
    await manager.start();
    await until('the first status', () => ready(client, 'w1'));
    const statusWrites = () => client.requests.filter((r) => r === 'APPLY Widget/status').length;
    wake.send('er/w1');
    await settle();
    expect(statusWrites()).toBe(1);
    healthy = true;
    wake.send('er/w1');
    await until('Ready True', () => ready(client, 'w1')?.status === 'True');
    await settle();
    await manager.stop();
    const events = client
      .objects('events.k8s.io/v1', 'Event')
      .map((e) => [e.type, e.reason, e.action])
      .sort();
    expect(events).toEqual([
      ['Normal', 'Serving', 'Serve'],
      ['Warning', 'NoPods', 'Serve'],
    ]);
  });

  it("reports each object's conditions as aurora_status_condition series, one set at a time, none once it is gone", async () => {
    const { client, manager, metrics } = harness();
    let degraded = false;
    const wake = channelSource();
    addWidgetController(manager, {
      spec: widgetSpec,
      sources: [wake],
      async reconcile(ctx, w) {
        if (w.metadata.name === 'never') throw new TerminalError('ImpossibleRequest', 'no machine has 2 TiB');
        const conditions: ConditionInput[] = [
          { type: 'Ready', status: 'True', reason: 'Serving', message: 'all pods ready' },
          degraded
            ? { type: 'Degraded', status: 'True', reason: 'RolloutStalled', message: 'stuck' }
            : { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'fine' },
        ];
        const generation = w.metadata.generation;
        return {
          status: {
            observedGeneration: generation,
            conditions: setConditions(w.status?.conditions, conditions, generation, ctx.now()),
          },
        };
      },
    });
    const series = async () =>
      [...(await metrics.registry.metrics()).matchAll(/^aurora_status_condition\{(.*)\} (\d+)$/gm)]
        .map((m) => `${m[1]} ${m[2]}`)
        .sort();
    await client.create(widget('w1', { replicas: 1 }));
    await client.create(widget('never', { replicas: 1 }));
    await manager.start();
    await until('both reported', () => ready(client, 'w1') && ready(client, 'never'));
    await untilAsync('the series', async () => (await series()).length === 3);
    expect(await series()).toEqual([
      'kind="Widget",namespace="er",name="never",type="Ready",status="False",reason="ImpossibleRequest" 1',
      'kind="Widget",namespace="er",name="w1",type="Degraded",status="False",reason="AsExpected" 1',
      'kind="Widget",namespace="er",name="w1",type="Ready",status="True",reason="Serving" 1',
    ]);
    // A condition that changes leaves no series of its old status behind.
    degraded = true;
    wake.send('er/w1');
    await until('Degraded True', () =>
      client
        .objects(apiVersion, 'Widget')
        .some((w) => (w as Widget).status?.conditions?.some((c) => c.reason === 'RolloutStalled')),
    );
    await settle();
    expect((await series()).filter((s) => s.includes('name="w1"'))).toEqual([
      'kind="Widget",namespace="er",name="w1",type="Degraded",status="True",reason="RolloutStalled" 1',
      'kind="Widget",namespace="er",name="w1",type="Ready",status="True",reason="Serving" 1',
    ]);
    await client.delete(ref('w1'));
    await untilAsync('w1 forgotten', async () => !(await series()).some((s) => s.includes('name="w1"')));
    expect(await series()).toHaveLength(1);
  });

  it('refuses a status computed from an older object, and decides again on the newer one', async () => {
    const { client, manager } = harness();
    let first = true;
    addWidgetController(manager, {
      spec: widgetSpec,
      async reconcile(ctx, w) {
        if (first) {
          first = false;
          // Someone changes the spec while this reconcile works from the object it read.
          await client.patch(ref('w1'), { spec: { replicas: 5 } }, { type: 'merge' });
        }
        return {
          status: {
            observedGeneration: w.metadata.generation,
            conditions: setConditions(
              w.status?.conditions,
              [{ type: 'Ready', status: 'True', reason: 'Replicas', message: `${w.spec.replicas} replicas` }],
              w.metadata.generation,
              ctx.now(),
            ),
          },
        };
      },
    });
    await client.create(widget('w1', { replicas: 1 }));
    await manager.start();
    await until('the status of the newer spec', () => ready(client, 'w1')?.message === '5 replicas');
    const status = (client.objects(apiVersion, 'Widget')[0] as Widget).status;
    expect(status?.observedGeneration).toBe(2);
    // The stale write was sent and refused: the status never said 1 replica.
    expect(client.requests.filter((r) => r === 'APPLY Widget/status')).toHaveLength(2);
  });

  it('tells a child the API server refuses as Ready=False ApplyFailed, and tries again until it is admitted', async () => {
    let policy: string | undefined = 'deployments of w1 are not allowed here';
    const client = createFakeClient({ admit: (obj) => (obj.kind === 'Deployment' ? policy : undefined) });
    const manager = createManager({
      client,
      log: silentLogger,
      metrics: createMetrics({ defaultMetrics: false }),
    });
    running.push(manager);
    const children = createChildApplier(client);
    addWidgetController(manager, {
      async reconcile(ctx, w) {
        await children.apply(
          { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: w.metadata.name, namespace: 'er' } },
          undefined,
        );
        return {
          status: {
            observedGeneration: w.metadata.generation,
            conditions: setConditions(
              w.status?.conditions,
              [{ type: 'Ready', status: 'True', reason: 'Applied', message: 'children applied' }],
              w.metadata.generation,
              ctx.now(),
            ),
          },
        };
      },
    });
    await client.create(widget('w1', { replicas: 1 }));
    await manager.start();
    const refused = await until('ApplyFailed', () => {
      const c = ready(client, 'w1');
      return c?.reason === 'ApplyFailed' ? c : undefined;
    });
    expect(refused).toMatchObject({ status: 'False' });
    expect(refused.message).toBe(
      'the API server refused Deployment w1: Deployment w1 is forbidden: deployments of w1 are not allowed here',
    );
    policy = undefined;
    await until('Ready once admitted', () => ready(client, 'w1')?.reason === 'Applied', 5000);
    await settle();
    await manager.stop();
    const warnings = client.objects('events.k8s.io/v1', 'Event').filter((e) => e.reason === 'ApplyFailed');
    expect(warnings).toMatchObject([{ type: 'Warning' }]);
  });
});
