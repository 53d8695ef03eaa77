import { retryOnConflict } from './apply.ts';
import type { KubeClient } from './kube/client.ts';
import type { KubeObject } from './kube/types.ts';

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata.finalizers?.includes(finalizer) ?? false;
}

/** The finalizer list with `finalizer` added or removed; undefined when nothing changes. */
export function withFinalizer(
  current: readonly string[] | undefined,
  finalizer: string,
  present: boolean,
): string[] | undefined {
  const list = current ?? [];
  if (list.includes(finalizer) === present) return undefined;
  return present ? [...list, finalizer] : list.filter((f) => f !== finalizer);
}

/**
 * Adds or removes a finalizer with optimistic locking: the patch carries the resourceVersion it was
 * computed from, so a concurrent change makes it fail with 409 and it is computed again from a fresh
 * read. Other controllers' finalizers are never dropped. Returns the object as it is afterwards.
 */
export async function setFinalizer<T extends KubeObject>(
  client: KubeClient,
  obj: T,
  finalizer: string,
  present: boolean,
): Promise<T | undefined> {
  let current: T | undefined = obj;
  return retryOnConflict(async () => {
    if (!current) return undefined;
    const next = withFinalizer(current.metadata.finalizers, finalizer, present);
    if (!next) return current;
    try {
      return await client.patch<T>(
        current,
        { metadata: { resourceVersion: current.metadata.resourceVersion, finalizers: next } },
        { type: 'merge' },
      );
    } catch (err) {
      current = await client.get<T>(current);
      throw err;
    }
  });
}
