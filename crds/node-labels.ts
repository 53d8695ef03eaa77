/**
 * Labels the node profiler puts on Apple-silicon nodes, and that placement selects on. The simulated fleet
 * in test/harness carries the same labels so tests see what a profiled cluster looks like.
 */
export const nodeLabels = {
  appleSilicon: 'aurora.health/apple-silicon',
  chip: 'aurora.health/chip',
  cpuCores: 'aurora.health/cpu-cores',
  gpuCores: 'aurora.health/gpu-cores',
  unifiedMemoryGiB: 'aurora.health/unified-memory-gib',
  /** A Linux VM on a Mac: CoreML is out of reach and the memory is the VM's share. */
  virtualized: 'aurora.health/virtualized',
} as const;

/** Chips Aurora recognises, as label values. */
export const appleChips = [
  'm1',
  'm1-pro',
  'm1-max',
  'm2',
  'm2-pro',
  'm2-max',
  'm3',
  'm3-pro',
  'm3-max',
  'm4',
  'm4-pro',
  'm4-max',
] as const;
export type AppleChip = (typeof appleChips)[number];

/**
 * The extended resource through which the scheduler packs models by unified memory: the operator puts
 * it in each profiled Apple node's status, pool pods request it.
 */
export const unifiedMemoryResource = 'aurora.health/unified-memory-mib';
