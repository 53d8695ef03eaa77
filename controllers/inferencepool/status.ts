import type { InferencePoolSpec, InferencePoolStatus } from '../../crds/inferencepool.ts';
import type { InferencePool } from '../../crds/kinds.ts';
import { nodeLabels, releaseAnnotations, unifiedMemoryResource } from '../../crds/labels.ts';
import type { ConditionEventPolicy } from '../../operator/condition-events.ts';
import { type ConditionInput, setConditions } from '../../operator/conditions.ts';
import { allowedNodes } from '../../placement/nodes.ts';
import { unifiedMemoryUsage } from '../../placement/unified-memory.ts';
import type { DeploymentView } from '../../views/deployment.ts';
import type { NodeView } from '../../views/node.ts';
import { type PodView, podIsLive } from '../../views/pod.ts';
import { poolSelector } from './desired.ts';
import type { ModelRelease, ModelState } from './release.ts';

/** How long a started pod may stay unready before the pool counts it as degraded (startup probes included). */
const notReadyGraceMs = 10 * 60_000;

/**
 * When the pool's status would change with no event at all: the first started, unready pod crossing
 * the not-ready grace (Degraded). The controller looks again then, not at the next resync.
 */
export function nextTimedChangeMs(pods: readonly PodView[], now: Date): number | undefined {
  const due = pods
    .filter((p) => podIsLive(p) && !p.pod.terminating && !p.pod.ready && p.pod.startedAt !== undefined)
    .map((p) => Date.parse(p.pod.startedAt as string) + notReadyGraceMs - now.getTime())
    .filter((ms) => ms >= 0);
  // One second past the crossing, so the look sees it crossed.
  return due.length > 0 ? Math.min(...due) + 1000 : undefined;
}

/** Where pools run, as the metrics report it: live pods bound to each node and the unified memory they request. */
export function placementByNode(
  pods: readonly PodView[],
): Array<{ namespace: string; pool: string; node: string; pods: number; unifiedMemoryMiB: number }> {
  const rows = new Map<
    string,
    { namespace: string; pool: string; node: string; pods: number; unifiedMemoryMiB: number }
  >();
  for (const p of pods) {
    // A terminating pod still holds its node's memory until it is gone, as the scheduler counts it.
    if (!p.pod.pool || !p.pod.nodeName || !podIsLive(p)) continue;
    const namespace = p.metadata.namespace ?? '';
    const key = `${namespace}/${p.pod.pool}/${p.pod.nodeName}`;
    const row = rows.get(key) ?? {
      namespace,
      pool: p.pod.pool,
      node: p.pod.nodeName,
      pods: 0,
      unifiedMemoryMiB: 0,
    };
    row.pods++;
    row.unifiedMemoryMiB += p.pod.unifiedMemoryMiB;
    rows.set(key, row);
  }
  return [...rows.values()];
}

function placementDescription(spec: InferencePoolSpec): string {
  const parts = [spec.placement.appleSilicon === 'Required' ? 'Apple silicon' : 'any node'];
  if (spec.placement.appleSilicon === 'Required' && spec.placement.chips?.length)
    parts.push(`chip ${spec.placement.chips.join(' or ')}`);
  if (spec.placement.appleSilicon === 'Required' && spec.placement.minUnifiedMemoryGiB)
    parts.push(`at least ${spec.placement.minUnifiedMemoryGiB} GiB unified memory`);
  for (const [k, v] of Object.entries(spec.placement.nodeSelector ?? {})) parts.push(`${k}=${v}`);
  return parts.join(', ');
}

/**
 * Why pods cannot be placed, in the pool's own terms: no node matches, the model is larger than any
 * allowed node, or the allowed nodes are full (with the figures), else the scheduler's words.
 */
export function placementCondition(input: {
  spec: InferencePoolSpec;
  podMemoryMiB: number | undefined;
  pods: readonly PodView[];
  allPoolPods: readonly PodView[];
  nodes: readonly NodeView[];
}): ConditionInput {
  const { spec, podMemoryMiB } = input;
  const pods = input.pods.filter((p) => podIsLive(p) && !p.pod.terminating);
  const stuck = pods.filter((p) => p.pod.unschedulable !== undefined);
  const placedNodes = new Set(pods.flatMap((p) => (p.pod.nodeName ? [p.pod.nodeName] : [])));
  const allowed = allowedNodes(spec, input.nodes);
  if (stuck.length === 0) {
    return {
      type: 'Placed',
      status: 'True',
      reason: 'AllPlaced',
      message: `${pods.length} pod(s) placed on ${placedNodes.size} machine(s)`,
    };
  }
  const scheduler = stuck[0]?.pod.unschedulable ?? '';
  const of = `${stuck.length} of ${pods.length} pod(s) cannot be placed`;
  if (allowed.length === 0) {
    return {
      type: 'Placed',
      status: 'False',
      reason: 'NoMatchingNodes',
      message: `${of}: no ready node matches the placement (${placementDescription(spec)})`,
    };
  }
  const usesUnified = spec.placement.appleSilicon === 'Required' && podMemoryMiB !== undefined;
  if (usesUnified) {
    const usage = unifiedMemoryUsage(allowed, input.allPoolPods);
    const byAllocatable = [...usage.entries()].sort((a, b) => b[1].allocatableMiB - a[1].allocatableMiB);
    const largest = byAllocatable[0];
    if (largest && podMemoryMiB > largest[1].allocatableMiB) {
      return {
        type: 'Placed',
        status: 'False',
        reason: 'ModelTooLarge',
        message: `${of}: each needs ${podMemoryMiB} MiB of unified memory; the largest allowed node (${largest[0]}) offers ${largest[1].allocatableMiB} MiB`,
      };
    }
    if (scheduler.includes(`Insufficient ${unifiedMemoryResource}`)) {
      const mostFree = [...usage.entries()]
        .map(([name, u]) => ({ name, freeMiB: Math.max(0, u.allocatableMiB - u.usedMiB) }))
        .sort((a, b) => b.freeMiB - a.freeMiB)[0];
      const shortMiB = podMemoryMiB - (mostFree?.freeMiB ?? 0);
      return {
        type: 'Placed',
        status: 'False',
        reason: 'InsufficientUnifiedMemory',
        message: `${of}: each needs ${podMemoryMiB} MiB of unified memory; the most free on an allowed node is ${mostFree?.freeMiB ?? 0} MiB (${mostFree?.name})${shortMiB > 0 ? `, ${shortMiB} MiB short` : ''}`,
      };
    }
  }
  return {
    type: 'Placed',
    status: 'False',
    reason: 'Unschedulable',
    message: `${of}: ${scheduler}`,
  };
}

function modelCondition(
  model: ModelState,
  served: ModelRelease | undefined,
  rollout: { complete: boolean; servingVersion?: string | undefined; releaseProblem?: string | undefined },
): ConditionInput {
  const still = served ? `; still serving version ${rollout.servingVersion ?? served.version}` : '';
  switch (model.kind) {
    case 'missing':
      return {
        type: 'ModelCurrent',
        status: 'False',
        reason: 'ModelNotFound',
        message: `TriageModel ${model.name} does not exist${still}`,
      };
    case 'pending':
      return {
        type: 'ModelCurrent',
        status: 'False',
        reason: 'AwaitingValidation',
        message: `TriageModel ${model.name} version ${model.version} has not passed acceptance yet${still}`,
      };
    case 'rejected':
      return {
        type: 'ModelCurrent',
        status: 'False',
        reason: served ? 'VersionRejected' : 'ModelNotValidated',
        message: `TriageModel ${model.name} version ${model.version} was not validated (${model.reason}): ${model.message}${still}`,
      };
    case 'validated': {
      const { version } = model.release;
      if (rollout.releaseProblem) {
        return {
          type: 'ModelCurrent',
          status: 'False',
          reason: 'ReleaseSourceChanged',
          message: `TriageModel ${model.name} version ${version} passed acceptance, but ${rollout.releaseProblem}; it is served once validated again${still}`,
        };
      }
      if (!served || served.digest !== model.release.digest || served.version !== version) {
        return {
          type: 'ModelCurrent',
          status: 'False',
          reason: 'AwaitingRelease',
          message: `version ${version} passed acceptance; its release is being prepared${still}`,
        };
      }
      if (!rollout.complete) {
        const serving =
          rollout.servingVersion && rollout.servingVersion !== version
            ? `; still serving version ${rollout.servingVersion}`
            : '';
        return {
          type: 'ModelCurrent',
          status: 'False',
          reason: 'RollingOut',
          message: `version ${version} passed acceptance; the pods are moving to it${serving}`,
        };
      }
      return {
        type: 'ModelCurrent',
        status: 'True',
        reason: 'Current',
        message: `serving TriageModel ${model.name} version ${served.version} (sha256 ${served.digest.slice(0, 12)})`,
      };
    }
  }
}

export interface PoolObservations {
  pool: InferencePool & { spec: InferencePoolSpec };
  model: ModelState;
  /** The release the Deployment's template serves (the target of any rollout). */
  served?: ModelRelease;
  desiredReplicas: number;
  podMemoryMiB?: number;
  deployment?: DeploymentView;
  /** This pool's pods. */
  pods: readonly PodView[];
  /** Every pool's pods, for the memory already taken on each node. */
  allPoolPods: readonly PodView[];
  nodes: readonly NodeView[];
  /** Releases by ConfigMap name, to name what older pods serve. */
  releases: ReadonlyMap<string, ModelRelease>;
  /** Why a version that passed has no release yet (its source changed since). */
  releaseProblem?: string;
  now: Date;
}

/** The pool's status: what it serves, where, and conditions that say why when it does not. */
export function inferencePoolStatus(o: PoolObservations): InferencePoolStatus {
  const { pool, served } = o;
  const generation = pool.metadata.generation;
  const { deployment } = o;
  const pods = o.pods.filter((p) => podIsLive(p) && !p.pod.terminating);
  const readyPods = pods.filter((p) => p.pod.ready);
  const placed = placementCondition({
    spec: pool.spec,
    podMemoryMiB: o.podMemoryMiB,
    pods,
    allPoolPods: o.allPoolPods,
    nodes: o.nodes,
  });
  const targetRelease = deployment?.spec?.template?.metadata?.annotations?.[releaseAnnotations.configMap];
  const updated = pods.filter((p) => targetRelease !== undefined && p.pod.release === targetRelease);
  const dstatus = deployment?.status;
  const deploymentCurrent =
    deployment !== undefined && (dstatus?.observedGeneration ?? 0) >= (deployment.metadata.generation ?? 0);
  const stalled = dstatus?.conditions?.find(
    (c) => c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded',
  );
  // The Deployment's own figures count too: a new template that keeps the release (another image,
  // other resources) leaves the pods' release annotation as it was.
  const deploymentRolling =
    dstatus !== undefined &&
    ((dstatus.updatedReplicas ?? 0) < o.desiredReplicas ||
      (dstatus.replicas ?? 0) > (dstatus.updatedReplicas ?? 0) ||
      (dstatus.availableReplicas ?? 0) < (dstatus.updatedReplicas ?? 0));
  const rolling =
    served !== undefined &&
    (!deploymentCurrent ||
      deploymentRolling ||
      updated.length < o.desiredReplicas ||
      pods.length > updated.length);
  // Served is what most ready pods serve: during a rollout that is still the older version.
  const servedBy = new Map<string, number>();
  for (const p of readyPods)
    if (p.pod.release) servedBy.set(p.pod.release, (servedBy.get(p.pod.release) ?? 0) + 1);
  const majority = [...servedBy.entries()].sort(
    (a, b) => b[1] - a[1] || (a[0] === targetRelease ? -1 : 1),
  )[0];
  const servedRelease =
    (majority && o.releases.get(majority[0])) ?? (readyPods.length === 0 ? undefined : served);
  const modelCurrent = modelCondition(o.model, served, {
    complete: served !== undefined && !rolling && !stalled,
    servingVersion: servedRelease?.version,
    releaseProblem: o.releaseProblem,
  });
  // Pods still on an older release serve it until the rollout replaces them.
  const olderVersions = [
    ...new Set(
      pods
        .filter((p) => p.pod.release !== targetRelease && p.pod.release)
        .map((p) => o.releases.get(p.pod.release ?? '')?.version ?? 'an older version'),
    ),
  ];
  let progressing: ConditionInput;
  if (!served) {
    progressing = {
      type: 'Progressing',
      status: 'False',
      reason: modelCurrent.reason,
      message: 'nothing to serve yet',
    };
  } else if (stalled) {
    progressing = {
      type: 'Progressing',
      status: 'False',
      reason: 'RolloutStalled',
      message: `the rollout to version ${served.version} made no progress: ${stalled.message ?? ''}`,
    };
  } else if (rolling && olderVersions.length === 0 && deploymentCurrent) {
    progressing = {
      type: 'Progressing',
      status: 'True',
      reason: 'Scaling',
      message: `scaling from ${pods.length} to ${o.desiredReplicas} pod(s) of version ${served.version}, ${readyPods.length} ready`,
    };
  } else if (rolling) {
    const from = olderVersions.length ? `from version ${olderVersions.join(', ')} ` : '';
    progressing = {
      type: 'Progressing',
      status: 'True',
      reason: 'RollingOut',
      message: `moving ${from}to version ${served.version}: ${updated.length} of ${o.desiredReplicas} pod(s) updated, ${readyPods.length} ready`,
    };
  } else {
    progressing = {
      type: 'Progressing',
      status: 'False',
      reason: 'Complete',
      message: `${o.desiredReplicas} pod(s) serve version ${served.version}`,
    };
  }

  let ready: ConditionInput;
  if (!served) {
    ready = { type: 'Ready', status: 'False', reason: modelCurrent.reason, message: modelCurrent.message };
  } else if (o.desiredReplicas === 0) {
    ready = { type: 'Ready', status: 'True', reason: 'ScaledToZero', message: 'scaled to zero replicas' };
  } else if (readyPods.length >= o.desiredReplicas) {
    // Ready counts the pods that serve, whichever version: a rollout in progress does not take it away.
    ready = {
      type: 'Ready',
      status: 'True',
      reason: 'Serving',
      message: `${readyPods.length} pod(s) ready${rolling ? `; ${progressing.message}` : `, serving version ${served.version}`}`,
    };
  } else if (placed.status === 'False') {
    ready = { type: 'Ready', status: 'False', reason: placed.reason, message: placed.message };
  } else {
    ready = {
      type: 'Ready',
      status: 'False',
      reason: rolling ? progressing.reason : 'PodsNotReady',
      message: `${readyPods.length} of ${o.desiredReplicas} pod(s) ready`,
    };
  }

  // What the kubelet says is wrong with the pods that do not serve, counted by reason.
  const problems = new Map<string, number>();
  for (const p of pods)
    if (!p.pod.ready && p.pod.problem) problems.set(p.pod.problem, (problems.get(p.pod.problem) ?? 0) + 1);
  // Pods still starting are not a fault: only those unready past the startup window count.
  const overdue = pods.filter(
    (p) =>
      !p.pod.ready &&
      p.pod.startedAt !== undefined &&
      o.now.getTime() - Date.parse(p.pod.startedAt) > notReadyGraceMs,
  ).length;
  if (overdue > 0 && problems.size === 0)
    problems.set(`not ready for over ${notReadyGraceMs / 60_000} minutes`, overdue);
  const problemText = [...problems.entries()].map(([why, n]) => `${n} pod(s) ${why}`).join(', ');
  const firstProblem = [...problems.keys()][0]?.replace(/ \(OOMKilled\)$/, '');
  // A pod with no node to go to is a fault, in a rollout or not.
  const short =
    served !== undefined &&
    o.desiredReplicas > 0 &&
    readyPods.length < o.desiredReplicas &&
    placed.status === 'False';
  const degradedBy: ConditionInput | undefined =
    served && modelCurrent.reason === 'VersionRejected'
      ? { type: 'Degraded', status: 'True', reason: 'VersionRejected', message: modelCurrent.message }
      : stalled
        ? { type: 'Degraded', status: 'True', reason: 'RolloutStalled', message: progressing.message }
        : short || (served && problems.size > 0)
          ? {
              type: 'Degraded',
              status: 'True',
              reason:
                (overdue > 0 && firstProblem?.startsWith('not ready') ? 'PodsNotReady' : firstProblem) ??
                placed.reason,
              message: [
                `${readyPods.length} of ${o.desiredReplicas} pod(s) ready`,
                problemText,
                placed.status === 'False' ? placed.message : '',
              ]
                .filter(Boolean)
                .join('; '),
            }
          : undefined;
  const degraded = degradedBy ?? {
    type: 'Degraded',
    status: 'False',
    reason: 'AsExpected',
    message: 'nothing is degraded',
  };

  const byNode = new Map<string, number>();
  for (const p of pods) if (p.pod.nodeName) byNode.set(p.pod.nodeName, (byNode.get(p.pod.nodeName) ?? 0) + 1);
  const nodeChip = new Map(o.nodes.map((n) => [n.metadata.name, n.metadata.labels?.[nodeLabels.chip]]));

  const previous = pool.status ?? {};
  return {
    observedGeneration: generation,
    conditions: setConditions(
      // A Canary condition goes with spec.canary.
      previous.conditions?.filter((c) => c.type !== 'Canary' || pool.spec.canary),
      [
        ready,
        modelCurrent,
        placed,
        progressing,
        degraded,
        ...(pool.spec.canary
          ? [
              {
                type: 'Canary',
                status: 'False' as const,
                reason: 'NotSupported',
                message: `spec.canary is not acted on by this Aurora version: a version that passes acceptance replaces the old by a rolling update; canary ${pool.spec.canary.modelRef.name} is not served`,
              },
            ]
          : []),
      ],
      generation,
      o.now,
    ),
    replicas: pods.length,
    desiredReplicas: o.desiredReplicas,
    readyReplicas: readyPods.length,
    selector: poolSelector(pool.metadata.name),
    placement: [...byNode.entries()]
      .sort((a, b) => a[0].localeCompare(b[0]))
      .map(([node, replicas]) => {
        const chip = nodeChip.get(node);
        return { node, ...(chip ? { chip } : {}), replicas };
      }),
    ...(servedRelease
      ? {
          servedModel: {
            name: servedRelease.model,
            version: servedRelease.version,
            digest: `sha256:${servedRelease.digest}`,
          },
        }
      : {}),
  };
}

/** Events tell what happened to a pool: faults, recoveries and rollouts, not every first look. */
export const inferencePoolEvents: ConditionEventPolicy = [
  {
    type: 'ModelCurrent',
    announce: 'changes',
    warningReasons: ['VersionRejected', 'ModelNotValidated', 'ModelNotFound', 'ReleaseSourceChanged'],
  },
  { type: 'Placed', healthyStatus: 'True', announce: 'faultsAndRecoveries' },
  {
    type: 'Progressing',
    announce: 'changes',
    // The rollout's own moves; before anything is served, Progressing only repeats ModelCurrent.
    onlyReasons: ['RollingOut', 'Scaling', 'Complete', 'RolloutStalled'],
    warningReasons: ['RolloutStalled'],
  },
  { type: 'Degraded', healthyStatus: 'False', announce: 'faults' },
];
