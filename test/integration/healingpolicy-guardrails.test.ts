// More HealingPolicy scenarios on the real control plane and PostgreSQL: a failure confined to one node
// (cordoned once a person approves), a storm (nothing done, then a cool-down), the per-target limit, OOM
// kills (restart, then scale out, the memory limit named) and restarts per window.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeManifest } from '../../hack/local-cluster/fleet.ts';
import { failPod, livePods } from '../../hack/local-cluster/pod-failures.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { uniqueSuffix } from '../harness/cluster.ts';
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
const nodes: string[] = [];

beforeAll(async () => {
  bed = await startHealingTestbed('healing-guard');
});

afterAll(async () => {
  for (const name of nodes)
    await bed.client.delete({ apiVersion: 'v1', kind: 'Node', metadata: { name } }).catch(() => {});
  await bed?.cleanup();
});

const deploymentRef = (name: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: bed.namespace },
});

describe('HealingPolicy guardrails', () => {
  it.concurrent('cordons the one node where the failures are, once a person approves', async () => {
    // Three machines of this test's own, tainted so nothing else lands on them.
    const group = `heal-${uniqueSuffix()}`;
    for (const i of [1, 2, 3]) {
      const name = `${group}-${i}`;
      nodes.push(name);
      const manifest = nodeManifest({
        name,
        arch: 'arm64',
        cpuCores: 10,
        memoryGiB: 24,
        instanceType: 'mac-mini-m4',
        zone: 'er',
      });
      await bed.client.create({
        ...manifest,
        metadata: { ...manifest.metadata, labels: { ...manifest.metadata?.labels, 'heal-group': group } },
        spec: { taints: [{ key: 'heal-group', value: group, effect: 'NoSchedule' }] },
      } as KubeObject);
    }
    // Four pods over three machines: two land on one of them.
    await bed.deployment('spread', {
      replicas: 4,
      labels: { scenario: 'node' },
      podSpec: {
        nodeSelector: { 'heal-group': group },
        tolerations: [{ key: 'heal-group', operator: 'Equal', value: group, effect: 'NoSchedule' }],
        topologySpreadConstraints: [
          {
            maxSkew: 1,
            topologyKey: 'kubernetes.io/hostname',
            whenUnsatisfiable: 'DoNotSchedule',
            labelSelector: { matchLabels: { app: 'spread' } },
          },
        ],
      },
    });
    // The machine holding two of them is the bad one.
    const perNode = new Map<string, number>();
    for (const p of await livePods(bed.client, bed.namespace, 'app=spread')) {
      const n = (p.spec as { nodeName?: string } | undefined)?.nodeName ?? '';
      perNode.set(n, (perNode.get(n) ?? 0) + 1);
    }
    const bad = [...perNode].find(([, count]) => count === 2)?.[0] ?? '';
    expect(bad).toMatch(group);
    // Both fail before the policy looks, so it sees the whole picture at once.
    const k = bed.fail('app=spread', { kind: 'CrashLoop', restarts: 5 }, { onlyNode: bad });
    await waitFor('both pods on it failing', async () => (k.failed() >= 2 ? true : undefined));
    await bed.policy('node', {
      selector: selectorFor('node'),
      detectors: { crashLoop: { restarts: 3 } },
      escalation: ladder(['CordonNode', 30]),
      guardrails: guardrails(),
      approval: { requiredFor: ['CordonNode'] },
    });
    const waiting = await bed.until('awaiting approval', 'node', (s) =>
      s.unhealthyTargets?.[0]?.waitingFor === 'AwaitingApproval' ? s : undefined,
    );
    expect(waiting.unhealthyTargets?.[0]).toMatchObject({
      cause: 'NodeLocal',
      waitingMessage: expect.stringContaining('aurora.health/approve=CordonNode'),
    });
    expect(waiting.recentActions?.[0]).toMatchObject({ action: 'CordonNode', outcome: 'AwaitingApproval' });
    const node = async () =>
      bed.client.get<KubeObject & { spec?: { unschedulable?: boolean } }>({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: bad },
      });
    expect((await node())?.spec?.unschedulable).toBeFalsy();

    await bed.client.patch(
      deploymentRef('spread'),
      { metadata: { annotations: { 'aurora.health/approve': 'CordonNode' } } },
      { type: 'merge' },
    );
    await waitFor('cordoned', async () => ((await node())?.spec?.unschedulable ? true : undefined), {
      timeoutMs: 20_000,
    });
    const rows = await bed.rows('node');
    expect(types(rows)).toEqual([
      'Detected',
      'AwaitingApproval:CordonNode',
      'Intent:CordonNode',
      'Outcome:CordonNode:Done',
    ]);
    expect(rows[2]?.details).toMatchObject({ node: bad });
    // The approval is used once: Aurora takes the annotation back.
    await waitFor('approval consumed', async () => {
      const d = await bed.client.get(deploymentRef('spread'));
      return d?.metadata.annotations?.['aurora.health/approve'] === undefined ? true : undefined;
    });
    // The other machines were never touched.
    for (const other of [1, 2, 3].map((i) => `${group}-${i}`).filter((n) => n !== bad)) {
      const n = await bed.client.get<KubeObject & { spec?: { unschedulable?: boolean } }>({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: other },
      });
      expect(n?.spec?.unschedulable).toBeFalsy();
    }
  });

  it.concurrent('acts on nothing during a storm, then waits its cool-down', async () => {
    for (const n of ['s1', 's2', 's3'])
      await bed.deployment(n, { replicas: 1, labels: { scenario: 'storm' } });
    // Both fail before the policy looks, as in a mass failure.
    const s1 = bed.fail('app=s1', { kind: 'CrashLoop', restarts: 3 });
    const s2 = bed.fail('app=s2', { kind: 'CrashLoop', restarts: 3 });
    await waitFor('both failing', async () => (s1.failed() && s2.failed() ? true : undefined));
    await bed.policy('storm', {
      selector: selectorFor('storm'),
      detectors: { crashLoop: { restarts: 2 } },
      escalation: ladder(['RestartRollout', 30]),
      guardrails: guardrails({ maxUnhealthyPercent: 50, stormCooldownSeconds: 10 }),
    });
    const storm = await bed.until('storm', 'storm', (s) =>
      reasonOf(s, 'StormActive') === 'MaxUnhealthyExceeded' ? s : undefined,
    );
    expect(storm.unhealthyTargets?.map((t) => t.waitingFor)).toEqual(['StormActive', 'StormActive']);
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await bed.rows('storm')).filter((r) => r.type === 'Intent')).toEqual([]);
    // s1 mends (its pod replaced by a healthy one): one of three failing is no storm, but the cool-down holds.
    await s1.stop();
    for (const p of await livePods(bed.client, bed.namespace, 'app=s1'))
      await bed.client.delete({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: p.metadata.name, namespace: bed.namespace },
      });
    await bed.until('cooling down', 'storm', (s) =>
      reasonOf(s, 'StormActive') === 'StormCoolingDown' ? true : undefined,
    );
    await bed.until(
      'acted after the cool-down',
      'storm',
      (s) => (s.recentActions?.length ? true : undefined),
      30_000,
    );
    const rows = await bed.rows('storm');
    const ended = rows.find((r) => r.type === 'StormEnded');
    const intent = rows.find((r) => r.type === 'Intent');
    expect(intent?.target?.name).toBe('s2');
    expect((intent?.atMs ?? 0) - (ended?.atMs ?? 0)).toBeGreaterThanOrEqual(10_000);
    expect(types(rows).filter((t) => t.startsWith('Storm'))).toEqual(['StormStarted', 'StormEnded']);
  });

  it.concurrent('finds a crash loop only at its count of restarts, and keeps to the per-target limit', async () => {
    await bed.deployment('limit', { replicas: 1, labels: { scenario: 'limit' } });
    await bed.policy('limit', {
      selector: selectorFor('limit'),
      detectors: { crashLoop: { restarts: 3 } },
      escalation: ladder(['RestartPod', 10], ['RestartRollout', 10]),
      guardrails: guardrails({ perTargetLimit: { actions: 1, windowSeconds: 3600 } }),
    });
    await bed.until('watching', 'limit', (s) => (s.watchedTargets === 1 ? true : undefined));
    // Two restarts of three: not yet a crash loop.
    const [first] = await livePods(bed.client, bed.namespace, 'app=limit');
    await failPod(bed.client, first as NonNullable<typeof first>, { kind: 'CrashLoop', restarts: 2 });
    await new Promise((r) => setTimeout(r, 4_000));
    expect(await bed.rows('limit')).toEqual([]);
    bed.fail('app=limit', { kind: 'CrashLoop', restarts: 3 });
    await bed.until(
      'limit reached',
      'limit',
      (s) => (s.unhealthyTargets?.[0]?.waitingFor === 'TargetLimitReached' ? true : undefined),
      40_000,
    );
    expect(types(await bed.rows('limit'))).toEqual([
      'Detected',
      'Intent:RestartPod',
      'Outcome:RestartPod:Done',
    ]);
  });

  it.concurrent('restarts OOM-killed pods, then scales out, naming the memory limit as the cause', async () => {
    await bed.deployment('oom', { replicas: 2, labels: { scenario: 'oom' }, memoryLimit: '256Mi' });
    await bed.policy('oom', {
      selector: selectorFor('oom'),
      detectors: { oomKilled: { count: 1, windowSeconds: 900 } },
      escalation: [
        { action: 'RestartPod', timeoutSeconds: 10 },
        { action: 'ScaleOut', timeoutSeconds: 30, scaleOutBy: 2 },
      ],
      guardrails: guardrails(),
    });
    bed.fail('app=oom', { kind: 'OOMKilled' });
    const s = await bed.until('scaled out', 'oom', (s) =>
      s.recentActions?.some((a) => a.action === 'ScaleOut' && a.outcome === 'Done') ? s : undefined,
    );
    expect(s.unhealthyTargets?.[0]).toMatchObject({
      cause: 'OOMKilled',
      message: expect.stringContaining('app at 256Mi'),
    });
    expect(types(await bed.rows('oom'))).toEqual([
      'Detected',
      'Intent:RestartPod',
      'Outcome:RestartPod:Done',
      'Intent:ScaleOut',
      'Outcome:ScaleOut:Done',
    ]);
    const d = await bed.client.get<KubeObject & { spec: { replicas: number } }>(deploymentRef('oom'));
    expect(d?.spec.replicas).toBe(4);
  });

  it.concurrent('heals a StatefulSet as it heals a Deployment: restarts its rollout, then scales it out', async () => {
    const labels = { app: 'ledger', scenario: 'ledger' };
    await bed.client.create({
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name: 'ledger', namespace: bed.namespace, labels },
      spec: {
        serviceName: 'ledger',
        replicas: 2,
        podManagementPolicy: 'Parallel',
        selector: { matchLabels: { app: 'ledger' } },
        template: {
          metadata: { labels: { app: 'ledger' } },
          spec: {
            terminationGracePeriodSeconds: 0,
            containers: [{ name: 'app', image: 'registry.example/ledger:1' }],
          },
        },
      },
    });
    await bed.policy('ledger', {
      selector: { ...selectorFor('ledger'), kinds: ['StatefulSet'] },
      detectors: { oomKilled: { count: 1, windowSeconds: 900 } },
      escalation: [
        { action: 'RestartRollout', timeoutSeconds: 10 },
        { action: 'ScaleOut', timeoutSeconds: 30, scaleOutBy: 1 },
      ],
      guardrails: guardrails(),
    });
    await bed.until('watching', 'ledger', (s) => (s.watchedTargets === 1 ? true : undefined));
    bed.fail('app=ledger', { kind: 'OOMKilled' });
    await bed.until('scaled out', 'ledger', (s) =>
      s.recentActions?.some((a) => a.action === 'ScaleOut' && a.outcome === 'Done') ? s : undefined,
    );
    expect(types(await bed.rows('ledger')).slice(0, 5)).toEqual([
      'Detected',
      'Intent:RestartRollout',
      'Outcome:RestartRollout:Done',
      'Intent:ScaleOut',
      'Outcome:ScaleOut:Done',
    ]);
    const sts = await bed.client.get<
      KubeObject & {
        spec: { replicas: number; template: { metadata: { annotations?: Record<string, string> } } };
      }
    >({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'ledger', namespace: bed.namespace } });
    expect(sts?.spec.replicas).toBe(3);
    expect(sts?.spec.template.metadata.annotations?.['kubectl.kubernetes.io/restartedAt']).toBeTruthy();
  });

  it.concurrent('counts restarts per window across a target’s pods', async () => {
    await bed.deployment('flappy', { replicas: 2, labels: { scenario: 'flappy' } });
    await bed.policy('flappy', {
      selector: selectorFor('flappy'),
      detectors: { restartsPerWindow: { restarts: 4, windowSeconds: 600 } },
      escalation: ladder(['RestartPod', 10]),
      guardrails: guardrails(),
      mode: 'DryRun',
    });
    await bed.until('watching', 'flappy', (s) => (s.watchedTargets === 1 ? true : undefined));
    const pods = await livePods(bed.client, bed.namespace, 'app=flappy');
    // Three restarts in all, still ready: under the threshold, nothing is found.
    await failPod(bed.client, pods[0] as (typeof pods)[number], { kind: 'Restarted', restarts: 2 });
    await failPod(bed.client, pods[1] as (typeof pods)[number], { kind: 'Restarted', restarts: 1 });
    await new Promise((r) => setTimeout(r, 4_000));
    expect((await bed.status('flappy')).unhealthyCount ?? 0).toBe(0);
    // One more: the sum crosses it, though no pod restarted more than twice.
    const [again] = (await livePods(bed.client, bed.namespace, 'app=flappy')).filter(
      (p) => p.metadata.uid === pods[1]?.metadata.uid,
    );
    await failPod(bed.client, again as (typeof pods)[number], { kind: 'Restarted', restarts: 2 });
    const s = await bed.until('detected', 'flappy', (s) => (s.unhealthyTargets?.length ? s : undefined));
    expect(s.unhealthyTargets?.[0]).toMatchObject({ detector: 'restartsPerWindow', cause: 'Restarts' });
  });
});
