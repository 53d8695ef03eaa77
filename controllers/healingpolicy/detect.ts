// Detectors: pure functions of what the API server says about a target's pods (and, for the PromQL
// detector, what Prometheus answered), the time, and what earlier checks remembered. A detector fires
// only after its tolerance of consecutive checks; an empty or failed metric is Unknown, never failing.
import type { HealingPolicySpec } from '../../crds/healingpolicy.ts';

export interface ContainerHealth {
  name: string;
  restarts: number;
  /** Why the container is not running (CrashLoopBackOff, ImagePullBackOff, ...), as the kubelet says. */
  waitingReason?: string;
  /** Why it last ended (OOMKilled, Error, ...), and when. */
  lastTerminatedReason?: string;
  lastTerminatedAtMs?: number;
  /** Its memory limit as written (512Mi), named when it runs out of memory. */
  memoryLimit?: string;
}

export interface PodHealth {
  name: string;
  uid: string;
  nodeName?: string;
  createdAtMs: number;
  ready: boolean;
  /** When the Ready condition last changed (or the pod was created, before it had one). */
  readyChangedAtMs: number;
  /** The revision it belongs to (pod-template-hash or controller-revision-hash). */
  revision?: string;
  containers: ContainerHealth[];
}

export interface TargetSnapshot {
  kind: 'Deployment' | 'StatefulSet' | 'InferencePool';
  namespace: string;
  name: string;
  uid: string;
  /** Pods that count: live, not being deleted, and on a node that is Ready. */
  pods: PodHealth[];
}

export type DetectorName =
  | 'crashLoop'
  | 'readinessFailing'
  | 'oomKilled'
  | 'restartsPerWindow'
  | 'prometheus';

/** What Prometheus said about one target: its value, nothing, or no answer. */
export type MetricReading =
  | { kind: 'value'; value: number }
  | { kind: 'empty' }
  | { kind: 'error'; reason: string };

/** What earlier checks of one target remembered. */
export interface DetectorMemory {
  /** Restart counts seen per pod uid and container, oldest first. */
  restartSamples: Record<string, Array<{ atMs: number; restarts: number }>>;
  /** OOM kills seen: `<pod uid>/<container>/<finished at>` to when it happened. */
  oomKills: Record<string, number>;
  /** Consecutive failing checks per detector. */
  consecutive: Partial<Record<DetectorName, number>>;
  /** Since when the PromQL comparison has held without a break. */
  metricFailingSinceMs?: number;
  /** When a check last counted toward tolerance. */
  lastCountedMs?: number;
}

export const emptyMemory = (): DetectorMemory => ({ restartSamples: {}, oomKills: {}, consecutive: {} });

export interface Finding {
  detector: DetectorName;
  /** Pods it concerns (all the target's, for the PromQL detector). */
  pods: string[];
  /** Counts that made it fire, for the status and the audit trail. */
  detail: Record<string, number>;
  /** A sentence Aurora composed (never a message copied from a pod). */
  summary: string;
}

export interface Verdict {
  state: 'Healthy' | 'Failing' | 'Unknown';
  /** Detectors that fired (tolerance met). */
  findings: Finding[];
  /** Detectors failing but within their tolerance, with the checks seen so far. */
  pending: Array<{ detector: DetectorName; checks: number; tolerance: number }>;
  /** Why the state is Unknown. */
  unknownReason?: string;
}

type Detectors = HealingPolicySpec['detectors'];

const key = (pod: PodHealth, c: ContainerHealth) => `${pod.uid}/${c.name}`;

/**
 * Restarts of one container within the window. Before Aurora saw the pod, a restart counts only when it
 * can be placed in the window: all of them when the pod was created within it.
 */
function restartsWithin(
  pod: PodHealth,
  c: ContainerHealth,
  samples: Array<{ atMs: number; restarts: number }>,
  fromMs: number,
): number {
  if (pod.createdAtMs >= fromMs) return c.restarts;
  // The count last seen at or before the window began is the baseline; else the first seen after.
  let baseline: number | undefined;
  for (const s of samples) if (s.atMs <= fromMs) baseline = s.restarts;
  baseline ??= samples[0]?.restarts ?? c.restarts;
  // A restart counter that went back (a new container runtime) restarts the count.
  return c.restarts >= baseline ? c.restarts - baseline : c.restarts;
}

const compare = (value: number, op: '>' | '>=' | '<' | '<=', threshold: number) =>
  op === '>'
    ? value > threshold
    : op === '>='
      ? value >= threshold
      : op === '<'
        ? value < threshold
        : value <= threshold;

/**
 * Evaluates every configured detector for one target at `nowMs`. `checkIntervalMs` is how often checks
 * are due: a check sooner than that after the last counted one (an event woke the controller) updates
 * what is seen but does not count toward tolerance twice.
 */
export function detect(options: {
  target: TargetSnapshot;
  detectors: Detectors;
  memory: DetectorMemory;
  metric?: MetricReading;
  nowMs: number;
  checkIntervalMs: number;
}): { verdict: Verdict; memory: DetectorMemory } {
  const { target, detectors, nowMs } = options;
  const longestWindowMs =
    1000 *
    Math.max(
      detectors.crashLoop?.windowSeconds ?? 0,
      detectors.oomKilled?.windowSeconds ?? 0,
      detectors.restartsPerWindow?.windowSeconds ?? 0,
    );

  // Remember what is seen now: restart counts (trimmed to the longest window) and OOM kills.
  const restartSamples: DetectorMemory['restartSamples'] = {};
  const oomKills: DetectorMemory['oomKills'] = {};
  for (const [k, at] of Object.entries(options.memory.oomKills))
    if (at >= nowMs - longestWindowMs) oomKills[k] = at;
  for (const pod of target.pods) {
    for (const c of pod.containers) {
      const previous = options.memory.restartSamples[key(pod, c)] ?? [];
      // Keep one sample from before the window (the baseline) and those within it.
      const within = previous.filter((s) => s.atMs >= nowMs - longestWindowMs);
      const before = previous.filter((s) => s.atMs < nowMs - longestWindowMs).at(-1);
      const last = previous.at(-1);
      restartSamples[key(pod, c)] = [
        ...(before ? [before] : []),
        ...within,
        ...(last?.restarts === c.restarts ? [] : [{ atMs: nowMs, restarts: c.restarts }]),
      ];
      if (c.lastTerminatedReason === 'OOMKilled' && c.lastTerminatedAtMs !== undefined) {
        if (c.lastTerminatedAtMs >= nowMs - longestWindowMs)
          oomKills[`${key(pod, c)}/${c.lastTerminatedAtMs}`] = c.lastTerminatedAtMs;
      }
    }
  }

  const raw: Array<Finding> = [];
  let unknownReason: string | undefined;
  const { crashLoop, readinessFailing, oomKilled, restartsPerWindow, prometheus } = detectors;
  const samplesOf = (pod: PodHealth, c: ContainerHealth) => options.memory.restartSamples[key(pod, c)] ?? [];

  if (crashLoop) {
    const from = nowMs - crashLoop.windowSeconds * 1000;
    const looping = target.pods.flatMap((pod) => {
      const most = Math.max(0, ...pod.containers.map((c) => restartsWithin(pod, c, samplesOf(pod, c), from)));
      return most >= crashLoop.restarts ? [{ pod: pod.name, restarts: most }] : [];
    });
    if (looping.length > 0)
      raw.push({
        detector: 'crashLoop',
        pods: looping.map((l) => l.pod),
        detail: { pods: looping.length, restarts: Math.max(...looping.map((l) => l.restarts)) },
        summary: `${looping.length} pod(s) restarted ${crashLoop.restarts} or more times within ${crashLoop.windowSeconds}s`,
      });
  }
  if (readinessFailing) {
    const unready = target.pods.filter(
      (p) => !p.ready && nowMs - p.readyChangedAtMs >= readinessFailing.forSeconds * 1000,
    );
    if (unready.length > 0)
      raw.push({
        detector: 'readinessFailing',
        pods: unready.map((p) => p.name),
        detail: { pods: unready.length, of: target.pods.length },
        summary: `${unready.length} of ${target.pods.length} pod(s) not ready for ${readinessFailing.forSeconds}s or more`,
      });
  }
  if (oomKilled) {
    const from = nowMs - oomKilled.windowSeconds * 1000;
    // Only kills of the pods there now: a pod replaced since took its memory problem with it.
    const current = new Set(target.pods.map((p) => p.uid));
    const kills = Object.entries(oomKills).filter(
      ([k, at]) => at >= from && current.has(k.split('/')[0] ?? ''),
    );
    const uids = new Set(kills.map(([k]) => k.split('/')[0]));
    if (kills.length >= oomKilled.count)
      raw.push({
        detector: 'oomKilled',
        pods: target.pods.filter((p) => uids.has(p.uid)).map((p) => p.name),
        detail: { kills: kills.length },
        summary: `${kills.length} container(s) killed for running out of memory within ${oomKilled.windowSeconds}s`,
      });
  }
  if (restartsPerWindow) {
    const from = nowMs - restartsPerWindow.windowSeconds * 1000;
    const perPod = target.pods.map((pod) => ({
      pod: pod.name,
      restarts: pod.containers.reduce((n, c) => n + restartsWithin(pod, c, samplesOf(pod, c), from), 0),
    }));
    const total = perPod.reduce((n, p) => n + p.restarts, 0);
    if (total >= restartsPerWindow.restarts)
      raw.push({
        detector: 'restartsPerWindow',
        pods: perPod.filter((p) => p.restarts > 0).map((p) => p.pod),
        detail: { restarts: total },
        summary: `${total} restart(s) within ${restartsPerWindow.windowSeconds}s`,
      });
  }
  let metricFailingSinceMs = options.memory.metricFailingSinceMs;
  if (prometheus) {
    const reading = options.metric ?? { kind: 'error', reason: 'NotQueried' };
    if (reading.kind === 'value' && compare(reading.value, prometheus.operator, prometheus.threshold)) {
      metricFailingSinceMs ??= nowMs;
      if (nowMs - metricFailingSinceMs >= prometheus.forSeconds * 1000)
        raw.push({
          detector: 'prometheus',
          pods: target.pods.map((p) => p.name),
          detail: { value: reading.value, threshold: prometheus.threshold },
          summary: `the metric was ${prometheus.operator} ${prometheus.threshold} for ${prometheus.forSeconds}s or more`,
        });
    } else {
      metricFailingSinceMs = undefined;
      if (reading.kind === 'error') unknownReason = `Prometheus did not answer (${reading.reason})`;
      else if (reading.kind === 'empty' && prometheus.onEmpty === 'Unknown')
        unknownReason = 'the PromQL query returned no value for this target';
    }
  }

  // Tolerance: a detector fires after failing that many consecutive checks.
  const counts =
    nowMs - (options.memory.lastCountedMs ?? Number.NEGATIVE_INFINITY) >= options.checkIntervalMs * 0.9;
  const consecutive: DetectorMemory['consecutive'] = {};
  const findings: Finding[] = [];
  const pending: Verdict['pending'] = [];
  for (const f of raw) {
    const tolerance = detectors[f.detector]?.tolerance ?? 1;
    const checks = Math.max(1, (options.memory.consecutive[f.detector] ?? 0) + (counts ? 1 : 0));
    consecutive[f.detector] = checks;
    if (checks >= tolerance) findings.push(f);
    else pending.push({ detector: f.detector, checks, tolerance });
  }
  const memory: DetectorMemory = {
    restartSamples,
    oomKills,
    consecutive,
    ...(metricFailingSinceMs !== undefined ? { metricFailingSinceMs } : {}),
  };
  const lastCountedMs = counts ? nowMs : options.memory.lastCountedMs;
  if (lastCountedMs !== undefined) memory.lastCountedMs = lastCountedMs;
  // Unknown holds every action on the target, even when another detector fires.
  const state = unknownReason ? 'Unknown' : findings.length > 0 ? 'Failing' : 'Healthy';
  return {
    verdict: { state, findings, pending, ...(unknownReason ? { unknownReason } : {}) },
    memory,
  };
}
