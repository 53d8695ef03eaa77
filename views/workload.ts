import type { KubeObject } from '../operator/kube/types.ts';
import type { Manager } from '../operator/manager.ts';

/** A Kubernetes label selector, as the API and the CRDs' schemas write it. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }>;
}

/**
 * A Deployment or StatefulSet as Aurora caches it: labels, annotations, owner, replicas, selector and
 * rollout revision; never the pod template (the bulk of the object, read live when an action needs it).
 */
export interface WorkloadView extends KubeObject {
  spec?: { replicas?: number; paused?: boolean; selector?: LabelSelector };
  status?: { replicas?: number; updateRevision?: string };
}

export function workloadView(obj: KubeObject): WorkloadView {
  const raw = obj as WorkloadView;
  const { managedFields: _m, ...metadata } = raw.metadata as KubeObject['metadata'] & {
    managedFields?: unknown;
  };
  return {
    apiVersion: raw.apiVersion,
    kind: raw.kind,
    metadata,
    spec: {
      ...(raw.spec?.replicas !== undefined ? { replicas: raw.spec.replicas } : {}),
      ...(raw.spec?.paused ? { paused: true } : {}),
      ...(raw.spec?.selector ? { selector: raw.spec.selector } : {}),
    },
    status: {
      ...(raw.status?.replicas !== undefined ? { replicas: raw.status.replicas } : {}),
      ...(raw.status?.updateRevision ? { updateRevision: raw.status.updateRevision } : {}),
    },
  };
}

/**
 * The cluster's Deployments, one cache shared by the controllers that read them (HealingPolicy watches
 * them as targets; CareQueue reads a target Deployment's replicas from it).
 */
export const deploymentInformer = (manager: Manager) =>
  manager.informer<WorkloadView>('apps/v1', 'Deployment', { transform: workloadView });

/** The cluster's StatefulSets, cached the same way (HealingPolicy's targets). */
export const statefulSetInformer = (manager: Manager) =>
  manager.informer<WorkloadView>('apps/v1', 'StatefulSet', { transform: workloadView });

/**
 * A selector in the string form the API takes in `labelSelector=` (and a scale subresource reports):
 * `a=b,c in (d,e),!f`. Values are sorted so one selector always gives one string.
 */
export function labelSelectorString(selector: LabelSelector | undefined): string {
  const parts = Object.entries(selector?.matchLabels ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`);
  for (const e of selector?.matchExpressions ?? []) {
    const values = [...(e.values ?? [])].sort().join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else parts.push(`!${e.key}`);
  }
  return parts.join(',');
}
