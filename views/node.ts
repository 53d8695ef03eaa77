import { unifiedMemoryResource } from '../crds/labels.ts';
import type { InformerEvent } from '../operator/informer.ts';
import type { KubeObject } from '../operator/kube/types.ts';
import type { Manager } from '../operator/manager.ts';

/** The parts of a Node that placement reads; the rest (images, heartbeats) is dropped from the cache. */
export interface NodeView extends KubeObject {
  spec?: { unschedulable?: boolean; taints?: Array<{ key: string; value?: string; effect: string }> };
  status?: {
    capacity?: Record<string, string>;
    allocatable?: Record<string, string>;
    conditions?: Array<{ type: string; status: string }>;
  };
}

/** Keeps what the node controller and placement need, so a large fleet's heartbeats cost little memory. */
export function nodeView(node: KubeObject): NodeView {
  const full = node as NodeView & { status?: { conditions?: Array<Record<string, unknown>> } };
  return {
    apiVersion: full.apiVersion,
    kind: full.kind,
    metadata: {
      name: full.metadata.name,
      ...(full.metadata.uid ? { uid: full.metadata.uid } : {}),
      ...(full.metadata.resourceVersion ? { resourceVersion: full.metadata.resourceVersion } : {}),
      ...(full.metadata.labels ? { labels: full.metadata.labels } : {}),
    },
    spec: {
      ...(full.spec?.unschedulable ? { unschedulable: true } : {}),
      ...(full.spec?.taints ? { taints: full.spec.taints } : {}),
    },
    status: {
      ...(full.status?.capacity ? { capacity: full.status.capacity } : {}),
      ...(full.status?.allocatable ? { allocatable: full.status.allocatable } : {}),
      conditions: (full.status?.conditions ?? [])
        .filter((c) => c.type === 'Ready')
        .map((c) => ({ type: String(c.type), status: String(c.status) })),
    },
  };
}

/** Whether the node's kubelet says it is Ready. */
export const nodeIsReady = (node: NodeView) =>
  node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** Whether a node event changes anything placement depends on (heartbeats do not). */
export function placementChanged(old: NodeView | undefined, node: NodeView): boolean {
  if (!old) return true;
  const facts = (n: NodeView) =>
    JSON.stringify([
      n.metadata.labels,
      n.spec,
      n.status?.allocatable?.[unifiedMemoryResource],
      n.status?.capacity?.[unifiedMemoryResource],
      n.status?.conditions,
    ]);
  return facts(old) !== facts(node);
}

/** Node events that matter to placement: adds, deletes, and changes other than heartbeats. */
export function nodePlacementEvent(event: InformerEvent<NodeView>): boolean {
  return event.type !== 'updated' || placementChanged(event.old, event.object);
}

/** The one Node informer every Aurora controller shares (same transform, so one cache). */
export function nodeInformer(manager: Manager) {
  return manager.informer<NodeView>('v1', 'Node', { transform: nodeView });
}
