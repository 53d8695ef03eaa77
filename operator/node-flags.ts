/**
 * V8 flags the operator process runs with. An operator allocates little per reconcile but caches much,
 * and V8's default 16 MiB semi-spaces (48 MiB of young generation) cost more than the cache itself:
 * bench/runtime.ts measured 282 MiB peak RSS by default and 191 MiB with these, with 10,000 pods
 * cached, before the operator shed client-node and undici (141 MiB now).
 * The Dockerfile's CMD repeats them; keep the two in step.
 */
export const operatorNodeFlags = ['--max-semi-space-size=1', '--optimize-for-size'] as const;

/**
 * Environment the operator process runs with: glibc gives each thread that allocates an arena of its
 * own, and Node's worker threads (TLS, file system, DNS) leave tens of MiB resident in them; two arenas
 * are plenty for a process that does its work on one thread. The Dockerfile sets the same.
 */
export const operatorEnv = { MALLOC_ARENA_MAX: '2' } as const;
