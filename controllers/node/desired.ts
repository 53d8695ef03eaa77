import { nodeLabels, unifiedMemoryResource } from '../../crds/labels.ts';
import { quantityValue } from '../../operator/quantity.ts';
import { advertisedUnifiedMemoryMiB, allocatableUnifiedMemoryMiB } from '../../placement/unified-memory.ts';
import type { NodeView } from '../../views/node.ts';

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

/**
 * A node's unified memory as the metrics report it, in MiB: the profile's total and what its status
 * advertises to pool pods now; undefined for a node that is neither profiled nor advertising.
 */
export function unifiedMemoryFigures(
  node: NodeView,
): { totalMiB: number; advertisedMiB: number } | undefined {
  const profiled = desiredUnifiedMemoryMiB(node.metadata.labels) !== undefined;
  const advertises = node.status?.allocatable?.[unifiedMemoryResource] !== undefined;
  if (!profiled && !advertises) return undefined;
  return {
    totalMiB: profiled ? Number(node.metadata.labels?.[nodeLabels.unifiedMemoryGiB]) * 1024 : 0,
    advertisedMiB: allocatableUnifiedMemoryMiB(node),
  };
}
