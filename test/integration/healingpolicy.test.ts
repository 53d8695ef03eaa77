// The HealingPolicy controller on the real control plane and the real PostgreSQL. Simulated nodes run no
// containers, so failures are written into the pods' status as a kubelet would report them
// (hack/local-cluster/pod-failures.ts); each scenario has its own Deployments and policy, selected by a
// label, and they run side by side.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { failPod, livePods } from '../../hack/local-cluster/pod-failures.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { verifyAuditTrail } from '../../state/audit.ts';
import {
  guardrails,
  type HealingTestbed,
  ladder,
  reasonOf,
  selectorFor,
  startHealingTestbed,
  types,
} from '../harness/healing.ts';

let bed: HealingTestbed;

beforeAll(async () => {
  bed = await startHealingTestbed('healing');
});

afterAll(async () => {
  await bed?.cleanup();
});

/**
 * A workload rolled back by the ladder's first step that applies (a new revision rules out restarting
 * pods), with the trail saying so, and running its first revision's template (VERSION=1) again.
 */
async function expectRolledBack(name: string, ref: KubeObject): Promise<void> {
  await bed.until('rolled back', name, (s) =>
    s.recentActions?.some((a) => a.action === 'Rollback' && a.outcome === 'Done') ? true : undefined,
  );
  const rows = await bed.rows(name);
  expect(types(rows).slice(0, 4)).toEqual([
    'Detected',
    'Skipped:RestartPod',
    'Intent:Rollback',
    'Outcome:Rollback:Done',
  ]);
  expect(rows[0]).toMatchObject({ cause: 'NewRevision' });
  const workload = await bed.client.get<
    KubeObject & { spec: { template: { spec: { containers: Array<{ env: Array<{ value: string }> }> } } } }
  >(ref);
  expect(workload?.spec.template.spec.containers[0]?.env[0]?.value).toBe('1');
}

describe('HealingPolicy', () => {
  it.concurrent('climbs the ladder on a crash loop that outlives every step, and ends Escalated', async () => {
    await bed.deployment('loop', { labels: { scenario: 'loop' } });
    await bed.policy('loop', {
      selector: selectorFor('loop'),
      detectors: { crashLoop: { restarts: 3, windowSeconds: 600 } },
      escalation: ladder(['RestartPod', 10], ['RestartRollout', 10]),
      guardrails: guardrails(),
    });
    bed.fail('app=loop', { kind: 'CrashLoop', restarts: 5 });
    const s = await bed.until(
      'loop escalated',
      'loop',
      (s) => (reasonOf(s, 'Escalated') === 'LadderExhausted' ? s : undefined),
      90_000,
    );
    expect(s.unhealthyTargets?.[0]).toMatchObject({
      name: 'loop',
      detector: 'crashLoop',
      cause: 'CrashLoop',
      escalated: true,
    });
    expect(types(await bed.rows('loop'))).toEqual([
      'Detected',
      'Intent:RestartPod',
      'Outcome:RestartPod:Done',
      'Intent:RestartRollout',
      'Outcome:RestartRollout:Done',
      'Escalated',
    ]);
    // The restart evicted the pods its intent named; the rollout restart stamped the template.
    const evicted = (await bed.rows('loop')).find((r) => r.type === 'Intent')?.details?.pods as string[];
    expect(evicted.length).toBeGreaterThan(0);
    const names = (await livePods(bed.client, bed.namespace, 'app=loop')).map((p) => p.metadata.name);
    expect(names.filter((n) => evicted.includes(n))).toEqual([]);
    expect((await bed.uids('loop')).length).toBeGreaterThan(0);
    const d = await bed.client.get<
      KubeObject & { spec: { template: { metadata: { annotations?: Record<string, string> } } } }
    >({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'loop', namespace: bed.namespace },
    });
    expect(d?.spec.template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt']).toBeTruthy();
    expect(s.recentActions?.map((a) => [a.action, a.outcome])).toEqual([
      ['RestartRollout', 'Done'],
      ['RestartPod', 'Done'],
    ]);
    const events = await bed.client.list<
      KubeObject & { reason?: string; type?: string; note?: string; message?: string }
    >('v1', 'Event', {
      namespace: bed.namespace,
      fieldSelector: 'involvedObject.name=loop,involvedObject.kind=HealingPolicy',
    });
    expect(events.items.map((e) => `${e.type}/${e.reason}`)).toEqual(
      expect.arrayContaining([
        'Warning/TargetFailing',
        'Normal/PodsEvicted',
        'Normal/RolloutRestarted',
        'Warning/Escalated',
      ]),
    );
  });

  it.concurrent('finds readiness failing only once its duration has passed, restarts the pod, and sees it recover', async () => {
    await bed.deployment('ready', { replicas: 3, labels: { scenario: 'ready' } });
    await bed.policy('ready', {
      selector: selectorFor('ready'),
      detectors: { readinessFailing: { forSeconds: 10 } },
      escalation: ladder(['RestartPod', 10]),
      guardrails: guardrails(),
    });
    await bed.until('watching', 'ready', (s) => (s.watchedTargets === 1 ? true : undefined));
    const [victim] = await livePods(bed.client, bed.namespace, 'app=ready');
    if (!victim) throw new Error('no pod');
    await failPod(bed.client, victim, { kind: 'Unready' });
    // From the time the pod's status gives (whole seconds), as the detector sees it.
    const failedAt = await waitFor('unready', async () => {
      const [p] = (await livePods(bed.client, bed.namespace, 'app=ready')).filter(
        (p) => p.metadata.uid === victim.metadata.uid,
      );
      const c = p?.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'False');
      return c?.lastTransitionTime ? Date.parse(c.lastTransitionTime) : undefined;
    });
    // 8 s into the 10 s window (by the pod's own clock): nothing yet.
    await new Promise((r) => setTimeout(r, Math.max(0, failedAt + 8_000 - Date.now())));
    expect((await bed.status('ready')).unhealthyCount ?? 0).toBe(0);
    expect(await bed.rows('ready')).toEqual([]);
    const detected = await waitFor(
      'detected',
      async () => (await bed.rows('ready')).find((r) => r.type === 'Detected'),
      { timeoutMs: 20_000 },
    );
    expect((detected?.atMs ?? 0) - failedAt).toBeGreaterThanOrEqual(10_000);
    expect((detected?.atMs ?? 0) - failedAt).toBeLessThan(14_000);
    // The pod is evicted; its replacement is ready, so the episode ends.
    await waitFor(
      'recovered',
      async () => ((await bed.rows('ready')).some((r) => r.type === 'Recovered') ? true : undefined),
      {
        timeoutMs: 30_000,
      },
    );
    expect(types(await bed.rows('ready'))).toEqual([
      'Detected',
      'Intent:RestartPod',
      'Outcome:RestartPod:Done',
      'Recovered',
    ]);
    expect(await bed.uids('ready')).not.toContain(victim.metadata.uid);
  });

  it.concurrent('never restarts an image that cannot be pulled: every step is skipped with the reason', async () => {
    await bed.deployment('pull', { labels: { scenario: 'pull' } });
    await bed.policy('pull', {
      selector: selectorFor('pull'),
      detectors: { readinessFailing: { forSeconds: 10 } },
      escalation: ladder(['RestartPod', 10], ['RestartRollout', 10]),
      guardrails: guardrails(),
    });
    const before = await bed.uids('pull');
    bed.fail('app=pull', { kind: 'ImagePull' });
    const s = await bed.until(
      'escalated',
      'pull',
      (s) => (s.unhealthyTargets?.[0]?.escalated ? s : undefined),
      40_000,
    );
    expect(s.unhealthyTargets?.[0]).toMatchObject({ cause: 'ImagePullError' });
    const rows = await bed.rows('pull');
    expect(types(rows)).toEqual(['Detected', 'Skipped:RestartPod', 'Skipped:RestartRollout', 'Escalated']);
    expect(rows[1]?.message).toMatch(/cannot be pulled/);
    expect(await bed.uids('pull')).toEqual(before);
  });

  it.concurrent('rolls a crash loop that began with a new revision back to the last healthy one', async () => {
    await bed.deployment('rev', { labels: { scenario: 'rev' }, env: { VERSION: '1' } });
    await bed.policy('rev', {
      selector: selectorFor('rev'),
      detectors: { crashLoop: { restarts: 3, windowSeconds: 600 } },
      escalation: ladder(['RestartPod', 10], ['Rollback', 30]),
      guardrails: guardrails({ healthyRevisionSeconds: 15 }),
    });
    // Revision 1 serves long enough to count as healthy; then revision 2 is rolled out and crashes.
    await new Promise((r) => setTimeout(r, 16_000));
    const ref = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'rev', namespace: bed.namespace },
    };
    await bed.client.patch(
      ref,
      {
        spec: {
          template: { spec: { containers: [{ name: 'app', env: [{ name: 'VERSION', value: '2' }] }] } },
        },
      },
      { type: 'strategic' },
    );
    const hash = await bed.revisionHash('rev', '2');
    bed.fail(`app=rev,pod-template-hash=${hash}`, { kind: 'CrashLoop', restarts: 4 });
    await expectRolledBack('rev', ref);
  });

  it.concurrent('rolls a StatefulSet back to its last healthy ControllerRevision', async () => {
    const ref = {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'books', namespace: bed.namespace },
    };
    const template = (version: string) => ({
      metadata: { labels: { app: 'books' } },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [
          { name: 'app', image: 'registry.example/books:1', env: [{ name: 'VERSION', value: version }] },
        ],
      },
    });
    await bed.client.create({
      ...ref,
      metadata: { ...ref.metadata, labels: { app: 'books', scenario: 'books' } },
      spec: {
        serviceName: 'books',
        replicas: 2,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: { app: 'books' } },
        template: template('1'),
      },
    });
    await bed.policy('books', {
      selector: { ...selectorFor('books'), kinds: ['StatefulSet'] },
      detectors: { crashLoop: { restarts: 3, windowSeconds: 600 } },
      escalation: ladder(['RestartPod', 10], ['Rollback', 30]),
      guardrails: guardrails({ healthyRevisionSeconds: 15 }),
    });
    // Revision 1 serves long enough to count as healthy; then revision 2 is rolled out and crashes.
    await new Promise((r) => setTimeout(r, 16_000));
    type Revisions = KubeObject & { status?: { updateRevision?: string } };
    const revision1 = (await bed.client.get<Revisions>(ref))?.status?.updateRevision;
    await bed.client.patch(ref, { spec: { template: template('2') } }, { type: 'merge' });
    const revision2 = await waitFor('revision 2', async () => {
      const update = (await bed.client.get<Revisions>(ref))?.status?.updateRevision;
      return update && update !== revision1 ? update : undefined;
    });
    bed.fail(`app=books,controller-revision-hash=${revision2}`, { kind: 'CrashLoop', restarts: 4 });
    await expectRolledBack('books', ref);
  });

  it.concurrent('rolls an InferencePool back to the release it served before, through annotations on the pool', async () => {
    // The pool controller does not run here: the pool and its Deployment stand as it would leave them,
    // each template naming the release it serves.
    const pool = await bed.client.create<KubeObject>({
      apiVersion: 'aurora.health/v1alpha1',
      kind: 'InferencePool',
      metadata: { name: 'triage', namespace: bed.namespace, labels: { scenario: 'pool' } },
      spec: { modelRef: { name: 'er-news2-risk' }, minReplicas: 2, maxReplicas: 4 },
    });
    const release = (name: string) => ({ 'aurora.health/release': name });
    for (const name of ['triage-1-0-0', 'triage-1-1-0'])
      await bed.client.create({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace: bed.namespace },
        data: {},
      });
    await bed.client.create({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: 'triage',
        namespace: bed.namespace,
        ownerReferences: [
          {
            apiVersion: 'aurora.health/v1alpha1',
            kind: 'InferencePool',
            name: 'triage',
            uid: pool.metadata.uid ?? '',
            controller: true,
          },
        ],
      },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'triage' } },
        template: {
          metadata: { labels: { app: 'triage' }, annotations: release('triage-1-0-0') },
          spec: {
            terminationGracePeriodSeconds: 0,
            containers: [{ name: 'triage-server', image: 'aurora:local' }],
          },
        },
      },
    });
    await bed.policy('pool', {
      selector: { labelSelector: { matchLabels: { scenario: 'pool' } }, kinds: ['InferencePool'] },
      detectors: { crashLoop: { restarts: 3 } },
      escalation: ladder(['RestartPod', 10], ['Rollback', 30]),
      guardrails: guardrails({ healthyRevisionSeconds: 15 }),
    });
    await new Promise((r) => setTimeout(r, 16_000));
    const ref = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'triage', namespace: bed.namespace },
    };
    await bed.client.patch(
      ref,
      { spec: { template: { metadata: { annotations: release('triage-1-1-0') } } } },
      { type: 'merge' },
    );
    const hash = await bed.revisionHash('triage', '2');
    bed.fail(`app=triage,pod-template-hash=${hash}`, { kind: 'CrashLoop', restarts: 4 });
    await bed.until('rolled back', 'pool', (s) =>
      s.recentActions?.some((a) => a.action === 'Rollback' && a.outcome === 'Done') ? true : undefined,
    );
    const live = await bed.client.get<KubeObject>({
      apiVersion: 'aurora.health/v1alpha1',
      kind: 'InferencePool',
      metadata: { name: 'triage', namespace: bed.namespace },
    });
    expect(live?.metadata.annotations).toMatchObject({
      'aurora.health/rolled-back-to': 'triage-1-0-0',
      'aurora.health/rolled-back-from': 'triage-1-1-0',
    });
    const rows = await bed.rows('pool');
    expect(types(rows).slice(0, 4)).toEqual([
      'Detected',
      'Skipped:RestartPod',
      'Intent:Rollback',
      'Outcome:Rollback:Done',
    ]);
    expect(rows[2]?.details).toMatchObject({ toRelease: 'triage-1-0-0', fromRelease: 'triage-1-1-0' });
  });

  it.concurrent('in DryRun records what it would do and does nothing', async () => {
    await bed.deployment('dry', { labels: { scenario: 'dry' } });
    await bed.policy('dry', {
      selector: selectorFor('dry'),
      detectors: { crashLoop: { restarts: 3 } },
      escalation: ladder(['RestartPod', 10]),
      guardrails: guardrails(),
      mode: 'DryRun',
    });
    const before = await bed.uids('dry');
    bed.fail('app=dry', { kind: 'CrashLoop', restarts: 6 });
    await bed.until('dry run recorded', 'dry', (s) =>
      s.recentActions?.[0]?.outcome === 'DryRun' ? true : undefined,
    );
    expect(types(await bed.rows('dry'))).toEqual([
      'Detected',
      'Intent:RestartPod',
      'Outcome:RestartPod:DryRun',
    ]);
    expect(await bed.uids('dry')).toEqual(before);
  });

  it.concurrent('asks PodDisruptionBudgets through eviction, and records a refusal', async () => {
    await bed.deployment('pdb', { labels: { scenario: 'pdb' } });
    await bed.client.create({
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: 'pdb', namespace: bed.namespace },
      spec: { minAvailable: 2, selector: { matchLabels: { app: 'pdb' } } },
    });
    await bed.policy('pdb', {
      selector: selectorFor('pdb'),
      detectors: { crashLoop: { restarts: 3 } },
      escalation: ladder(['RestartPod', 10]),
      guardrails: guardrails(),
    });
    const before = await bed.uids('pdb');
    const [one] = await livePods(bed.client, bed.namespace, 'app=pdb');
    if (!one) throw new Error('no pod');
    // One pod crashes; the budget wants both available, so its eviction is refused.
    await failPod(bed.client, one, { kind: 'CrashLoop', restarts: 4 });
    await bed.until('refused', 'pdb', (s) =>
      s.recentActions?.[0]?.outcome === 'Refused' ? true : undefined,
    );
    expect((await bed.rows('pdb')).find((r) => r.type === 'Outcome')).toMatchObject({
      reason: 'DisruptionBudget',
    });
    expect(await bed.uids('pdb')).toEqual(before);
  });

  it.concurrent('deletes the pod past its PodDisruptionBudget when the policy says not to respect budgets', async () => {
    await bed.deployment('nopdb', { labels: { scenario: 'nopdb' } });
    await bed.client.create({
      apiVersion: 'policy/v1',
      kind: 'PodDisruptionBudget',
      metadata: { name: 'nopdb', namespace: bed.namespace },
      spec: { minAvailable: 2, selector: { matchLabels: { app: 'nopdb' } } },
    });
    await bed.policy('nopdb', {
      selector: selectorFor('nopdb'),
      detectors: { crashLoop: { restarts: 3 } },
      escalation: ladder(['RestartPod', 10]),
      guardrails: guardrails({ respectDisruptionBudgets: false }),
    });
    const [one] = await livePods(bed.client, bed.namespace, 'app=nopdb');
    if (!one) throw new Error('no pod');
    await failPod(bed.client, one, { kind: 'CrashLoop', restarts: 4 });
    // The budget would refuse an eviction; the policy deletes the pod instead.
    await bed.until('restarted', 'nopdb', (s) =>
      s.recentActions?.[0]?.outcome === 'Done' ? true : undefined,
    );
    expect(types(await bed.rows('nopdb')).slice(0, 3)).toEqual([
      'Detected',
      'Intent:RestartPod',
      'Outcome:RestartPod:Done',
    ]);
    await waitFor('the crashing pod gone', async () =>
      (await bed.uids('nopdb')).includes(one.metadata.uid ?? '') ? undefined : true,
    );
  });

  it.concurrent('spends no more than the policy budget and waits the cool-down', async () => {
    for (const n of ['b1', 'b2']) await bed.deployment(n, { replicas: 1, labels: { scenario: 'budget' } });
    await bed.policy('budget', {
      selector: selectorFor('budget'),
      detectors: { crashLoop: { restarts: 2 } },
      escalation: ladder(['RestartPod', 10], ['RestartRollout', 10]),
      guardrails: guardrails({ budget: { actions: 1, windowSeconds: 3600 }, cooldownSeconds: 600 }),
    });
    bed.fail('app in (b1,b2)', { kind: 'CrashLoop', restarts: 3 });
    // One target is acted on and then waits its cool-down; the other waits for budget.
    const s = await bed.until(
      'budget spent',
      'budget',
      (s) =>
        s.budgetRemaining === 0 && s.unhealthyTargets?.some((t) => t.waitingFor === 'CoolingDown')
          ? s
          : undefined,
      40_000,
    );
    expect(s.unhealthyTargets?.map((t) => t.waitingFor).sort()).toEqual(['BudgetExhausted', 'CoolingDown']);
    await new Promise((r) => setTimeout(r, 12_000));
    expect((await bed.rows('budget')).filter((r) => r.type === 'Intent')).toHaveLength(1);
  });

  it('leaves a trail the verifier passes', async () => {
    const result = await verifyAuditTrail({ url: inject('postgresUrl'), schema: bed.schema });
    expect(result).toMatchObject({ ok: true });
    expect(result.rows).toBeGreaterThan(10);
  });
});
