// The labels and annotations Aurora reads and writes on Kubernetes objects: part of the API, since
// people select on them (kubectl -l, NetworkPolicies, dashboards).

/**
 * Labels the node profiler puts on Apple-silicon nodes, and that placement selects on. The simulated fleet
 * in hack/local-cluster carries the same labels so tests see what a profiled cluster looks like.
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

/** What every object Aurora creates carries, so its informers watch only their own. */
export const managedBy = { 'app.kubernetes.io/managed-by': 'aurora-operator' } as const;
export const managedSelector = 'app.kubernetes.io/managed-by=aurora-operator';

/** The pool a pod, Deployment, Service or PodDisruptionBudget belongs to. */
export const poolLabel = 'aurora.health/pool';
/** Marks a pool's release ConfigMaps; only those owned by the pool are ever reused or pruned. */
export const releaseLabel = 'aurora.health/release-of';
/** Pod-template annotations that say which model release a pod serves. */
export const releaseAnnotations = {
  configMap: 'aurora.health/release',
  version: 'aurora.health/model-version',
  digest: 'aurora.health/model-digest',
} as const;

/**
 * A rollback of an InferencePool, as a HealingPolicy writes it on the pool (metadata, never the spec):
 * serve release `to` instead of `from` while `from` is still the newest that passed acceptance. A newer
 * version that passes ends it, and so does removing the annotations.
 */
export const rollbackAnnotations = {
  to: 'aurora.health/rolled-back-to',
  from: 'aurora.health/rolled-back-from',
} as const;
