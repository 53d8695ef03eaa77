import { type Clock, systemClock } from './clock.ts';
import { TerminalError } from './errors.ts';
import type { Informer, InformerEvent } from './informer.ts';
import { type KubeObject, objectKey, parseObjectKey } from './kube/types.ts';
import type { Logger } from './log.ts';
import type { ControllerMetrics } from './metrics.ts';
import { type EventSource, owned } from './sources.ts';
import { createWorkQueue, type Priority, type WorkQueue } from './workqueue.ts';

/** What a reconcile is given: the object's key, and the means to stop, log and tell time. */
export interface ReconcileContext {
  readonly key: string;
  readonly namespace?: string;
  readonly name: string;
  /** Aborted when the controller stops (shutdown, or leadership lost): long work must give up on it. */
  readonly signal: AbortSignal;
  /** Bound to the controller and the object's key. */
  readonly log: Logger;
  /** The one clock the runtime runs on; tests inject a fake one. */
  readonly clock: Clock;
  now(): Date;
}

/** What a reconcile asks for next: nothing (wait for a change), or a look again after a delay. */
export interface ReconcileResult {
  requeueAfterMs?: number;
}

export type Reconciler = (ctx: ReconcileContext) => Promise<ReconcileResult | undefined>;

/** The parts of an informer a controller subscribes to; any kind's informer fits. */
export interface Subscribable {
  addHandler(handler: (event: InformerEvent<KubeObject>) => void): () => void;
}

export interface ControllerOptions<T extends KubeObject> {
  name: string;
  /** The kind this controller reconciles; its keys are the primary objects' namespace/name. */
  primary: Informer<T>;
  /** Skips primary events that change nothing the controller reads (the default: meaningfulChange). */
  primaryFilter?: (event: InformerEvent<T>) => boolean;
  /** Kinds this controller creates; a change wakes the owner named by the controller ownerReference. */
  owns?: readonly Subscribable[];
  /** Anything else that wakes objects of this kind: other kinds (watch()), or sources outside Kubernetes. */
  sources?: readonly EventSource[];
  reconcile: Reconciler;
  /** Reconciles run at once, never two for one key. */
  workers?: number;
  clock?: Clock;
  log: Logger;
  metrics?: ControllerMetrics;
}

export interface Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  /** Starts the sources and the workers; informers are started by their owner (the manager). */
  start(): void;
  /**
   * Stops at once without waiting (leadership lost): no source delivers, no key is handed out, and the
   * reconciles in progress see their signal aborted.
   */
  abort(reason: string): void;
  /**
   * Stops taking keys, aborts the reconciles in progress and waits for them to return, at most
   * timeoutMs (a reconcile that ignores its signal is left behind rather than holding shutdown).
   */
  stop(timeoutMs?: number): Promise<void>;
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

/** Within a pod's default 30 s grace period, leaving time to release the lease after. */
const defaultStopTimeoutMs = 15_000;

/**
 * A controller: sources only enqueue keys; N workers take keys from the queue and call the reconciler,
 * which reads from the cache. Errors retry with per-key backoff; a TerminalError does not retry;
 * requeueAfterMs schedules the next look; a success clears the key's backoff.
 */
export function createController<T extends KubeObject>(options: ControllerOptions<T>): Controller {
  const clock = options.clock ?? systemClock;
  const workers = options.workers ?? 2;
  const log = options.log.child({ controller: options.name });
  const metrics = options.metrics?.forController(options.name);
  const queue = createWorkQueue({ clock, ...(metrics ? { observer: metrics.queue } : {}) });
  const primaryFilter = options.primaryFilter ?? meaningfulChange;
  const owner = { apiVersion: options.primary.apiVersion, kind: options.primary.kind };
  const aborter = new AbortController();
  const unsubscribe: Array<() => void> = [];
  let running: Promise<void>[] = [];

  const reconcileOne = async (key: string) => {
    const { namespace, name } = parseObjectKey(key);
    const ctx: ReconcileContext = {
      key,
      name,
      ...(namespace ? { namespace } : {}),
      signal: aborter.signal,
      log: log.child({ key }),
      clock,
      now: () => new Date(clock.now()),
    };
    try {
      const result = await options.reconcile(ctx);
      queue.forget(key);
      if (result?.requeueAfterMs !== undefined) {
        // A look the clock asks for waits behind keys something changed.
        queue.addAfter(key, result.requeueAfterMs, 'routine');
        metrics?.reconciled('requeue_after');
      } else {
        metrics?.reconciled('success');
      }
    } catch (err) {
      if (aborter.signal.aborted) {
        // Stopping: whoever leads next lists everything again, so the key needs no retry here.
        ctx.log.debug({ err: (err as Error).message }, 'reconcile ended by shutdown');
      } else if (err instanceof TerminalError) {
        queue.forget(key);
        metrics?.reconciled('error', { terminal: true });
        ctx.log.warn(
          { reason: err.reason, err: err.message },
          'reconcile failed for good; waits for a change',
        );
      } else {
        queue.addRateLimited(key);
        metrics?.reconciled('error');
        ctx.log.warn(
          { err: err instanceof Error ? err.message : String(err), failures: queue.failures(key) },
          'reconcile failed; will retry',
        );
      }
    }
  };

  const worker = async () => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const started = clock.now();
      metrics?.activeWorkers(1);
      try {
        await reconcileOne(key);
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
      const enqueue = (key: string, priority?: Priority) => queue.add(key, priority);
      unsubscribe.push(
        options.primary.addHandler((event) => {
          // A resync is the clock too, not a change.
          if (primaryFilter(event))
            enqueue(objectKey(event.object), event.type === 'resync' ? 'routine' : 'prompt');
        }),
      );
      for (const informer of options.owns ?? []) unsubscribe.push(owned(informer, owner).start(enqueue));
      for (const source of options.sources ?? []) unsubscribe.push(source.start(enqueue));
      metrics?.maxWorkers(workers);
      running = Array.from({ length: workers }, () => worker());
      log.info({ workers }, 'controller started');
    },
    abort(reason) {
      for (const off of unsubscribe.splice(0)) off();
      aborter.abort(new Error(reason));
      void queue.shutdown();
    },
    async stop(timeoutMs = defaultStopTimeoutMs) {
      for (const off of unsubscribe.splice(0)) off();
      if (!aborter.signal.aborted) aborter.abort(new Error('the controller is stopping'));
      const drained = queue.shutdown().then(() => Promise.all(running));
      let timer: unknown;
      const late = new Promise<'late'>((resolve) => {
        timer = clock.setTimeout(() => resolve('late'), timeoutMs);
      });
      const outcome = await Promise.race([drained, late]);
      clock.clearTimeout(timer);
      if (outcome === 'late') log.warn({ timeoutMs }, 'stopped with reconciles still running');
    },
  };
}
