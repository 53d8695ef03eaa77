import { describe, expect, it } from 'vitest';
import type { Finding, PodHealth, TargetSnapshot, Verdict } from './detect.ts';
import { type Diagnosis, diagnose, lastHealthyRevision, type RevisionInfo } from './diagnose.ts';

const t0 = 1_800_000_000_000;
const hour = 3_600_000;

const pod = (
  name: string,
  over: Partial<PodHealth> = {},
  c: Partial<PodHealth['containers'][number]> = {},
): PodHealth => ({
  name,
  uid: name,
  nodeName: 'mini-1',
  createdAtMs: t0 - hour,
  ready: true,
  readyChangedAtMs: t0 - hour,
  revision: 'new',
  containers: [{ name: 'app', restarts: 0, ...c }],
  ...over,
});

const revisions: RevisionInfo[] = [
  { id: 'old', number: 1, createdAtMs: t0 - 48 * hour, label: 'revision 1' },
  { id: 'new', number: 2, createdAtMs: t0 - 5 * 60_000, label: 'revision 2' },
];

const failing = (detector: Finding['detector'], pods: string[]): Verdict => ({
  state: 'Failing',
  findings: [{ detector, pods, detail: {}, summary: '' }],
  pending: [],
});

function run(
  pods: PodHealth[],
  verdict: Verdict,
  over: { revisions?: RevisionInfo[]; current?: string } = {},
): Diagnosis {
  const target: TargetSnapshot = { kind: 'Deployment', namespace: 'er', name: 'svc', uid: 'u', pods };
  return diagnose({
    target,
    verdict,
    revisions: over.revisions ?? revisions,
    currentRevision: over.current ?? 'new',
    failingSinceMs: t0,
    healthyRevisionSeconds: 600,
  });
}

const longServing = revisions.map((r) => (r.id === 'new' ? { ...r, createdAtMs: t0 - 24 * hour } : r));

describe('diagnose', () => {
  it.each<[string, PodHealth[], Verdict, Partial<Diagnosis>, string[], { revisions?: RevisionInfo[] }?]>([
    [
      'an image that cannot be pulled, on a long-serving revision: nothing helps',
      [pod('a', { ready: false }, { waitingReason: 'ImagePullBackOff' })],
      failing('readinessFailing', ['a']),
      { cause: 'ImagePullError' },
      ['RestartPod', 'RestartRollout', 'Rollback', 'ScaleOut', 'CordonNode'],
      { revisions: longServing },
    ],
    [
      'an image that cannot be pulled after a new revision: only a rollback',
      [pod('a', { ready: false }, { waitingReason: 'ErrImagePull' })],
      failing('readinessFailing', ['a']),
      { cause: 'ImagePullError', rollbackTo: revisions[0] },
      ['RestartPod', 'RestartRollout', 'ScaleOut', 'CordonNode'],
    ],
    [
      'a missing Secret',
      [pod('a', { ready: false }, { waitingReason: 'CreateContainerConfigError' })],
      failing('readinessFailing', ['a']),
      { cause: 'BadConfiguration' },
      ['RestartPod', 'RestartRollout', 'ScaleOut', 'CordonNode'],
    ],
    [
      'OOM kills name the memory limit',
      [pod('a', {}, { restarts: 2, lastTerminatedReason: 'OOMKilled', memoryLimit: '512Mi' })],
      failing('oomKilled', ['a']),
      { cause: 'OOMKilled', message: expect.stringContaining('app at 512Mi') },
      ['CordonNode'],
    ],
    [
      'a crash loop that began with a new revision: roll back',
      [pod('a', {}, { restarts: 5 }), pod('b', {}, { restarts: 4 })],
      failing('crashLoop', ['a', 'b']),
      { cause: 'NewRevision', rollbackTo: revisions[0] },
      ['RestartPod', 'RestartRollout', 'ScaleOut', 'CordonNode'],
    ],
    [
      'a crash loop on a revision long healthy: restart, never roll back',
      [pod('a', {}, { restarts: 5 }), pod('b', { nodeName: 'mini-2' }, { restarts: 4 })],
      failing('crashLoop', ['a', 'b']),
      { cause: 'CrashLoop' },
      ['Rollback', 'ScaleOut', 'CordonNode'],
      { revisions: longServing },
    ],
    [
      'failures on one node while the same pods elsewhere are healthy: cordon',
      [
        pod('a', {}, { restarts: 5 }),
        pod('a2', {}, { restarts: 4 }),
        pod('b', { nodeName: 'mini-2' }),
        pod('c', { nodeName: 'mini-3' }),
      ],
      failing('crashLoop', ['a', 'a2']),
      { cause: 'NodeLocal', node: 'mini-1' },
      ['RestartRollout', 'Rollback', 'ScaleOut'],
      { revisions: longServing },
    ],
    [
      'one crashing pod is no proof against its node, however many are healthy elsewhere',
      [pod('a', {}, { restarts: 5 }), pod('b', { nodeName: 'mini-2' }), pod('c', { nodeName: 'mini-3' })],
      failing('crashLoop', ['a']),
      { cause: 'CrashLoop' },
      ['Rollback', 'ScaleOut', 'CordonNode'],
      { revisions: longServing },
    ],
    [
      'one of two pods failing is no proof against its node',
      [pod('a', {}, { restarts: 5 }), pod('b', { nodeName: 'mini-2' })],
      failing('crashLoop', ['a']),
      { cause: 'CrashLoop' },
      ['Rollback', 'ScaleOut', 'CordonNode'],
      { revisions: longServing },
    ],
    [
      'readiness failing on every pod at once: nothing to restart',
      [pod('a', { ready: false }), pod('b', { ready: false, nodeName: 'mini-2' })],
      failing('readinessFailing', ['a', 'b']),
      { cause: 'EverywhereAtOnce' },
      ['RestartPod', 'RestartRollout', 'Rollback', 'ScaleOut', 'CordonNode'],
      { revisions: longServing },
    ],
    [
      'readiness failing on some pods on several nodes',
      [
        pod('a', { ready: false }),
        pod('b', { ready: false, nodeName: 'mini-2' }),
        pod('c', { nodeName: 'mini-3' }),
      ],
      failing('readinessFailing', ['a', 'b']),
      { cause: 'NotReady' },
      ['Rollback', 'CordonNode'],
      { revisions: longServing },
    ],
  ])('%s', (_name, pods, verdict, expected, ruledOut, over) => {
    const d = run(pods, verdict, over);
    expect(d).toMatchObject(expected);
    expect(Object.keys(d.ruledOut).sort()).toEqual([...ruledOut].sort());
  });

  it('never copies a kubelet message, and keeps only reason words', () => {
    const d = run(
      [pod('a', { ready: false }, { waitingReason: 'ErrImagePull' })],
      failing('readinessFailing', ['a']),
    );
    expect(d.message).toMatch(/^1 of 1 pod\(s\) cannot pull their image \(ErrImagePull\)/);
  });
});

describe('lastHealthyRevision', () => {
  const r = (id: string, number: number, hoursAgo: number, failed = false): RevisionInfo => ({
    id,
    number,
    createdAtMs: t0 - hoursAgo * hour,
    label: id,
    ...(failed ? { failedWhileServing: true } : {}),
  });
  it.each([
    [
      'the newest earlier one that served long enough',
      [r('a', 1, 50), r('b', 2, 30), r('c', 3, 1)],
      'c',
      'b',
    ],
    ['not one that served too briefly', [r('a', 1, 50), r('b', 2, 1.05), r('c', 3, 1)], 'c', 'a'],
    ['not one that failed while it served', [r('a', 1, 50), r('b', 2, 30, true), r('c', 3, 1)], 'c', 'a'],
    ['none before the first', [r('a', 1, 50)], 'a', undefined],
  ])('%s', (_n, revs, current, expected) => {
    expect(
      lastHealthyRevision(
        revs,
        revs.find((x) => x.id === current),
        600,
      )?.id,
    ).toBe(expected);
  });
});
