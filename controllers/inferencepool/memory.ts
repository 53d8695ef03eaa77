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

/** What one pod asks for: the model's measured memory plus headroom, rounded up to whole MiB, at least 64. */
export function podUnifiedMemoryMiB(measuredMiB: number, headroomPercent: number): number {
  return Math.max(64, Math.ceil(measuredMiB * (1 + headroomPercent / 100)));
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
