// The remediation actions, and how to tell from the cluster whether one already happened (after a
// leader change, an intent with no outcome is settled by looking, never by acting blindly again).
// Each action's parameters are fixed in its intent row first, so carrying it out is idempotent.
import { rollbackAnnotations } from '../../crds/labels.ts';
import { ApiError, isNotFound, type KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Action } from './diagnose.ts';

export const healingFieldManager = 'aurora-healing';
const restartedAtAnnotation = 'kubectl.kubernetes.io/restartedAt';

export type TargetKind = 'Deployment' | 'StatefulSet' | 'InferencePool';

/** What an intent fixes before the action: everything needed to do it, or to see it was done. */
export interface ActionParams {
  action: Action;
  kind: TargetKind;
  namespace: string;
  name: string;
  /** The workload whose pods and template are touched: the pool's Deployment for an InferencePool. */
  workloadKind: 'Deployment' | 'StatefulSet';
  workloadName: string;
  /** RestartPod: the pods to evict, by name and uid. */
  pods?: Array<{ name: string; uid: string }>;
  /** RestartRollout: the restartedAt value set on the pod template. */
  restartedAt?: string;
  /** Rollback: the revision to go back to (ReplicaSet name or ControllerRevision name), and its id. */
  toRevisionObject?: string;
  toRevision?: string;
  /** Rollback of an InferencePool: the release to serve again, and the one it replaces. */
  toRelease?: string;
  fromRelease?: string;
  /** ScaleOut: replicas before and after. */
  fromReplicas?: number;
  toReplicas?: number;
  /** CordonNode: the node. */
  node?: string;
  respectDisruptionBudgets?: boolean;
}

export interface ActionOutcome {
  outcome: 'Done' | 'Refused' | 'Failed';
  reason: string;
  message: string;
  details?: Record<string, string | number | boolean | string[]>;
}

/** A target by reference: an InferencePool in Aurora's group, a Deployment or StatefulSet in apps/v1. */
export const targetRef = (t: { kind: string; name: string; namespace: string }) => ({
  apiVersion: t.kind === 'InferencePool' ? 'aurora.health/v1alpha1' : 'apps/v1',
  kind: t.kind,
  metadata: { name: t.name, namespace: t.namespace },
});

const workloadRef = (p: ActionParams) => ({
  apiVersion: 'apps/v1',
  kind: p.workloadKind,
  metadata: { name: p.workloadName, namespace: p.namespace },
});

const apiReason = (err: unknown) =>
  err instanceof ApiError ? `${err.status} ${err.reason}` : ((err as Error).name ?? 'Error');

/** Carries out an action whose intent is recorded. */
export async function performAction(client: KubeClient, p: ActionParams): Promise<ActionOutcome> {
  try {
    switch (p.action) {
      case 'RestartPod':
        return await restartPods(client, p);
      case 'RestartRollout': {
        await client.patch(
          workloadRef(p),
          { spec: { template: { metadata: { annotations: { [restartedAtAnnotation]: p.restartedAt } } } } },
          { type: 'merge', fieldManager: healingFieldManager },
        );
        return {
          outcome: 'Done',
          reason: 'RolloutRestarted',
          message: `${p.workloadKind} ${p.workloadName} rolled out again`,
        };
      }
      case 'Rollback':
        return await rollback(client, p);
      case 'ScaleOut': {
        await client.patch(
          targetRef(p),
          { spec: { replicas: p.toReplicas } },
          { type: 'merge', subresource: 'scale', fieldManager: healingFieldManager },
        );
        return {
          outcome: 'Done',
          reason: 'ScaledOut',
          message: `${p.kind} ${p.name} scaled from ${p.fromReplicas} to ${p.toReplicas} replicas`,
        };
      }
      case 'CordonNode': {
        await client.patch(
          { apiVersion: 'v1', kind: 'Node', metadata: { name: p.node ?? '' } },
          { spec: { unschedulable: true } },
          { type: 'merge', fieldManager: healingFieldManager },
        );
        return {
          outcome: 'Done',
          reason: 'NodeCordoned',
          message: `node ${p.node} cordoned: no new pods are placed on it`,
        };
      }
    }
  } catch (err) {
    return { outcome: 'Failed', reason: 'ApiError', message: `${p.action} failed: ${apiReason(err)}` };
  }
}

async function restartPods(client: KubeClient, p: ActionParams): Promise<ActionOutcome> {
  const evicted: string[] = [];
  const refused: string[] = [];
  const failed: string[] = [];
  let lastError: unknown;
  for (const pod of p.pods ?? []) {
    try {
      const info = await client.resource('v1', 'Pod');
      if (p.respectDisruptionBudgets === false) {
        // Deleted only if it is still the same pod (a pod recreated under the name is another pod).
        await client.request('DELETE', client.path(info, p.namespace, pod.name), {
          body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid: pod.uid } },
        });
      } else {
        await client.request('POST', client.path(info, p.namespace, pod.name, 'eviction'), {
          retryThrottled: false,
          body: {
            apiVersion: 'policy/v1',
            kind: 'Eviction',
            metadata: { name: pod.name, namespace: p.namespace },
            deleteOptions: { preconditions: { uid: pod.uid } },
          },
        });
      }
      evicted.push(pod.name);
    } catch (err) {
      // 429: a PodDisruptionBudget allows no disruption now. 404/409: the pod is already gone or replaced.
      if (isNotFound(err) || (err instanceof ApiError && err.status === 409)) evicted.push(pod.name);
      else if (err instanceof ApiError && err.status === 429) refused.push(pod.name);
      else {
        // Any other error fails this pod only: those already evicted stay evicted, and are reported.
        failed.push(pod.name);
        lastError = err;
      }
    }
  }
  const details = { evicted, refused, failed };
  if (evicted.length === 0 && failed.length > 0) throw lastError;
  if (evicted.length === 0)
    return {
      outcome: 'Refused',
      reason: 'DisruptionBudget',
      message: `no pod evicted: a PodDisruptionBudget allows no disruption (${refused.length} refused)`,
      details,
    };
  return {
    outcome: 'Done',
    reason: 'PodsEvicted',
    message: `${evicted.length} pod(s) evicted${refused.length ? `, ${refused.length} refused by a PodDisruptionBudget` : ''}${failed.length ? `, ${failed.length} failed (${apiReason(lastError)})` : ''}`,
    details,
  };
}

interface Template {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: unknown;
}

async function rollback(client: KubeClient, p: ActionParams): Promise<ActionOutcome> {
  const to = p.toRevisionObject ?? '';
  if (p.kind === 'InferencePool') {
    // The pool's controller serves the earlier release while the failing one is still the newest.
    await client.patch(
      targetRef(p),
      {
        metadata: {
          annotations: { [rollbackAnnotations.to]: p.toRelease, [rollbackAnnotations.from]: p.fromRelease },
        },
      },
      { type: 'merge', fieldManager: healingFieldManager },
    );
    return {
      outcome: 'Done',
      reason: 'RolledBack',
      message: `InferencePool ${p.name} serves release ${p.toRelease} again instead of ${p.fromRelease}`,
    };
  }
  if (p.workloadKind === 'Deployment') {
    const rs = await client.get<KubeObject & { spec?: { template?: Template } }>({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name: to, namespace: p.namespace },
    });
    const template = rs?.spec?.template;
    if (!template)
      return { outcome: 'Failed', reason: 'RevisionGone', message: `ReplicaSet ${to} no longer exists` };
    // As kubectl rollout undo: the revision's template without the hash label the ReplicaSet adds.
    const { 'pod-template-hash': _hash, ...labels } = template.metadata?.labels ?? {};
    await client.patch(
      workloadRef(p),
      [
        {
          op: 'replace',
          path: '/spec/template',
          value: { ...template, metadata: { ...template.metadata, labels } },
        },
      ],
      { type: 'json', fieldManager: healingFieldManager },
    );
  } else {
    const revision = await client.get<KubeObject & { data?: unknown }>({
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: { name: to, namespace: p.namespace },
    });
    if (!revision?.data)
      return {
        outcome: 'Failed',
        reason: 'RevisionGone',
        message: `ControllerRevision ${to} no longer exists`,
      };
    // As kubectl rollout undo: the revision's data is a patch that puts its template back.
    await client.patch(workloadRef(p), revision.data, {
      type: 'strategic',
      fieldManager: healingFieldManager,
    });
  }
  return {
    outcome: 'Done',
    reason: 'RolledBack',
    message: `${p.workloadKind} ${p.workloadName} rolled back to ${to}`,
  };
}

/**
 * Whether the cluster shows the action's effect: how an intent left without an outcome is settled.
 * 'unknown' when the cluster cannot be read (then nothing is decided).
 */
export async function actionTookEffect(client: KubeClient, p: ActionParams): Promise<boolean | 'unknown'> {
  try {
    switch (p.action) {
      case 'RestartPod': {
        for (const pod of p.pods ?? []) {
          const live = await client.get({
            apiVersion: 'v1',
            kind: 'Pod',
            metadata: { name: pod.name, namespace: p.namespace },
          });
          if (live && live.metadata.uid === pod.uid && !live.metadata.deletionTimestamp) return false;
        }
        return true;
      }
      case 'RestartRollout': {
        const w = await client.get<KubeObject & { spec?: { template?: Template } }>(workloadRef(p));
        return w?.spec?.template?.metadata?.annotations?.[restartedAtAnnotation] === p.restartedAt;
      }
      case 'Rollback': {
        if (p.kind === 'InferencePool') {
          const pool = await client.get(targetRef(p));
          return pool?.metadata.annotations?.[rollbackAnnotations.to] === p.toRelease;
        }
        if (p.workloadKind === 'Deployment') {
          const rs = await client.get({
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            metadata: { name: p.toRevisionObject ?? '', namespace: p.namespace },
          });
          const all = await client.list('apps/v1', 'ReplicaSet', { namespace: p.namespace });
          const revision = (o: KubeObject | undefined) =>
            Number(o?.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0);
          const owned = all.items.filter((o) =>
            o.metadata.ownerReferences?.some((r) => r.controller && r.name === p.workloadName),
          );
          return !!rs && revision(rs) >= Math.max(...owned.map(revision));
        }
        const w = await client.get<KubeObject & { status?: { updateRevision?: string } }>(workloadRef(p));
        return w?.status?.updateRevision === p.toRevisionObject;
      }
      case 'ScaleOut': {
        const t = await client.get<KubeObject & { spec?: { replicas?: number } }>(targetRef(p));
        return (t?.spec?.replicas ?? 0) >= (p.toReplicas ?? 0);
      }
      case 'CordonNode': {
        const n = await client.get<KubeObject & { spec?: { unschedulable?: boolean } }>({
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name: p.node ?? '' },
        });
        return n?.spec?.unschedulable === true;
      }
    }
  } catch {
    return 'unknown';
  }
}
