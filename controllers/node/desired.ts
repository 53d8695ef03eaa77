import { nodeLabels, unifiedMemoryResource } from '../../crds/node-labels.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { quantityValue } from '../../operator/quantity.ts';
import { advertisedUnifiedMemoryMiB } from '../inferencepool/memory.ts';

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

/**
 * The unified memory the node should advertise, in MiB: undefined when the node is not a profiled
 * Apple-silicon machine (no profile, or a profile that does not parse), so nothing is advertised.
 */
export function desiredUnifiedMemoryMiB(labels: Record<string, string> | undefined): number | undefined {
  if (labels?.[nodeLabels.appleSilicon] !== 'true') return undefined;
  const text = labels[nodeLabels.unifiedMemoryGiB];
  if (!text || !/^[1-9][0-9]{0,4}$/.test(text)) return undefined;
  return advertisedUnifiedMemoryMiB(Number(text));
}

/** Unified memory the node offers pods now, in MiB (0 when it advertises none). */
export function allocatableUnifiedMemoryMiB(node: NodeView): number {
  const value = quantityValue(node.status?.allocatable?.[unifiedMemoryResource] ?? '0');
  return Number.isFinite(value) ? value : 0;
}

/**
 * The merge patch that brings a node's status to the desired advertisement, or undefined when it is
 * already there. null removes the resource from a node that is no longer a profiled Apple machine.
 */
export function capacityPatch(
  node: NodeView,
  desiredMiB: number | undefined,
):
  | { status: { capacity: Record<string, string | null>; allocatable: Record<string, string | null> } }
  | undefined {
  const want = desiredMiB === undefined ? null : String(desiredMiB);
  // The server writes quantities canonically (20000 reads back as 20k): compare values, not strings.
  const current = (field: 'capacity' | 'allocatable') => {
    const text = node.status?.[field]?.[unifiedMemoryResource];
    return text === undefined ? null : quantityValue(text);
  };
  const wantValue = desiredMiB ?? null;
  if (current('capacity') === wantValue && current('allocatable') === wantValue) return undefined;
  return {
    status: { capacity: { [unifiedMemoryResource]: want }, allocatable: { [unifiedMemoryResource]: want } },
  };
}
