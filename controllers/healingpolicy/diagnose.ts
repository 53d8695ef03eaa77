// Diagnosis before action: a pure function from what was found to why, and so to which actions can help.
// The first rule that matches names the cause; every action it rules out carries the reason, which the
// ladder records when it skips that step.
import type { remediationActions } from '../../crds/healingpolicy.ts';
import type { PodHealth, TargetSnapshot, Verdict } from './detect.ts';

export type Action = (typeof remediationActions)[number];

export type Cause =
  | 'ImagePullError'
  | 'BadConfiguration'
  | 'OOMKilled'
  | 'NewRevision'
  | 'NodeLocal'
  | 'EverywhereAtOnce'
  | 'CrashLoop'
  | 'NotReady'
  | 'Restarts'
  | 'MetricThreshold';

/** One revision of the target: a ReplicaSet, a ControllerRevision, or an InferencePool's release. */
export interface RevisionInfo {
  /** What pods carry (pod-template-hash, controller-revision-hash) or the release's name. */
  id: string;
  /** Its order: the Deployment's revision number, the ControllerRevision's revision, the release's. */
  number: number;
  createdAtMs: number;
  /** How people name it: "revision 4", "release news2-risk-1-4-0". */
  label: string;
  /** The audit trail shows a failure found while it served. */
  failedWhileServing?: boolean;
}

export interface Diagnosis {
  cause: Cause;
  /** A sentence Aurora composed: counts, names and reasons, never a message copied from a pod. */
  message: string;
  /** Actions that cannot help, with why. */
  ruledOut: Partial<Record<Action, string>>;
  /** For NodeLocal: the node. */
  node?: string;
  /** The last revision healthy for long enough, when a rollback can go to one. */
  rollbackTo?: RevisionInfo;
  /** The failing revision. */
  revision?: RevisionInfo;
}

const imagePullReasons = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
]);
const configReasons = new Set(['CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);
const allActions: readonly Action[] = ['RestartPod', 'RestartRollout', 'Rollback', 'ScaleOut', 'CordonNode'];

/** Reasons go into status and the trail only as the kubelet's CamelCase words, nothing longer. */
export const safeReason = (reason: string | undefined) =>
  reason && /^[A-Za-z][A-Za-z0-9]{0,63}$/.test(reason) ? reason : 'Other';

function ruleOut(actions: readonly Action[], reason: string): Partial<Record<Action, string>> {
  return Object.fromEntries(actions.map((a) => [a, reason]));
}

/**
 * The revision to roll back to: the newest one before the current that served for at least
 * `healthySeconds` (until the next one was made) with no failure found while it served.
 */
export function lastHealthyRevision(
  revisions: readonly RevisionInfo[],
  current: RevisionInfo | undefined,
  healthySeconds: number,
): RevisionInfo | undefined {
  const ordered = [...revisions].sort((a, b) => a.number - b.number);
  for (let i = ordered.length - 1; i >= 0; i--) {
    const r = ordered[i];
    if (!r || r.id === current?.id || (current && r.number > current.number)) continue;
    const next = ordered[i + 1];
    const servedUntil = next ? next.createdAtMs : Number.POSITIVE_INFINITY;
    if (!r.failedWhileServing && servedUntil - r.createdAtMs >= healthySeconds * 1000) return r;
  }
  return undefined;
}

export function diagnose(options: {
  target: TargetSnapshot;
  verdict: Verdict;
  revisions: readonly RevisionInfo[];
  /** The revision the target's newest pods run. */
  currentRevision?: string;
  /** When the target was first found failing in this episode. */
  failingSinceMs: number;
  healthyRevisionSeconds: number;
}): Diagnosis {
  const { target, verdict } = options;
  const failingNames = new Set(verdict.findings.flatMap((f) => f.pods));
  const failing = target.pods.filter((p) => failingNames.has(p.name));
  const healthy = target.pods.filter((p) => !failingNames.has(p.name) && p.ready);
  const detectors = new Set(verdict.findings.map((f) => f.detector));
  const waiting = (reasons: Set<string>) =>
    failing.flatMap((p) =>
      p.containers.map((c) => c.waitingReason).filter((r): r is string => !!r && reasons.has(r)),
    );

  const current = options.revisions.find((r) => r.id === options.currentRevision);
  const rollbackTo = lastHealthyRevision(options.revisions, current, options.healthyRevisionSeconds);
  // The failure began with a new revision: the failing pods run it, and it was not yet healthy for long
  // enough when the failure began, and an earlier revision was.
  const onCurrent = failing.length > 0 && failing.every((p) => !p.revision || p.revision === current?.id);
  const isNew =
    !!current &&
    !!rollbackTo &&
    onCurrent &&
    options.failingSinceMs - current.createdAtMs < options.healthyRevisionSeconds * 1000;
  const rollback = isNew
    ? {}
    : {
        Rollback: rollbackTo
          ? `${current?.label ?? 'the failing revision'} was healthy for ${options.healthyRevisionSeconds}s before it failed: a rollback would not undo a change`
          : `no earlier revision was healthy for ${options.healthyRevisionSeconds}s`,
      };
  const base = {
    ...(rollbackTo ? { rollbackTo } : {}),
    ...(current ? { revision: current } : {}),
  };
  const count = `${failing.length} of ${target.pods.length} pod(s)`;

  const pull = waiting(imagePullReasons);
  if (pull.length > 0) {
    return {
      ...base,
      cause: 'ImagePullError',
      message: `${count} cannot pull their image (${safeReason(pull[0])})${isNew ? `; ${rollbackTo?.label} ran before` : ''}`,
      ruledOut: {
        ...ruleOut(
          ['RestartPod', 'RestartRollout', 'ScaleOut', 'CordonNode'],
          'the image cannot be pulled: a restart pulls the same image again',
        ),
        ...rollback,
      },
    };
  }
  const config = waiting(configReasons);
  if (config.length > 0) {
    return {
      ...base,
      cause: 'BadConfiguration',
      message: `${count} cannot start their containers (${safeReason(config[0])}): a Secret, ConfigMap or setting they need is missing or wrong`,
      ruledOut: {
        ...ruleOut(
          ['RestartPod', 'RestartRollout', 'ScaleOut', 'CordonNode'],
          'the configuration is wrong: a restart finds it wrong again',
        ),
        ...rollback,
      },
    };
  }
  const oom = failing.flatMap((p) =>
    p.containers.filter((c) => c.lastTerminatedReason === 'OOMKilled').map((c) => ({ pod: p, c })),
  );
  if (detectors.has('oomKilled') || (oom.length > 0 && oom.length * 2 >= failing.length)) {
    const limits = [...new Set(oom.map(({ c }) => `${c.name} at ${c.memoryLimit ?? 'no memory limit'}`))];
    return {
      ...base,
      cause: 'OOMKilled',
      message: `containers ran out of memory: the memory limit is the cause (${limits.join(', ') || 'limit unknown'})`,
      ruledOut: {
        CordonNode: 'out of memory is the container’s limit, not the node',
        ...rollback,
      },
    };
  }
  if (isNew) {
    return {
      ...base,
      cause: 'NewRevision',
      message: `${count} of ${current?.label} fail since it was rolled out; ${rollbackTo?.label} was healthy`,
      ruledOut: {
        ...ruleOut(
          ['RestartPod', 'RestartRollout'],
          'the new revision itself fails: restarting it will not help',
        ),
        ScaleOut: 'more replicas of a failing revision do not help',
        CordonNode: 'the failure follows the revision, not a node',
      },
    };
  }
  const nodes = new Set(failing.map((p) => p.nodeName ?? ''));
  const [node] = nodes;
  const sameElsewhere = (p: PodHealth) =>
    p.nodeName !== node && failing.some((f) => f.revision === undefined || f.revision === p.revision);
  // Evidence against a node: two failing pods at least, all on it, and two healthy twins elsewhere (one
  // crashing pod says nothing about its node; one healthy pod beside it says little about the others).
  if (failing.length >= 2 && nodes.size === 1 && node && healthy.filter(sameElsewhere).length >= 2) {
    return {
      ...base,
      cause: 'NodeLocal',
      node,
      message: `${count} fail, all on node ${node}, while the same pods elsewhere are healthy`,
      ruledOut: ruleOut(
        ['RestartRollout', 'Rollback', 'ScaleOut'],
        `the failure is confined to node ${node}`,
      ),
    };
  }
  const onlyReadiness = detectors.size === 1 && detectors.has('readinessFailing');
  if (onlyReadiness && target.pods.length >= 2 && failing.length === target.pods.length) {
    return {
      ...base,
      cause: 'EverywhereAtOnce',
      message: `readiness fails on all ${target.pods.length} pods at once: a dependency or a storm, not something to restart`,
      ruledOut: ruleOut(
        allActions,
        'readiness fails everywhere at once: a restart does not mend a dependency',
      ),
    };
  }
  const notNodeLocal = { CordonNode: 'the failure is not confined to one node' };
  if (detectors.has('crashLoop') || detectors.has('restartsPerWindow')) {
    return {
      ...base,
      cause: detectors.has('crashLoop') ? 'CrashLoop' : 'Restarts',
      message: `${count} restart repeatedly`,
      ruledOut: { ScaleOut: 'more replicas of a crashing pod do not help', ...notNodeLocal, ...rollback },
    };
  }
  if (detectors.has('readinessFailing')) {
    return {
      ...base,
      cause: 'NotReady',
      message: `${count} are not ready`,
      ruledOut: { ...notNodeLocal, ...rollback },
    };
  }
  return {
    ...base,
    cause: 'MetricThreshold',
    message: 'the PromQL threshold is crossed',
    ruledOut: { ...notNodeLocal, ...rollback },
  };
}
