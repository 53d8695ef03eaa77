import { describe, expect, it } from 'vitest';
import { healingPolicySpec } from '../../crds/healingpolicy.ts';
import {
  type DetectorMemory,
  detect,
  emptyMemory,
  type MetricReading,
  type PodHealth,
  type TargetSnapshot,
} from './detect.ts';

const t0 = 1_800_000_000_000;
const interval = 5_000;

const pod = (
  name: string,
  over: Partial<PodHealth> = {},
  containers: PodHealth['containers'] = [],
): PodHealth => ({
  name,
  uid: `uid-${name}`,
  nodeName: 'mini-1',
  createdAtMs: t0 - 3_600_000,
  ready: true,
  readyChangedAtMs: t0 - 3_600_000,
  containers: containers.length ? containers : [{ name: 'app', restarts: 0 }],
  ...over,
});

const target = (pods: PodHealth[]): TargetSnapshot => ({
  kind: 'Deployment',
  namespace: 'er',
  name: 'svc',
  uid: 'svc-uid',
  pods,
});

const detectors = (d: Record<string, unknown>) =>
  healingPolicySpec.parse({
    selector: {},
    detectors: d,
    escalation: [{ action: 'RestartPod' }],
    approval: { requiredFor: [] },
    audit: { databaseSecretRef: { name: 'db', key: 'url' } },
  }).detectors;

/** Runs checks at the given offsets (ms after t0) over snapshots, returning the last verdict. */
function run(
  d: ReturnType<typeof detectors>,
  checks: Array<{ atMs: number; pods: PodHealth[]; metric?: MetricReading }>,
) {
  let memory: DetectorMemory = emptyMemory();
  let verdict: ReturnType<typeof detect>['verdict'] | undefined;
  for (const c of checks) {
    ({ verdict, memory } = detect({
      target: target(c.pods),
      detectors: d,
      memory,
      ...(c.metric ? { metric: c.metric } : {}),
      nowMs: t0 + c.atMs,
      checkIntervalMs: interval,
    }));
  }
  return verdict;
}

describe('crash loop', () => {
  const d = detectors({ crashLoop: { restarts: 3, windowSeconds: 600 } });
  it.each([
    [
      'a new pod that restarted 3 times',
      [pod('a', { createdAtMs: t0 - 60_000 }, [{ name: 'app', restarts: 3 }])],
      'Failing',
    ],
    [
      'a new pod that restarted twice',
      [pod('a', { createdAtMs: t0 - 60_000 }, [{ name: 'app', restarts: 2 }])],
      'Healthy',
    ],
    // An old pod's restarts cannot be placed in the window until Aurora has seen them happen.
    ['an old pod with 9 restarts from long ago', [pod('a', {}, [{ name: 'app', restarts: 9 }])], 'Healthy'],
  ])('%s: %s', (_n, pods, state) => {
    expect(run(d, [{ atMs: 0, pods }])?.state).toBe(state);
  });

  it('counts restarts of an old pod seen within the window, and forgets them after it', () => {
    const at = (restarts: number) => [pod('a', {}, [{ name: 'app', restarts }])];
    const checks = [
      { atMs: 0, pods: at(9) },
      { atMs: 60_000, pods: at(11) },
      { atMs: 120_000, pods: at(12) },
    ];
    expect(run(d, checks)?.findings[0]).toMatchObject({ detector: 'crashLoop', detail: { restarts: 3 } });
    expect(run(d, [...checks, { atMs: 700_000, pods: at(12) }])?.state).toBe('Healthy');
  });

  it('fires only after its tolerance of consecutive checks, each a check interval apart', () => {
    const tolerant = detectors({ crashLoop: { restarts: 3, windowSeconds: 600, tolerance: 3 } });
    const looping = [pod('a', { createdAtMs: t0 - 60_000 }, [{ name: 'app', restarts: 4 }])];
    expect(
      run(tolerant, [
        { atMs: 0, pods: looping },
        { atMs: 5_000, pods: looping },
      ]),
    ).toMatchObject({
      state: 'Healthy',
      pending: [{ detector: 'crashLoop', checks: 2, tolerance: 3 }],
    });
    // Checks woken by events in between do not count twice.
    const burst = [0, 1_000, 2_000, 3_000, 5_000].map((atMs) => ({ atMs, pods: looping }));
    expect(run(tolerant, burst)?.state).toBe('Healthy');
    expect(run(tolerant, [...burst, { atMs: 10_000, pods: looping }])?.state).toBe('Failing');
    // A healthy check in between starts the count again.
    const healthy = [pod('a', { createdAtMs: t0 - 60_000 })];
    expect(
      run(tolerant, [
        { atMs: 0, pods: looping },
        { atMs: 5_000, pods: looping },
        { atMs: 10_000, pods: healthy },
        { atMs: 15_000, pods: looping },
      ])?.state,
    ).toBe('Healthy');
  });
});

describe('readiness failing', () => {
  const d = detectors({ readinessFailing: { forSeconds: 120 } });
  it.each([
    ['unready for 119 s', 119_000, 'Healthy'],
    ['unready for 120 s', 120_000, 'Failing'],
  ])('%s: %s', (_n, forMs, state) => {
    const pods = [pod('a', { ready: false, readyChangedAtMs: t0 - forMs }), pod('b')];
    const v = run(d, [{ atMs: 0, pods }]);
    expect(v?.state).toBe(state);
    if (state === 'Failing')
      expect(v?.findings[0]).toMatchObject({ pods: ['a'], detail: { pods: 1, of: 2 } });
  });
});

describe('OOM kills', () => {
  const d = detectors({ oomKilled: { count: 2, windowSeconds: 900 } });
  const oom = (restarts: number, atMs: number) =>
    pod('a', {}, [
      {
        name: 'app',
        restarts,
        lastTerminatedReason: 'OOMKilled',
        lastTerminatedAtMs: t0 + atMs,
        memoryLimit: '512Mi',
      },
    ]);
  it('counts distinct kills within the window, remembered across checks', () => {
    expect(run(d, [{ atMs: 0, pods: [oom(1, -10_000)] }])?.state).toBe('Healthy');
    expect(
      run(d, [
        { atMs: 0, pods: [oom(1, -10_000)] },
        { atMs: 30_000, pods: [oom(2, 20_000)] },
      ])?.state,
    ).toBe('Failing');
    // The same kill seen twice is one kill.
    expect(
      run(d, [
        { atMs: 0, pods: [oom(1, -10_000)] },
        { atMs: 30_000, pods: [oom(1, -10_000)] },
      ])?.state,
    ).toBe('Healthy');
    // A pod replaced since took its kills with it.
    const replaced = pod('b', {}, [{ name: 'app', restarts: 0 }]);
    expect(
      run(d, [
        { atMs: 0, pods: [oom(1, -10_000)] },
        { atMs: 30_000, pods: [oom(2, 20_000)] },
        { atMs: 40_000, pods: [replaced] },
      ])?.state,
    ).toBe('Healthy');
    // A kill older than the window does not count.
    expect(
      run(d, [
        { atMs: 0, pods: [oom(1, -1_000_000)] },
        { atMs: 5_000, pods: [oom(2, 0)] },
      ])?.state,
    ).toBe('Healthy');
  });
});

describe('restarts per window', () => {
  const d = detectors({ restartsPerWindow: { restarts: 5, windowSeconds: 3600 } });
  it('adds restarts across the target’s pods', () => {
    const young = { createdAtMs: t0 - 600_000 };
    const v = run(d, [
      {
        atMs: 0,
        pods: [
          pod('a', young, [{ name: 'app', restarts: 3 }]),
          pod('b', young, [{ name: 'app', restarts: 2 }]),
        ],
      },
    ]);
    expect(v?.findings[0]).toMatchObject({ detector: 'restartsPerWindow', detail: { restarts: 5 } });
  });
});

describe('PromQL threshold', () => {
  const d = detectors({
    prometheus: { url: 'http://prom:9090', query: 'q', operator: '>', threshold: 0.5, forSeconds: 60 },
  });
  const pods = [pod('a')];
  it.each<[string, MetricReading[], string]>([
    [
      'over the threshold for 60 s',
      [
        { kind: 'value', value: 0.9 },
        { kind: 'value', value: 0.8 },
      ],
      'Failing',
    ],
    [
      'back under it in between',
      [
        { kind: 'value', value: 0.9 },
        { kind: 'value', value: 0.1 },
      ],
      'Healthy',
    ],
    ['an empty result', [{ kind: 'empty' }, { kind: 'empty' }], 'Unknown'],
    [
      'no answer',
      [
        { kind: 'value', value: 0.9 },
        { kind: 'error', reason: 'Timeout' },
      ],
      'Unknown',
    ],
  ])('%s: %s', (_n, readings, state) => {
    const v = run(
      d,
      readings.map((metric, i) => ({ atMs: i * 60_000, pods, metric })),
    );
    expect(v?.state).toBe(state);
  });

  it('an empty result is Healthy when onEmpty says so, and Unknown holds even when another detector fires', () => {
    const healthyOnEmpty = detectors({
      prometheus: { url: 'http://p:9090', query: 'q', operator: '>', threshold: 1, onEmpty: 'Healthy' },
    });
    expect(run(healthyOnEmpty, [{ atMs: 0, pods, metric: { kind: 'empty' } }])?.state).toBe('Healthy');
    const both = detectors({
      crashLoop: { restarts: 1 },
      prometheus: { url: 'http://p:9090', query: 'q', operator: '>', threshold: 1 },
    });
    const looping = [pod('a', { createdAtMs: t0 - 1000 }, [{ name: 'app', restarts: 4 }])];
    expect(run(both, [{ atMs: 0, pods: looping, metric: { kind: 'empty' } }])?.state).toBe('Unknown');
  });
});
