import { type Clock, systemClock } from './clock.ts';
import type { Informer, InformerEvent } from './informer.ts';
import { apiGroup, type KubeObject, objectKey, parseObjectKey } from './kube/types.ts';
import type { Logger } from './log.ts';
import type { ControllerMetrics } from './metrics.ts';
import { createWorkQueue, type WorkQueue } from './workqueue.ts';

export interface ReconcileRequest {
  key: string;
  namespace?: string;
  name: string;
}

/** What a reconcile asks for next: nothing (wait for a change), or a look again after a delay. */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

export type Reconciler = (request: ReconcileRequest) => Promise<ReconcileResult | undefined>;

/** A kind whose changes wake other objects, by a mapping from the changed object to their keys. */
export interface WatchSource {
  informer: Informer<KubeObject>;
  map: (obj: KubeObject) => string[];
  /** Which events count; all of them when omitted. */
  filter?: (event: InformerEvent<KubeObject>) => boolean;
}

export interface ControllerOptions {
  name: string;
  /** The kind this controller reconciles; its keys are the primary objects' namespace/name. */
  primary: Informer<KubeObject>;
  /** Kinds this controller creates; a change wakes the owner named by the controller ownerReference. */
  owns?: Informer<KubeObject>[];
  watches?: WatchSource[];
  reconcile: Reconciler;
  workers?: number;
  clock?: Clock;
  log: Logger;
  metrics?: ControllerMetrics;
  /** Skips updates that change nothing but status and metadata noise (the default: generation changes). */
  primaryFilter?: (event: InformerEvent<KubeObject>) => boolean;
}

export interface Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  /** Starts the workers; informers must be started by their owner (the manager). */
  start(): void;
  /** Stops taking keys, waits for reconciles in progress. */
  stop(): Promise<void>;
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
 * controller-runtime's default predicate for the primary kind: every add, delete and resync, and updates
 * that change the generation, labels, annotations, finalizers or deletion state. Status-only updates,
 * usually our own writes, do not wake the reconciler again.
 */
export function meaningfulChange(event: InformerEvent<KubeObject>): boolean {
  if (event.type !== 'updated' || !event.old) return true;
  const a = event.old.metadata;
  const b = event.object.metadata;
  if (a.generation === undefined || b.generation === undefined) return true;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.labels) !== JSON.stringify(b.labels) ||
    JSON.stringify(a.annotations) !== JSON.stringify(b.annotations) ||
    JSON.stringify(a.finalizers) !== JSON.stringify(b.finalizers)
  );
}

/**
 * A controller: informer events only enqueue keys; N workers take keys from the queue and call the
 * reconciler, which reads from the cache. Errors retry with per-key backoff; requeueAfterMs schedules
 * the next look; a success clears the key's backoff.
 */
export function createController(options: ControllerOptions): Controller {
  const clock = options.clock ?? systemClock;
  const workers = options.workers ?? 2;
  const log = options.log.child({ controller: options.name });
  const metrics = options.metrics?.forController(options.name);
  const queue = createWorkQueue({ clock, ...(metrics ? { observer: metrics.queue } : {}) });
  const primaryFilter = options.primaryFilter ?? meaningfulChange;
  const { apiVersion: ownerApiVersion, kind: ownerKind } = options.primary;
  const unsubscribe: Array<() => void> = [];
  let running: Promise<void>[] = [];

  const worker = async () => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const started = clock.now();
      metrics?.activeWorkers(1);
      try {
        const { namespace, name } = parseObjectKey(key);
        const result = await options.reconcile({ key, name, ...(namespace ? { namespace } : {}) });
        queue.forget(key);
        if (result?.requeueAfterMs !== undefined) {
          queue.addAfter(key, result.requeueAfterMs);
          metrics?.reconciled('requeue_after');
        } else {
          metrics?.reconciled('success');
        }
      } catch (err) {
        queue.addRateLimited(key);
        metrics?.reconciled('error');
        log.warn(
          { key, err: err instanceof Error ? err.message : String(err), failures: queue.failures(key) },
          'reconcile failed; will retry',
        );
      } finally {
        metrics?.activeWorkers(-1);
        metrics?.reconcileSeconds((clock.now() - started) / 1000);
        queue.done(key);
      }
    }
  };

  return {
    name: options.name,
    queue,
    start() {
      unsubscribe.push(
        options.primary.addHandler((event) => {
          if (primaryFilter(event)) queue.add(objectKey(event.object));
        }),
      );
      for (const owned of options.owns ?? []) {
        unsubscribe.push(
          owned.addHandler((event) => {
            const keys = [event.object, event.old].map(
              (o) => o && controllerOwnerKey(o, ownerApiVersion, ownerKind),
            );
            for (const key of new Set(keys)) if (key) queue.add(key);
          }),
        );
      }
      for (const source of options.watches ?? []) {
        unsubscribe.push(
          source.informer.addHandler((event) => {
            if (source.filter && !source.filter(event)) return;
            for (const key of source.map(event.object)) queue.add(key);
          }),
        );
      }
      metrics?.maxWorkers(workers);
      running = Array.from({ length: workers }, () => worker());
      log.info({ workers }, 'controller started');
    },
    async stop() {
      for (const off of unsubscribe.splice(0)) off();
      await queue.shutdown();
      await Promise.all(running);
    },
  };
}
