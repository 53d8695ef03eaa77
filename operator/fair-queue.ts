/** Slots shared fairly between tenants (namespaces): none can take them all, and none waits behind another's backlog. */
export interface FairQueue {
  /**
   * Resolves with the function that gives the slot back, once one is free for this tenant; rejects
   * with the signal's reason if it aborts first.
   */
  acquire(tenant: string, signal?: AbortSignal): Promise<() => void>;
  stats(): { running: number; waiting: number };
}

/**
 * At most `concurrency` holders at once and at most `perTenant` of them from one tenant; a free slot
 * goes to the waiting tenant served least recently (round robin), first come first served within a
 * tenant.
 */
export function createFairQueue(options: { concurrency: number; perTenant: number }): FairQueue {
  const waiting = new Map<string, Array<() => void>>();
  const runningBy = new Map<string, number>();
  let running = 0;
  // When each tenant was last given a slot: the one served least recently goes next.
  const lastServed = new Map<string, number>();
  let turn = 0;

  const dispatch = () => {
    while (running < options.concurrency) {
      let tenant: string | undefined;
      // The waiting map keeps arrival order, so tenants never served go first in the order they came.
      for (const [t] of waiting) {
        if ((runningBy.get(t) ?? 0) >= options.perTenant) continue;
        if (tenant === undefined || (lastServed.get(t) ?? -1) < (lastServed.get(tenant) ?? -1)) tenant = t;
      }
      if (tenant === undefined) return;
      lastServed.set(tenant, turn++);
      const queue = waiting.get(tenant) as Array<() => void>;
      const start = queue.shift() as () => void;
      if (queue.length === 0) waiting.delete(tenant);
      running++;
      runningBy.set(tenant, (runningBy.get(tenant) ?? 0) + 1);
      start();
    }
  };

  const releaser = (tenant: string) => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      running--;
      const left = (runningBy.get(tenant) ?? 1) - 1;
      if (left > 0) runningBy.set(tenant, left);
      else runningBy.delete(tenant);
      // A tenant with nothing running or waiting is forgotten: namespaces come and go.
      if (left <= 0 && !waiting.has(tenant)) lastServed.delete(tenant);
      dispatch();
    };
  };

  return {
    acquire(tenant, signal) {
      signal?.throwIfAborted();
      return new Promise((resolve, reject) => {
        const start = () => {
          signal?.removeEventListener('abort', giveUp);
          resolve(releaser(tenant));
        };
        const giveUp = () => {
          const queue = waiting.get(tenant);
          const at = queue?.indexOf(start) ?? -1;
          if (queue && at >= 0) {
            queue.splice(at, 1);
            if (queue.length === 0) waiting.delete(tenant);
          }
          if (!waiting.has(tenant) && !runningBy.has(tenant)) lastServed.delete(tenant);
          reject(signal?.reason);
        };
        signal?.addEventListener('abort', giveUp, { once: true });
        const queue = waiting.get(tenant);
        if (queue) queue.push(start);
        else waiting.set(tenant, [start]);
        dispatch();
      });
    },
    stats: () => ({ running, waiting: [...waiting.values()].reduce((n, q) => n + q.length, 0) }),
  };
}
