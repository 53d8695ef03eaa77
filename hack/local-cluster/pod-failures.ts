// Failures for simulated pods. Nodes here run no containers, so a pod fails the way a kubelet would say
// it does: through its status (a crash loop's restarts and back-off, an OOM kill, failing readiness, an
// image that cannot be pulled, a missing Secret). Used by the HealingPolicy tests, its bench and the
// sandbox. kwok leaves a Running pod's status alone, so what is written here stays until changed.
import type { KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';

export type PodFailure =
  | { kind: 'CrashLoop'; restarts: number }
  | { kind: 'OOMKilled'; restarts?: number }
  | { kind: 'Unready' }
  | { kind: 'ImagePull' }
  | { kind: 'ConfigError' }
  | { kind: 'Restarted'; restarts: number; ready?: boolean };

interface RawPod extends KubeObject {
  spec?: { containers?: Array<{ name: string; image?: string }> };
  status?: {
    phase?: string;
    conditions?: Array<{ type: string; status: string; lastTransitionTime?: string }>;
    containerStatuses?: Array<{ name: string; restartCount?: number }>;
  };
}

/** Writes a failure into one pod's status, as the kubelet would report it. */
export async function failPod(
  client: KubeClient,
  pod: RawPod,
  failure: PodFailure,
  now = new Date(),
): Promise<void> {
  const at = now.toISOString();
  const earlier = new Date(now.getTime() - 1000).toISOString();
  const ready = failure.kind === 'Restarted' ? (failure.ready ?? true) : false;
  const conditions = (pod.status?.conditions ?? []).map((c) =>
    c.type === 'Ready' || c.type === 'ContainersReady'
      ? {
          ...c,
          status: ready ? 'True' : 'False',
          lastTransitionTime: c.status === (ready ? 'True' : 'False') ? c.lastTransitionTime : at,
        }
      : c,
  );
  if (!conditions.some((c) => c.type === 'Ready'))
    conditions.push({ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: at });
  const containerStatuses = (pod.spec?.containers ?? []).map((c, i) => {
    const before = pod.status?.containerStatuses?.find((s) => s.name === c.name)?.restartCount ?? 0;
    const base = { name: c.name, image: c.image ?? '', imageID: '', started: ready, ready };
    if (i > 0) return { ...base, restartCount: before, state: { running: { startedAt: earlier } } };
    switch (failure.kind) {
      case 'CrashLoop':
        return {
          ...base,
          restartCount: failure.restarts,
          state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off restarting failed container' } },
          lastState: { terminated: { reason: 'Error', exitCode: 1, startedAt: earlier, finishedAt: at } },
        };
      case 'OOMKilled':
        return {
          ...base,
          restartCount: failure.restarts ?? before + 1,
          state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off restarting failed container' } },
          lastState: {
            terminated: { reason: 'OOMKilled', exitCode: 137, startedAt: earlier, finishedAt: at },
          },
        };
      case 'Unready':
        return { ...base, started: true, restartCount: before, state: { running: { startedAt: earlier } } };
      case 'ImagePull':
        return {
          ...base,
          restartCount: before,
          state: { waiting: { reason: 'ErrImagePull', message: 'pull access denied' } },
        };
      case 'ConfigError':
        return {
          ...base,
          restartCount: before,
          state: { waiting: { reason: 'CreateContainerConfigError', message: 'secret "missing" not found' } },
        };
      default: // Restarted
        return {
          ...base,
          started: true,
          restartCount: failure.restarts,
          state: { running: { startedAt: at } },
          lastState: {
            terminated: { reason: 'Error', exitCode: 1, startedAt: earlier, finishedAt: earlier },
          },
        };
    }
  });
  await client.patch(
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace },
    },
    { status: { phase: 'Running', conditions, containerStatuses } },
    { type: 'merge', subresource: 'status' },
  );
}

/** The live pods matching a label selector, not being deleted. */
export async function livePods(
  client: KubeClient,
  namespace: string,
  labelSelector: string,
): Promise<RawPod[]> {
  const list = await client.list<RawPod>('v1', 'Pod', { namespace, labelSelector });
  return list.items.filter((p) => !p.metadata.deletionTimestamp);
}

/**
 * Keeps every pod matching the selector failing, new ones included (a bug that survives restarts), until
 * stopped. Returns how many pods it failed.
 */
export function keepFailing(
  client: KubeClient,
  namespace: string,
  labelSelector: string,
  failure: PodFailure,
  options: { everyMs?: number; onlyNode?: string } = {},
): { stop(): Promise<void>; failed(): number } {
  const done = new Set<string>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        for (const pod of await livePods(client, namespace, labelSelector)) {
          const uid = pod.metadata.uid ?? '';
          if (done.has(uid)) continue;
          if (
            options.onlyNode &&
            (pod.spec as { nodeName?: string } | undefined)?.nodeName !== options.onlyNode
          )
            continue;
          // Only once kwok has made it Running, or kwok would overwrite the failure.
          if (pod.status?.phase !== 'Running') continue;
          await failPod(client, pod, failure);
          done.add(uid);
        }
      } catch {}
      await new Promise((r) => setTimeout(r, options.everyMs ?? 300));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop;
    },
    failed: () => done.size,
  };
}
