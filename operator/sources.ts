import { isDeepStrictEqual } from 'node:util';
import type { Informer, InformerEvent } from './informer.ts';
import { apiGroup, type KubeObject } from './kube/types.ts';
import type { Priority } from './workqueue.ts';

/**
 * Anything that wakes a controller by handing it keys: an informer of another kind, a Redis stream
 * watcher, a timer, a webhook. A controller starts its sources when it starts (on the leader) and stops
 * them when it stops, so nothing wakes a controller that is not running.
 */
export interface EventSource {
  /**
   * Starts delivering keys to enqueue (prompt unless said otherwise); returns the function that stops
   * delivering them.
   */
  start(enqueue: (key: string, priority?: Priority) => void): () => void;
}

/** An informer's resync is the clock, not a change: it waits behind keys something changed. */
const priorityOf = (event: InformerEvent<KubeObject>): Priority =>
  event.type === 'resync' ? 'routine' : 'prompt';

/**
 * Whether an event is more than a new resourceVersion: an add, a delete, a resync, or an update whose
 * cached object differs in anything else. A cache of views (a few fields of each object) still gets an
 * update for every write to the object, most of them to fields the view drops; those wake nobody.
 */
export function changedBeyondVersion(event: InformerEvent<KubeObject>): boolean {
  if (event.type !== 'updated' || !event.old) return true;
  const withoutVersion = (o: KubeObject) => ({
    ...o,
    metadata: { ...o.metadata, resourceVersion: undefined, managedFields: undefined },
  });
  return !isDeepStrictEqual(withoutVersion(event.old), withoutVersion(event.object));
}

/** Wakes the objects a change of another kind concerns, by a mapping from the changed object to keys. */
export function watch<T extends KubeObject>(
  informer: Informer<T>,
  map: (obj: T) => Iterable<string>,
  /** Which events count; all of them when omitted. */
  filter?: (event: InformerEvent<T>) => boolean,
): EventSource {
  return {
    start: (enqueue) =>
      informer.addHandler((event) => {
        if (filter && !filter(event)) return;
        // An update that moved the reference (a queue that now targets another pool) concerns both ends.
        const keys = new Set(map(event.object));
        if (event.old) for (const key of map(event.old)) keys.add(key);
        for (const key of keys) enqueue(key, priorityOf(event));
      }),
  };
}

/** The key of the object's controlling owner when that owner is of the given kind. */
export function controllerOwnerKey(
  obj: KubeObject,
  ownerApiVersion: string,
  ownerKind: string,
): string | undefined {
  const ref = obj.metadata.ownerReferences?.find((r) => r.controller === true);
  if (!ref || ref.kind !== ownerKind || apiGroup(ref.apiVersion) !== apiGroup(ownerApiVersion))
    return undefined;
  return obj.metadata.namespace ? `${obj.metadata.namespace}/${ref.name}` : ref.name;
}

/**
 * Wakes the owner of a changed child, named by the child's controller ownerReference. The old object
 * counts too: a child whose ownerReference was edited away still wakes the owner that lost it.
 */
export function owned<T extends KubeObject>(
  informer: Pick<Informer<T>, 'addHandler'>,
  owner: { apiVersion: string; kind: string },
): EventSource {
  return {
    start: (enqueue) =>
      informer.addHandler((event) => {
        const keys = new Set(
          [event.object, event.old].map((o) => o && controllerOwnerKey(o, owner.apiVersion, owner.kind)),
        );
        for (const key of keys) if (key) enqueue(key, priorityOf(event));
      }),
  };
}

/** A source fed from outside (controller-runtime's source.Channel). */
export interface ChannelSource extends EventSource {
  /** Wakes the object with this key; dropped while no controller listens (its first list covers it). */
  send(key: string): void;
}

export function channelSource(): ChannelSource {
  const listeners = new Set<(key: string) => void>();
  return {
    start(enqueue) {
      listeners.add(enqueue);
      return () => listeners.delete(enqueue);
    },
    send(key) {
      for (const enqueue of listeners) enqueue(key);
    },
  };
}
