import { poolLabel, releaseAnnotations, unifiedMemoryResource } from '../crds/labels.ts';
import type { KubeObject } from '../operator/kube/types.ts';
import { quantityValue } from '../operator/quantity.ts';
import { identityOf } from './identity.ts';

/** The parts of a pool pod that status and placement read. */
export interface PodView extends KubeObject {
  pod: {
    /** The pool it serves (its aurora.health/pool label); empty for pods of no pool. */
    pool: string;
    nodeName?: string;
    phase: string;
    ready: boolean;
    terminating: boolean;
    /** The scheduler's message while it cannot place the pod. */
    unschedulable?: string;
    release?: string;
    unifiedMemoryMiB: number;
    /** Why the pod cannot serve, as the kubelet says: CrashLoopBackOff, OOMKilled, ImagePullBackOff... */
    problem?: string;
    /** When the kubelet started the pod. */
    startedAt?: string;
    /** The pod template (ReplicaSet) it belongs to: two in one pool mean a rollout is under way. */
    templateHash?: string;
  };
}

const podProblems = new Set([
  'CrashLoopBackOff',
  'ImagePullBackOff',
  'ErrImagePull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'InvalidImageName',
]);

interface ContainerStatus {
  state?: { waiting?: { reason?: string } };
  lastState?: { terminated?: { reason?: string } };
}

/** The kubelet's reason a container is not running, with OOMKilled named when it caused a crash loop. */
function containerProblem(statuses: ContainerStatus[] | undefined): string | undefined {
  for (const c of statuses ?? []) {
    const waiting = c.state?.waiting?.reason;
    if (waiting && podProblems.has(waiting)) {
      const last = c.lastState?.terminated?.reason;
      return last === 'OOMKilled' ? `${waiting} (OOMKilled)` : waiting;
    }
  }
  return undefined;
}

interface RawPod extends KubeObject {
  spec?: { nodeName?: string; containers?: Array<{ resources?: { requests?: Record<string, string> } }> };
  status?: {
    phase?: string;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
    containerStatuses?: ContainerStatus[];
    startTime?: string;
  };
}

/** Keeps what the pool controller needs of a pod: its cache holds every pool's pods. */
export function podView(obj: KubeObject): PodView {
  const raw = obj as RawPod;
  const conditions = raw.status?.conditions ?? [];
  const scheduled = conditions.find((c) => c.type === 'PodScheduled');
  const problem = containerProblem(raw.status?.containerStatuses);
  const unifiedMemoryMiB = (raw.spec?.containers ?? []).reduce(
    (sum, c) => sum + quantityValue(c.resources?.requests?.[unifiedMemoryResource] ?? '0'),
    0,
  );
  return {
    ...identityOf(raw),
    pod: {
      pool: raw.metadata.labels?.[poolLabel] ?? '',
      ...(raw.spec?.nodeName ? { nodeName: raw.spec.nodeName } : {}),
      phase: raw.status?.phase ?? 'Pending',
      ready: conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
      terminating: Boolean(raw.metadata.deletionTimestamp),
      ...(scheduled?.status === 'False' && scheduled.reason === 'Unschedulable'
        ? { unschedulable: scheduled.message ?? 'unschedulable' }
        : {}),
      ...(raw.metadata.annotations?.[releaseAnnotations.configMap]
        ? { release: raw.metadata.annotations[releaseAnnotations.configMap] }
        : {}),
      unifiedMemoryMiB: Number.isFinite(unifiedMemoryMiB) ? unifiedMemoryMiB : 0,
      ...(problem ? { problem } : {}),
      ...(raw.status?.startTime ? { startedAt: raw.status.startTime } : {}),
      ...(raw.metadata.labels?.['pod-template-hash']
        ? { templateHash: raw.metadata.labels['pod-template-hash'] }
        : {}),
    },
  };
}

/** A pod that still holds its node's resources (not finished). */
export const podIsLive = (p: PodView) => p.pod.phase !== 'Succeeded' && p.pod.phase !== 'Failed';
