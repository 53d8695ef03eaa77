// What the CareQueue controller takes its target's replica count to be. It reads the target from the
// informer cache rather than once per look from the API server, and the cache may lag: behind Aurora's
// own last write, or part-way through a run of changes. Acting on a count that is too low would make a
// scale-in look like a scale-up (no record first, no guard), so the cache is trusted only when it agrees
// with what Aurora last knew, and read live otherwise.

/** What Aurora last knew the target's replicas to be: its own write, or a live read. */
export interface KnownReplicas {
  replicas: number;
  /**
   * The target's generation the write was decided from: a cache still at or below it has not seen the
   * write (writing spec.replicas always moves the generation). Absent when it came from a live read.
   */
  decidedAtGeneration?: number;
}

/**
 * Which count to use: `cache` when it agrees with what Aurora last knew (or it knows nothing), `known`
 * while the cache has not yet seen Aurora's own write, `live` otherwise (a cache that disagrees may be
 * part-way, or another writer changed the target: only the API server can tell).
 */
export function trustedReplicas(
  cached: { replicas: number; generation?: number | undefined },
  known: KnownReplicas | undefined,
): 'cache' | 'known' | 'live' {
  if (!known || cached.replicas === known.replicas) return 'cache';
  if (
    known.decidedAtGeneration !== undefined &&
    cached.generation !== undefined &&
    cached.generation <= known.decidedAtGeneration
  )
    return 'known';
  return 'live';
}
