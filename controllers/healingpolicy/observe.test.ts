import { describe, expect, it } from 'vitest';
import { healthPod, podsThatCount, revisionObject, revisionsOf, selectorMatches } from './observe.ts';
import { readingFor } from './prometheus.ts';

describe('healthPod', () => {
  const raw = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: 'svc-7d9f8-abcde',
      namespace: 'er',
      uid: 'u1',
      creationTimestamp: '2026-11-28T10:00:00Z',
      labels: { 'pod-template-hash': '7d9f8' },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'svc-7d9f8', uid: 'rs', controller: true },
      ],
    },
    spec: {
      nodeName: 'mini-1',
      containers: [
        { name: 'app', env: [{ name: 'SECRET', value: 'x' }], resources: { limits: { memory: '512Mi' } } },
        { name: 'sidecar' },
      ],
    },
    status: {
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: '2026-11-28T10:05:00Z' }],
      containerStatuses: [
        {
          name: 'app',
          restartCount: 4,
          state: { waiting: { reason: 'CrashLoopBackOff', message: 'patient 123 in the log' } },
          lastState: {
            terminated: { reason: 'OOMKilled', finishedAt: '2026-11-28T10:04:59Z', message: 'dump' },
          },
        },
        { name: 'sidecar', restartCount: 0, state: { running: {} } },
      ],
    },
  };

  it('keeps health, owner and revision, and never a message, env or spec', () => {
    const p = healthPod(raw);
    expect(p.health).toEqual({
      name: 'svc-7d9f8-abcde',
      uid: 'u1',
      nodeName: 'mini-1',
      createdAtMs: Date.parse('2026-11-28T10:00:00Z'),
      ready: false,
      readyChangedAtMs: Date.parse('2026-11-28T10:05:00Z'),
      revision: '7d9f8',
      containers: [
        {
          name: 'app',
          restarts: 4,
          waitingReason: 'CrashLoopBackOff',
          lastTerminatedReason: 'OOMKilled',
          lastTerminatedAtMs: Date.parse('2026-11-28T10:04:59Z'),
          memoryLimit: '512Mi',
        },
        { name: 'sidecar', restarts: 0 },
      ],
      owner: 'ReplicaSet/svc-7d9f8',
      phase: 'Running',
      terminating: false,
    });
    expect(JSON.stringify(p)).not.toMatch(/patient|dump|SECRET/);
  });

  it('counts only live pods on Ready nodes', () => {
    const pods = [
      healthPod(raw),
      healthPod({
        ...raw,
        metadata: { ...raw.metadata, name: 'gone', deletionTimestamp: '2026-11-28T10:06:00Z' },
      }),
      healthPod({
        ...raw,
        metadata: { ...raw.metadata, name: 'done' },
        status: { ...raw.status, phase: 'Succeeded' },
      }),
      healthPod({
        ...raw,
        metadata: { ...raw.metadata, name: 'lost' },
        spec: { ...raw.spec, nodeName: 'mini-2' },
      }),
    ];
    expect(podsThatCount(pods, (n) => n !== 'mini-2').map((p) => p.name)).toEqual(['svc-7d9f8-abcde']);
  });
});

/** A ReplicaSet of Deployment svc, with the release its template names when given. */
const replicaSet = (name: string, revision: string, hash: string, release?: string) =>
  revisionObject({
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name,
      namespace: 'er',
      creationTimestamp: '2026-11-28T10:00:00Z',
      annotations: { 'deployment.kubernetes.io/revision': revision },
      labels: { 'pod-template-hash': hash },
      ownerReferences: [
        { apiVersion: 'apps/v1', kind: 'Deployment', name: 'svc', uid: 'd', controller: true },
      ],
    },
    ...(release
      ? { spec: { template: { metadata: { annotations: { 'aurora.health/release': release } } } } }
      : {}),
  } as never);

describe('revisions', () => {
  it('reads ReplicaSets and ControllerRevisions, oldest first', () => {
    const revisions = revisionsOf([replicaSet('svc-b', '2', 'b'), replicaSet('svc-a', '1', 'a')]);
    expect(revisions.map((r) => [r.id, r.number, r.label])).toEqual([
      ['a', 1, 'revision 1 (svc-a)'],
      ['b', 2, 'revision 2 (svc-b)'],
    ]);
    const cr = revisionObject({
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: { name: 'db-5c6', namespace: 'er', creationTimestamp: '2026-11-28T10:00:00Z' },
      revision: 3,
      data: { spec: { template: {} } },
    } as never);
    expect(cr.revision).toMatchObject({ id: 'db-5c6', number: 3 });
    expect(JSON.stringify(cr)).not.toContain('template');
  });
});

describe('selectorMatches', () => {
  it.each([
    [undefined, { a: '1' }, true],
    [{ matchLabels: { a: '1' } }, { a: '1', b: '2' }, true],
    [{ matchLabels: { a: '1' } }, { a: '2' }, false],
    [
      { matchExpressions: [{ key: 'tier', operator: 'In' as const, values: ['x', 'y'] }] },
      { tier: 'y' },
      true,
    ],
    [{ matchExpressions: [{ key: 'tier', operator: 'NotIn' as const, values: ['x'] }] }, {}, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'Exists' as const }] }, {}, false],
    [{ matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' as const }] }, { tier: '' }, false],
  ])('%j on %j: %s', (selector, labels, expected) => {
    expect(selectorMatches(selector, labels)).toBe(expected);
  });
});

describe('readingFor', () => {
  const target = { kind: 'Deployment', namespace: 'er', name: 'svc', pods: ['svc-1', 'svc-2'] };
  const result = (samples: Array<[Record<string, string>, number]>) => ({
    ok: true as const,
    samples: samples.map(([labels, value]) => ({ labels, value })),
  });
  it.each([
    [
      'by the kind label',
      result([[{ namespace: 'er', deployment: 'svc' }, 0.7]]),
      { kind: 'value', value: 0.7 },
    ],
    [
      'another namespace is not this target',
      result([[{ namespace: 'icu', deployment: 'svc' }, 0.7]]),
      { kind: 'empty' },
    ],
    [
      'per pod, the worst for >',
      result([
        [{ pod: 'svc-1' }, 0.2],
        [{ pod: 'svc-2' }, 0.9],
        [{ pod: 'other' }, 5],
      ]),
      { kind: 'value', value: 0.9 },
    ],
    ['nothing', result([]), { kind: 'empty' }],
    ['no answer', { ok: false as const, reason: 'Timeout' }, { kind: 'error', reason: 'Timeout' }],
  ])('%s', (_n, r, expected) => {
    expect(readingFor(r, target, '>')).toEqual(expected);
  });
  it('takes the lowest for <', () => {
    expect(
      readingFor(
        result([
          [{ pod: 'svc-1' }, 0.2],
          [{ pod: 'svc-2' }, 0.9],
        ]),
        target,
        '<',
      ),
    ).toEqual({ kind: 'value', value: 0.2 });
  });
});

describe('an InferencePool’s revisions', () => {
  it('are its releases: earlier ReplicaSets of the release it serves now are no other version', () => {
    const objects = [
      replicaSet('a', '1', 'a', 'er-triage-1-0-0'),
      replicaSet('b', '2', 'b', 'er-triage-1-1-0'),
      replicaSet('c', '3', 'c', 'er-triage-1-1-0'),
    ];
    expect(revisionsOf(objects, 'c').map((r) => [r.id, r.label])).toEqual([
      ['a', 'release er-triage-1-0-0'],
      ['c', 'release er-triage-1-1-0'],
    ]);
  });
});
