import { unifiedMemoryResource } from '../crds/labels.ts';
import { quantityValue } from '../operator/quantity.ts';
import type { NodeView } from '../views/node.ts';
import { type PodView, podIsLive } from '../views/pod.ts';

/**
 * Unified-memory arithmetic for placement. On Apple silicon the CPU and GPU share one memory, so the
 * operating system, the kubelet and the container runtime take their share from the same pool the
 * models use: each node keeps back the larger of 4 GiB and 15 %.
 */
export function advertisedUnifiedMemoryMiB(unifiedMemoryGiB: number): number {
  const totalMiB = unifiedMemoryGiB * 1024;
  const reservedMiB = Math.max(4096, Math.ceil(totalMiB * 0.15));
  return Math.max(0, totalMiB - reservedMiB);
}

/**
 * Memory a triage server takes before any model: Node, onnxruntime, the HTTP server, the file itself.
 * workloads/triage-server's process test holds a ready server with the example model under it.
 */
export const serverBaseMiB = 192;

/** What one pod asks for: the server's base plus the model's measured memory and headroom, in whole MiB. */
export function podUnifiedMemoryMiB(measuredMiB: number, headroomPercent: number): number {
  return serverBaseMiB + Math.ceil(measuredMiB * (1 + headroomPercent / 100));
}

export interface PackingResult {
  placed: Array<{ item: string; node: string }>;
  unplaced: string[];
  /** MiB left per node. */
  free: Record<string, number>;
}

/**
 * First-fit decreasing: the largest request first, each onto the first node with room. The reference
 * the placement tests hold the real scheduler to: whatever this places, the cluster must place too.
 */
export function firstFitDecreasing(
  items: ReadonlyArray<{ name: string; mib: number }>,
  nodes: ReadonlyArray<{ name: string; mib: number }>,
): PackingResult {
  const free: Record<string, number> = Object.fromEntries(nodes.map((n) => [n.name, n.mib]));
  const placed: PackingResult['placed'] = [];
  const unplaced: string[] = [];
  const order = [...items].sort((a, b) => b.mib - a.mib || a.name.localeCompare(b.name));
  for (const item of order) {
    const node = nodes.find((n) => (free[n.name] ?? 0) >= item.mib);
    if (!node) {
      unplaced.push(item.name);
      continue;
    }
    free[node.name] = (free[node.name] ?? 0) - item.mib;
    placed.push({ item: item.name, node: node.name });
  }
  return { placed, unplaced, free };
}

/** Unified memory the node offers pods now, in MiB (0 when it advertises none). */
export function allocatableUnifiedMemoryMiB(node: NodeView): number {
  const value = quantityValue(node.status?.allocatable?.[unifiedMemoryResource] ?? '0');
  return Number.isFinite(value) ? value : 0;
}

/** Unified memory per node: what it offers and what pool pods bound to it take. */
export function unifiedMemoryUsage(
  nodes: readonly NodeView[],
  pods: readonly PodView[],
): Map<string, { allocatableMiB: number; usedMiB: number }> {
  const usage = new Map(
    nodes.map((n) => [n.metadata.name, { allocatableMiB: allocatableUnifiedMemoryMiB(n), usedMiB: 0 }]),
  );
  for (const pod of pods) {
    if (!podIsLive(pod) || !pod.pod.nodeName) continue;
    const entry = usage.get(pod.pod.nodeName);
    if (entry) entry.usedMiB += pod.pod.unifiedMemoryMiB;
  }
  return usage;
}
