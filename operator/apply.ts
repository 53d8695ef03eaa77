import { createHash } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { ReportedError } from './errors.ts';
import { ApiError, isConflict, type KubeClient } from './kube/client.ts';
import type { KubeObject, ObjectRef, OwnerReference } from './kube/types.ts';

/** The one field manager every Aurora write goes under, so server-side apply tracks what Aurora owns. */
export const fieldManager = 'aurora-operator';

/**
 * Server-side applies a child: the desired object is Aurora's whole intent for it, fields it no longer
 * sets are removed, and Aurora takes over fields another manager set (force), as controllers do for
 * the objects they own. An unchanged intent changes nothing on the server.
 */
export function applyChild<T extends KubeObject>(client: KubeClient, desired: T): Promise<T> {
  return client.apply(desired, { fieldManager, force: true });
}

/** A child the API server refused (invalid, or denied by admission or a quota): told in status, retried. */
export class ApplyFailed extends ReportedError {
  override name = 'ApplyFailed';
  constructor(child: ObjectRef, serverMessage: string) {
    super('ApplyFailed', `the API server refused ${child.kind} ${child.metadata.name}: ${serverMessage}`);
  }
}

/** The server's own words from a refusal, without the request line the client adds. */
const refusal = (err: ApiError) => err.message.replace(/^[A-Z]+ \/\S+: /, '');

/**
 * Applies children only when the intent changed or someone else changed the child since Aurora last
 * applied it (its generation, or its resourceVersion for kinds without one, moved). A reconcile that
 * pods wake many times a second then costs no writes.
 */
export function createChildApplier(client: KubeClient) {
  const applied = new Map<string, string>();
  // Who changed the child since: a new object (uid), a spec edit (generation), or metadata edits, which
  // move no generation (a dropped ownerReference would cut the child loose from its pool).
  const version = (obj: KubeObject | undefined) => {
    if (!obj) return 'absent';
    const { uid, generation, resourceVersion, labels, annotations, ownerReferences } = obj.metadata;
    const meta = createHash('sha256')
      .update(JSON.stringify([labels, annotations, ownerReferences]))
      .digest('hex');
    return `${uid ?? ''}/${generation ?? resourceVersion ?? ''}/${meta}`;
  };
  const keyOf = (obj: ObjectRef) =>
    `${obj.apiVersion}/${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
  return {
    /**
     * Returns the object as the server holds it after the write, or undefined when nothing was written.
     * current is the child as the cache holds it (undefined: not there).
     */
    async apply<T extends KubeObject>(desired: T, current: KubeObject | undefined): Promise<T | undefined> {
      const key = keyOf(desired);
      const intent = createHash('sha256').update(JSON.stringify(desired)).digest('hex');
      if (current && applied.get(key) === `${intent}@${version(current)}`) return undefined;
      let result: T;
      try {
        result = await applyChild(client, desired);
      } catch (err) {
        if (err instanceof ApiError && [400, 403, 422].includes(err.status))
          throw new ApplyFailed(desired, refusal(err));
        throw err;
      }
      applied.set(key, `${intent}@${version(result)}`);
      return result;
    },
    /** Drops what was remembered of a child (its owner is gone), so a long-lived operator does not grow. */
    forget(obj: ObjectRef) {
      applied.delete(keyOf(obj));
    },
  };
}

/** The ownerReference that makes owner the controller of a child (garbage collection, owner mapping). */
export function controllerReference(owner: KubeObject): OwnerReference {
  if (!owner.metadata.uid) throw new Error(`${owner.kind} ${owner.metadata.name} has no uid yet`);
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid,
    controller: true,
    blockOwnerDeletion: true,
  };
}

/**
 * Writes status through the status subresource, only when it differs from what the object carries, so
 * a steady state makes no writes. The write carries the resourceVersion the status was computed from:
 * if the object changed meanwhile, the API server refuses it (409) and the caller decides again on the
 * newer object, so an older verdict never overwrites a newer one. Returns whether it wrote.
 */
export async function writeStatus(
  client: KubeClient,
  obj: KubeObject,
  status: Record<string, unknown>,
): Promise<boolean> {
  if (isDeepStrictEqual(withoutUndefined(obj.status), withoutUndefined(status))) return false;
  const intent: KubeObject = {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: obj.metadata.name,
      ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
      ...(obj.metadata.resourceVersion ? { resourceVersion: obj.metadata.resourceVersion } : {}),
    },
    status,
  };
  await client.apply(intent, { fieldManager, force: true, subresource: 'status' });
  return true;
}

/** Drops undefined members, which JSON never carries, so they do not count as differences. */
function withoutUndefined(value: unknown): unknown {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/**
 * Retries attempt while it fails with 409 Conflict, up to maxAttempts, and returns what it returns. The
 * attempt itself must read afresh before it writes (or re-read when its write fails), so each retry
 * decides on the object as it is now: optimistic locking, as client-go's RetryOnConflict.
 */
export async function retryOnConflict<T>(attempt: () => Promise<T>, maxAttempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!isConflict(err) || i >= maxAttempts) throw err;
    }
  }
}
