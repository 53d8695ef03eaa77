// What the healing controller keeps of the cluster, and how it turns it into snapshots: pure functions
// from API objects to the detector's and the diagnosis's inputs. The caches hold only these small views:
// a pod's health, a revision's identity, never a pod's spec or a log.
import { releaseAnnotations } from '../../crds/labels.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { identityOf } from '../../views/identity.ts';
import type { LabelSelector } from '../../views/workload.ts';
import type { ContainerHealth, PodHealth } from './detect.ts';
import type { RevisionInfo } from './diagnose.ts';

/** A pod as the healing cache keeps it. */
export interface HealthPod extends KubeObject {
  health: PodHealth & {
    /** `<kind>/<name>` of the controller that owns it (ReplicaSet or StatefulSet). */
    owner?: string;
    phase: string;
    terminating: boolean;
  };
}

interface RawContainerStatus {
  name: string;
  restartCount?: number;
  state?: { waiting?: { reason?: string }; terminated?: { reason?: string; finishedAt?: string } };
  lastState?: { terminated?: { reason?: string; finishedAt?: string } };
}

interface RawPod extends KubeObject {
  spec?: {
    nodeName?: string;
    containers?: Array<{ name: string; resources?: { limits?: Record<string, string> } }>;
  };
  status?: {
    phase?: string;
    conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }>;
    containerStatuses?: RawContainerStatus[];
  };
}

const ms = (time: string | undefined) => (time ? Date.parse(time) : Number.NaN);

/** The informer's transform: a pod's health and nothing else (no env, no command, no message). */
export function healthPod(obj: KubeObject): HealthPod {
  const raw = obj as RawPod;
  const created = ms(raw.metadata.creationTimestamp);
  const ready = raw.status?.conditions?.find((c) => c.type === 'Ready');
  const limits = new Map((raw.spec?.containers ?? []).map((c) => [c.name, c.resources?.limits?.memory]));
  const controller = raw.metadata.ownerReferences?.find((r) => r.controller);
  const labels = raw.metadata.labels ?? {};
  const revision = labels['pod-template-hash'] ?? labels['controller-revision-hash'];
  const containers: ContainerHealth[] = (raw.status?.containerStatuses ?? []).map((c) => {
    // A container terminated now (not restarted yet) tells the same as one that was.
    const terminated = c.lastState?.terminated ?? c.state?.terminated;
    const finished = ms(terminated?.finishedAt);
    const limit = limits.get(c.name);
    return {
      name: c.name,
      restarts: c.restartCount ?? 0,
      ...(c.state?.waiting?.reason ? { waitingReason: c.state.waiting.reason } : {}),
      ...(terminated?.reason ? { lastTerminatedReason: terminated.reason } : {}),
      ...(Number.isFinite(finished) ? { lastTerminatedAtMs: finished } : {}),
      ...(limit ? { memoryLimit: limit } : {}),
    };
  });
  return {
    ...identityOf({ ...raw, apiVersion: 'v1', kind: 'Pod' }),
    health: {
      name: raw.metadata.name,
      uid: raw.metadata.uid ?? raw.metadata.name,
      ...(raw.spec?.nodeName ? { nodeName: raw.spec.nodeName } : {}),
      createdAtMs: Number.isFinite(created) ? created : 0,
      ready: ready?.status === 'True',
      readyChangedAtMs: Number.isFinite(ms(ready?.lastTransitionTime))
        ? ms(ready?.lastTransitionTime)
        : Number.isFinite(created)
          ? created
          : 0,
      ...(revision ? { revision } : {}),
      containers,
      ...(controller ? { owner: `${controller.kind}/${controller.name}` } : {}),
      phase: raw.status?.phase ?? 'Pending',
      terminating: Boolean(raw.metadata.deletionTimestamp),
    },
  };
}

/** A revision as the healing cache keeps it: no template, no data. */
export interface RevisionObject extends KubeObject {
  revision: {
    owner?: string;
    id: string;
    number: number;
    createdAtMs: number;
    /** For an InferencePool's ReplicaSets: the release (model version) its pods serve. */
    release?: string;
  };
}

/** The transform for ReplicaSets and ControllerRevisions. */
export function revisionObject(obj: KubeObject): RevisionObject {
  const raw = obj as KubeObject & {
    revision?: number;
    spec?: { template?: { metadata?: { annotations?: Record<string, string> } } };
  };
  const release = raw.spec?.template?.metadata?.annotations?.[releaseAnnotations.configMap];
  const controller = raw.metadata.ownerReferences?.find((r) => r.controller);
  const isReplicaSet = raw.kind === 'ReplicaSet';
  const number = isReplicaSet
    ? Number(raw.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0)
    : Number(raw.revision ?? 0);
  const created = ms(raw.metadata.creationTimestamp);
  return {
    ...identityOf(raw),
    revision: {
      ...(controller ? { owner: `${controller.kind}/${controller.name}` } : {}),
      // Pods carry the ReplicaSet's pod-template-hash, or the ControllerRevision's name.
      id: isReplicaSet
        ? (raw.metadata.labels?.['pod-template-hash'] ?? raw.metadata.name)
        : raw.metadata.name,
      number: Number.isFinite(number) ? number : 0,
      createdAtMs: Number.isFinite(created) ? created : 0,
      ...(release ? { release } : {}),
    },
  };
}

/** A target's revisions, oldest first, labelled for people. */
export function revisionsOf(objects: readonly RevisionObject[], current?: string): RevisionInfo[] {
  const currentRelease = objects.find((o) => o.revision.id === current)?.revision.release;
  return (
    objects
      // An InferencePool's earlier ReplicaSets of the release it serves now are no other version.
      .filter((o) => !currentRelease || o.revision.id === current || o.revision.release !== currentRelease)
      .map((o) => ({
        id: o.revision.id,
        number: o.revision.number,
        createdAtMs: o.revision.createdAtMs,
        label: o.revision.release
          ? `release ${o.revision.release}`
          : `revision ${o.revision.number} (${o.metadata.name})`,
      }))
      .sort((a, b) => a.number - b.number)
  );
}

/** Pods that count toward a target's health: live, not being deleted, on a node that is Ready. */
export function podsThatCount(pods: readonly HealthPod[], nodeReady: (node: string) => boolean): PodHealth[] {
  return pods
    .filter((p) => !p.health.terminating && p.health.phase !== 'Succeeded' && p.health.phase !== 'Failed')
    .filter((p) => !p.health.nodeName || nodeReady(p.health.nodeName))
    .map(({ health: { owner: _o, phase: _p, terminating: _t, ...pod } }) => pod);
}

/** Whether labels satisfy a selector (an empty or absent selector matches everything). */
export function selectorMatches(
  selector: LabelSelector | undefined,
  labels: Record<string, string> = {},
): boolean {
  for (const [k, v] of Object.entries(selector?.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector?.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key] ?? '';
    const values = e.values ?? [];
    const ok =
      e.operator === 'In'
        ? has && values.includes(value)
        : e.operator === 'NotIn'
          ? !has || !values.includes(value)
          : e.operator === 'Exists'
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}
