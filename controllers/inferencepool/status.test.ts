import { describe, expect, it } from 'vitest';
import { inferencePoolSpec } from '../../crds/inferencepool.ts';
import type { InferencePool } from '../../crds/kinds.ts';
import { unifiedMemoryResource } from '../../crds/labels.ts';
import { conditionEvents } from '../../operator/condition-events.ts';
import type { NodeView } from '../../views/node.ts';
import { type PodView, podView } from '../../views/pod.ts';
import { type ModelRelease, type ModelState, releaseName } from './release.ts';
import {
  inferencePoolEvents,
  inferencePoolStatus,
  nextTimedChangeMs,
  type PoolObservations,
  placementByNode,
} from './status.ts';

const now = new Date('2026-11-23T10:00:00Z');
const release = (version: string, digestByte: string): ModelRelease => ({
  model: 'er',
  version,
  digest: digestByte.repeat(32),
  measuredMemoryMiB: 1000,
  contract: {
    version,
    inputs: { tensorName: 'vitals', elementType: 'float32', features: [{ name: 'pulse' }] },
    outputs: { tensorName: 'probabilities', labels: ['high', 'low'] },
    executionProviders: ['cpu'],
  },
});
const v1 = release('1.0.0', 'ab');
const v2 = release('1.1.0', 'cd');
const pool = (spec: Record<string, unknown> = {}) =>
  ({
    apiVersion: 'aurora.health/v1alpha1',
    kind: 'InferencePool',
    metadata: { name: 'er-triage', namespace: 'emergency', uid: 'u1', generation: 4 },
    spec: inferencePoolSpec.parse({ modelRef: { name: 'er' }, minReplicas: 2, maxReplicas: 4, ...spec }),
  }) as InferencePool & { spec: ReturnType<typeof inferencePoolSpec.parse> };
const node = (name: string, chip: string | undefined, allocatableMiB: number): NodeView => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: {
    name,
    labels: chip
      ? {
          'aurora.health/apple-silicon': 'true',
          'aurora.health/chip': chip,
          'aurora.health/unified-memory-gib': '24',
        }
      : { 'kubernetes.io/arch': 'amd64' },
  },
  spec: {},
  status: {
    allocatable: chip ? { [unifiedMemoryResource]: String(allocatableMiB) } : {},
    conditions: [{ type: 'Ready', status: 'True' }],
  },
});
const fleet = [node('m4-1', 'm4', 20_480), node('m4-2', 'm4', 20_480), node('cloud-1', undefined, 0)];
const pod = (
  name: string,
  o: {
    node?: string;
    ready?: boolean;
    release?: ModelRelease;
    unschedulable?: string;
    mib?: number;
    pool?: string;
    waiting?: string;
    lastTerminated?: string;
  },
): PodView =>
  podView({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'emergency',
      labels: { 'aurora.health/pool': o.pool ?? 'er-triage' },
      annotations: { 'aurora.health/release': releaseName(o.pool ?? 'er-triage', o.release ?? v1) },
    },
    spec: {
      ...(o.node ? { nodeName: o.node } : {}),
      containers: [{ resources: { requests: { [unifiedMemoryResource]: String(o.mib ?? 1500) } } }],
    },
    status: {
      phase: o.node ? 'Running' : 'Pending',
      conditions: [
        ...(o.unschedulable
          ? [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: o.unschedulable }]
          : []),
        { type: 'Ready', status: o.ready ? 'True' : 'False' },
      ],
      ...(o.waiting
        ? {
            containerStatuses: [
              {
                state: { waiting: { reason: o.waiting } },
                ...(o.lastTerminated ? { lastState: { terminated: { reason: o.lastTerminated } } } : {}),
              },
            ],
          }
        : {}),
    },
  });
const deployment = (target: ModelRelease, status: Record<string, unknown> = {}) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'er-triage', generation: 2 },
  spec: {
    template: { metadata: { annotations: { 'aurora.health/release': releaseName('er-triage', target) } } },
  },
  status: { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2, ...status },
});
const validated = (r: ModelRelease): ModelState => ({ kind: 'validated', name: 'er', release: r });
const observe = (o: Partial<PoolObservations>): PoolObservations => {
  const pods = o.pods ?? [];
  return {
    pool: pool(),
    model: validated(v1),
    served: v1,
    podMemoryMiB: 1500,
    desiredReplicas: 2,
    deployment: deployment(v1),
    pods,
    allPoolPods: pods,
    nodes: fleet,
    releases: new Map([
      [releaseName('er-triage', v1), v1],
      [releaseName('er-triage', v2), v2],
    ]),
    now,
    ...o,
  };
};
const condition = (status: ReturnType<typeof inferencePoolStatus>, type: string) =>
  status.conditions?.find((c) => c.type === type);

describe('inferencePoolStatus', () => {
  it('a pool serving on two machines: Ready, placement per node with chip, served version', () => {
    const status = inferencePoolStatus(
      observe({ pods: [pod('a', { node: 'm4-1', ready: true }), pod('b', { node: 'm4-2', ready: true })] }),
    );
    expect(condition(status, 'Ready')).toMatchObject({
      status: 'True',
      reason: 'Serving',
      observedGeneration: 4,
    });
    expect(condition(status, 'ModelCurrent')).toMatchObject({ status: 'True', reason: 'Current' });
    expect(condition(status, 'Placed')).toMatchObject({ status: 'True', reason: 'AllPlaced' });
    expect(condition(status, 'Progressing')).toMatchObject({ status: 'False', reason: 'Complete' });
    expect(condition(status, 'Degraded')).toMatchObject({ status: 'False' });
    expect(status.placement).toEqual([
      { node: 'm4-1', chip: 'm4', replicas: 1 },
      { node: 'm4-2', chip: 'm4', replicas: 1 },
    ]);
    expect(status.servedModel).toEqual({ name: 'er', version: '1.0.0', digest: `sha256:${v1.digest}` });
    expect(status).toMatchObject({
      replicas: 2,
      desiredReplicas: 2,
      readyReplicas: 2,
      selector: 'aurora.health/pool=er-triage',
    });
  });

  it.each<[string, ModelState, ModelRelease | undefined, string, string]>([
    ['no TriageModel, nothing served', { kind: 'missing', name: 'er' }, undefined, 'ModelNotFound', 'False'],
    [
      'never validated',
      { kind: 'pending', name: 'er', version: '1.0.0' },
      undefined,
      'AwaitingValidation',
      'False',
    ],
    [
      'first version rejected',
      {
        kind: 'rejected',
        name: 'er',
        version: '1.0.0',
        reason: 'AcceptanceFailed',
        message: 'recall high 64%',
      },
      undefined,
      'ModelNotValidated',
      'False',
    ],
  ])('%s: Ready False with the model reason', (_name, model, served, reason, readyStatus) => {
    const status = inferencePoolStatus(observe({ model, served, deployment: undefined }));
    expect(condition(status, 'ModelCurrent')).toMatchObject({ status: 'False', reason });
    expect(condition(status, 'Ready')).toMatchObject({ status: readyStatus, reason });
    expect(status.servedModel).toBeUndefined();
  });

  it('a rejected new version keeps the old one serving and says so', () => {
    const status = inferencePoolStatus(
      observe({
        model: {
          kind: 'rejected',
          name: 'er',
          version: '1.1.0',
          reason: 'AcceptanceFailed',
          message: 'recall high 64.4%',
        },
        pods: [pod('a', { node: 'm4-1', ready: true }), pod('b', { node: 'm4-2', ready: true })],
      }),
    );
    const current = condition(status, 'ModelCurrent');
    expect(current).toMatchObject({ status: 'False', reason: 'VersionRejected' });
    expect(current?.message).toContain(
      'version 1.1.0 was not validated (AcceptanceFailed): recall high 64.4%',
    );
    expect(current?.message).toContain('still serving version 1.0.0');
    expect(condition(status, 'Ready')).toMatchObject({ status: 'True', reason: 'Serving' });
    expect(condition(status, 'Degraded')).toMatchObject({ status: 'True', reason: 'VersionRejected' });
    expect(status.servedModel?.version).toBe('1.0.0');
  });

  it('a rollout in progress: served is what most ready pods serve, Progressing names both versions', () => {
    const status = inferencePoolStatus(
      observe({
        model: validated(v2),
        served: v2,
        deployment: deployment(v2, { replicas: 3, updatedReplicas: 1 }),
        pods: [
          pod('old-a', { node: 'm4-1', ready: true }),
          pod('old-b', { node: 'm4-2', ready: true }),
          pod('new-a', { node: 'm4-1', ready: false, release: v2 }),
        ],
      }),
    );
    expect(condition(status, 'Progressing')).toMatchObject({
      status: 'True',
      reason: 'RollingOut',
      message: 'moving from version 1.0.0 to version 1.1.0: 1 of 2 pod(s) updated, 2 ready',
    });
    expect(status.servedModel?.version).toBe('1.0.0');
    // Two ready pods still serve at the pool's strength while the third comes up.
    expect(condition(status, 'Ready')).toMatchObject({ status: 'True', reason: 'Serving' });
  });

  it('a scale-up of the same version is Scaling, not a rollout', () => {
    const status = inferencePoolStatus(
      observe({
        desiredReplicas: 3,
        pods: [pod('a', { node: 'm4-1', ready: true }), pod('b', { node: 'm4-2', ready: true })],
      }),
    );
    expect(condition(status, 'Progressing')).toMatchObject({
      status: 'True',
      reason: 'Scaling',
      message: 'scaling from 2 to 3 pod(s) of version 1.0.0, 2 ready',
    });
    expect(condition(status, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'Scaling',
      message: '2 of 3 pod(s) ready',
    });
  });

  it('pods waiting for unified memory: the shortfall in MiB and where the most is free', () => {
    const insufficient = `0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient ${unifiedMemoryResource}.`;
    const others = [
      pod('big-1', { node: 'm4-1', ready: true, mib: 19_000, pool: 'other' }),
      pod('big-2', { node: 'm4-2', ready: true, mib: 19_500, pool: 'other' }),
    ];
    const mine = [pod('a', { unschedulable: insufficient }), pod('b', { unschedulable: insufficient })];
    const status = inferencePoolStatus(observe({ pods: mine, allPoolPods: [...mine, ...others] }));
    expect(condition(status, 'Placed')).toMatchObject({
      status: 'False',
      reason: 'InsufficientUnifiedMemory',
      message:
        '2 of 2 pod(s) cannot be placed: each needs 1500 MiB of unified memory; the most free on an allowed node is 1480 MiB (m4-1), 20 MiB short',
    });
    expect(condition(status, 'Ready')).toMatchObject({
      status: 'False',
      reason: 'InsufficientUnifiedMemory',
    });
  });

  it('a model larger than any allowed node: ModelTooLarge with both figures', () => {
    const status = inferencePoolStatus(
      observe({
        podMemoryMiB: 30_000,
        pods: [
          pod('a', { unschedulable: `0/3 nodes are available: 2 Insufficient ${unifiedMemoryResource}.` }),
        ],
      }),
    );
    expect(condition(status, 'Placed')).toMatchObject({
      status: 'False',
      reason: 'ModelTooLarge',
      message:
        '1 of 1 pod(s) cannot be placed: each needs 30000 MiB of unified memory; the largest allowed node (m4-1) offers 20480 MiB',
    });
  });

  it('no node matches the placement: NoMatchingNodes names the placement', () => {
    const status = inferencePoolStatus(
      observe({
        pool: pool({ placement: { chips: ['m4-max'] } }),
        pods: [
          pod('a', {
            unschedulable: "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
          }),
        ],
      }),
    );
    expect(condition(status, 'Placed')).toMatchObject({
      status: 'False',
      reason: 'NoMatchingNodes',
      message:
        '1 of 1 pod(s) cannot be placed: no ready node matches the placement (Apple silicon, chip m4-max)',
    });
  });

  it('keeps lastTransitionTime when nothing flips', () => {
    const first = inferencePoolStatus(
      observe({ pods: [pod('a', { node: 'm4-1', ready: true }), pod('b', { node: 'm4-2', ready: true })] }),
    );
    const again = inferencePoolStatus({
      ...observe({
        pods: [pod('a', { node: 'm4-1', ready: true }), pod('b', { node: 'm4-2', ready: true })],
      }),
      pool: { ...pool(), status: first },
      now: new Date('2026-11-23T11:00:00Z'),
    });
    expect(again.conditions).toEqual(first.conditions);
  });
});

describe('placementByNode', () => {
  it.each([
    ['no pods', [], []],
    ['a pending pod is on no node', [pod('p1', { unschedulable: 'no room' })], []],
    [
      'pods of two pools on two nodes, summed per pool and node',
      [
        pod('a1', { node: 'm4-1', mib: 1500 }),
        pod('a2', { node: 'm4-1', mib: 1500 }),
        pod('a3', { node: 'm4-2', mib: 1500 }),
        pod('b1', { node: 'm4-1', mib: 700, pool: 'ward' }),
      ],
      [
        { namespace: 'emergency', pool: 'er-triage', node: 'm4-1', pods: 2, unifiedMemoryMiB: 3000 },
        { namespace: 'emergency', pool: 'er-triage', node: 'm4-2', pods: 1, unifiedMemoryMiB: 1500 },
        { namespace: 'emergency', pool: 'ward', node: 'm4-1', pods: 1, unifiedMemoryMiB: 700 },
      ],
    ],
    [
      'a finished pod no longer counts',
      [{ ...pod('done', { node: 'm4-1' }), pod: { ...pod('done', { node: 'm4-1' }).pod, phase: 'Failed' } }],
      [],
    ],
  ])('%s', (_what, pods, expected) => {
    expect(placementByNode(pods)).toEqual(expected);
  });
});

describe('podView', () => {
  it('reads the unified-memory request in the canonical form the API server writes (3000 → 3k)', () => {
    const view = podView({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'a', namespace: 'emergency', labels: { 'aurora.health/pool': 'er-triage' } },
      spec: { containers: [{ resources: { requests: { [unifiedMemoryResource]: '3k' } } }] },
    });
    expect(view.pod.unifiedMemoryMiB).toBe(3000);
  });
});

describe('inferencePoolStatus, beyond the happy path', () => {
  it('during a rollout the model is not yet current, and says which version still serves', () => {
    const status = inferencePoolStatus(
      observe({
        model: validated(v2),
        served: v2,
        deployment: deployment(v2, { replicas: 3, updatedReplicas: 1 }),
        pods: [
          pod('old-a', { node: 'm4-1', ready: true }),
          pod('old-b', { node: 'm4-2', ready: true }),
          pod('new-a', { node: 'm4-1', release: v2 }),
        ],
      }),
    );
    expect(condition(status, 'ModelCurrent')).toMatchObject({
      status: 'False',
      reason: 'RollingOut',
      message: 'version 1.1.0 passed acceptance; the pods are moving to it; still serving version 1.0.0',
    });
  });

  it('crash-looping pods make the pool Degraded with the kubelet reason and OOMKilled named', () => {
    const status = inferencePoolStatus(
      observe({
        pods: [
          pod('a', { node: 'm4-1', ready: true }),
          pod('b', { node: 'm4-2', waiting: 'CrashLoopBackOff', lastTerminated: 'OOMKilled' }),
        ],
      }),
    );
    expect(condition(status, 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'CrashLoopBackOff',
      message: '1 of 2 pod(s) ready; 1 pod(s) CrashLoopBackOff (OOMKilled)',
    });
    expect(condition(status, 'Ready')).toMatchObject({ status: 'False', reason: 'PodsNotReady' });
  });

  it('pods still starting are not a fault; pods unready past the startup window are', () => {
    const started = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * 60_000).toISOString();
    const withStart = (p: PodView, at: string): PodView => ({ ...p, pod: { ...p.pod, startedAt: at } });
    const starting = inferencePoolStatus(
      observe({
        pods: [
          withStart(pod('a', { node: 'm4-1' }), started(1)),
          withStart(pod('b', { node: 'm4-2' }), started(1)),
        ],
      }),
    );
    expect(condition(starting, 'Degraded')).toMatchObject({ status: 'False' });
    expect(condition(starting, 'Ready')).toMatchObject({ status: 'False', reason: 'PodsNotReady' });
    const stuck = inferencePoolStatus(
      observe({
        pods: [withStart(pod('a', { node: 'm4-1' }), started(11)), pod('b', { node: 'm4-2', ready: true })],
      }),
    );
    expect(condition(stuck, 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'PodsNotReady',
      message: '1 of 2 pod(s) ready; 1 pod(s) not ready for over 10 minutes',
    });
  });

  it('says when to look again for a pod about to be unready past the startup window', () => {
    const started = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * 60_000).toISOString();
    const withStart = (p: PodView, at: string): PodView => ({ ...p, pod: { ...p.pod, startedAt: at } });
    expect(
      nextTimedChangeMs(
        [
          withStart(pod('a', { node: 'm4-1' }), started(1)),
          withStart(pod('b', { node: 'm4-2' }), started(4)),
          withStart(pod('c', { node: 'm4-2', ready: true }), started(9)),
          withStart(pod('d', { node: 'm4-1' }), started(12)),
        ],
        now,
      ),
    ).toBe(6 * 60_000 + 1000);
    expect(nextTimedChangeMs([pod('e', { node: 'm4-1', ready: true })], now)).toBeUndefined();
  });

  it('a rollout that keeps the release (a new image) is still a rollout until the Deployment says done', () => {
    const status = inferencePoolStatus(
      observe({
        deployment: deployment(v1, { replicas: 3, updatedReplicas: 1 }),
        pods: [
          pod('a', { node: 'm4-1', ready: true }),
          pod('b', { node: 'm4-2', ready: true }),
          pod('c', { node: 'm4-1' }),
        ],
      }),
    );
    expect(condition(status, 'Progressing')).toMatchObject({ status: 'True' });
    expect(condition(status, 'ModelCurrent')).toMatchObject({ status: 'False', reason: 'RollingOut' });
  });

  it('drops the Canary condition once spec.canary is gone', () => {
    const withCanary = inferencePoolStatus(
      observe({ pool: pool({ canary: { modelRef: { name: 'er-next' } } }) }),
    );
    const after = inferencePoolStatus(observe({ pool: { ...pool(), status: withCanary } }));
    expect(condition(after, 'Canary')).toBeUndefined();
  });

  it('a passed version whose source changed before its release: ReleaseSourceChanged, old version serving', () => {
    const status = inferencePoolStatus(
      observe({
        model: validated(v2),
        served: v1,
        releaseProblem: 'ConfigMap er-model no longer holds the file that passed (sha256 cdcdcdcdcdcd)',
        pods: [pod('a', { node: 'm4-1', ready: true }), pod('b', { node: 'm4-2', ready: true })],
      }),
    );
    expect(condition(status, 'ModelCurrent')).toMatchObject({
      status: 'False',
      reason: 'ReleaseSourceChanged',
      message:
        'TriageModel er version 1.1.0 passed acceptance, but ConfigMap er-model no longer holds the file that passed (sha256 cdcdcdcdcdcd); it is served once validated again; still serving version 1.0.0',
    });
  });

  it('says plainly that spec.canary is not acted on', () => {
    const status = inferencePoolStatus(
      observe({ pool: pool({ canary: { modelRef: { name: 'er-next' } } }) }),
    );
    expect(condition(status, 'Canary')).toMatchObject({ status: 'False', reason: 'NotSupported' });
    expect(condition(inferencePoolStatus(observe({})), 'Canary')).toBeUndefined();
  });
});

describe('inferencePoolEvents', () => {
  const c = (type: string, status: 'True' | 'False' | 'Unknown', reason: string) => ({
    type,
    status,
    reason,
    message: reason,
    lastTransitionTime: '2026-11-23T10:00:00Z',
  });
  it.each([
    [
      'a rejected version',
      undefined,
      c('ModelCurrent', 'False', 'VersionRejected'),
      'Warning VersionRejected',
    ],
    [
      'waiting for validation',
      undefined,
      c('ModelCurrent', 'False', 'AwaitingValidation'),
      'Normal AwaitingValidation',
    ],
    [
      'a rollout under way',
      c('ModelCurrent', 'True', 'Current'),
      c('ModelCurrent', 'False', 'RollingOut'),
      'Normal RollingOut',
    ],
    ['all placed at first sight', undefined, c('Placed', 'True', 'AllPlaced'), undefined],
    [
      'pods that find no room',
      c('Placed', 'True', 'AllPlaced'),
      c('Placed', 'False', 'InsufficientUnifiedMemory'),
      'Warning InsufficientUnifiedMemory',
    ],
    [
      'room found again',
      c('Placed', 'False', 'InsufficientUnifiedMemory'),
      c('Placed', 'True', 'AllPlaced'),
      'Normal AllPlaced',
    ],
    [
      'Progressing before anything is served',
      undefined,
      c('Progressing', 'False', 'AwaitingValidation'),
      undefined,
    ],
    [
      'a rollout starts',
      c('Progressing', 'False', 'Complete'),
      c('Progressing', 'True', 'RollingOut'),
      'Normal RollingOut',
    ],
    [
      'a rollout stalls',
      c('Progressing', 'True', 'RollingOut'),
      c('Progressing', 'False', 'RolloutStalled'),
      'Warning RolloutStalled',
    ],
    [
      'a fault',
      c('Degraded', 'False', 'AsExpected'),
      c('Degraded', 'True', 'CrashLoopBackOff'),
      'Warning CrashLoopBackOff',
    ],
    [
      'the fault clears (told by Ready and Placed, not here)',
      c('Degraded', 'True', 'CrashLoopBackOff'),
      c('Degraded', 'False', 'AsExpected'),
      undefined,
    ],
    [
      'Ready is not told by pools',
      c('Ready', 'True', 'Serving'),
      c('Ready', 'False', 'PodsNotReady'),
      undefined,
    ],
  ] as const)('%s', (_name, before, after, expected) => {
    const told = conditionEvents(before ? [before] : [], [after], inferencePoolEvents).map(
      (e) => `${e.type} ${e.reason}`,
    );
    expect(told).toEqual(expected ? [expected] : []);
  });
});
