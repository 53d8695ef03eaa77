import type { ZodType } from 'zod';
import { writeStatus } from './apply.ts';
import { type ConditionEventPolicy, conditionEvents } from './condition-events.ts';
import { type Condition, type ConditionInput, setConditions } from './conditions.ts';
import type { ReconcileContext, ReconcileResult, Subscribable } from './controller.ts';
import { ReportedError, TerminalError } from './errors.ts';
import type { EventType } from './events.ts';
import { hasFinalizer, setFinalizer } from './finalizers.ts';
import type { Informer, InformerEvent } from './informer.ts';
import type { KubeObject } from './kube/types.ts';
import type { Manager } from './manager.ts';
import type { EventSource } from './sources.ts';

/** A reconcile's context, with the object it is about. */
export interface KindContext extends ReconcileContext {
  /** Records an Event about the object (never patient data: anyone who reads Events sees it). */
  record(type: EventType, reason: string, action: string, note: string): void;
}

/** What a kind's reconcile decided: the whole status to report, and when to look again. */
export interface KindResult<Status> extends ReconcileResult {
  status?: Status;
}

/** The status fields every kind's status carries, which the runtime reads and writes. */
interface StatusBase {
  observedGeneration?: number;
  conditions?: Condition[];
}

/** An object whose spec is the parsed (defaulted) spec. */
export type Parsed<T extends KubeObject, Spec> = T & { spec: Spec };

export interface KindControllerOptions<T extends KubeObject, Spec, Status extends StatusBase> {
  name: string;
  /** The cache of the kind reconciled. */
  informer: Informer<T>;
  /** The spec's schema: a spec it refuses is a terminal InvalidSpec, and reconcile gets the parsed spec. */
  spec?: ZodType<Spec>;
  /** Whether the kind reports status (false for built-in kinds Aurora only annotates, such as Node). */
  hasStatus?: boolean;
  /** Condition changes that become Events; none when omitted. */
  events?: ConditionEventPolicy;
  /** Events' reportingController; `aurora-<name>` when omitted. */
  reportingController?: string;
  /** Work to finish before the object may go; the runtime adds and removes the finalizer. */
  finalizer?: { name: string; finalize(ctx: KindContext, obj: T): Promise<void> };
  /** Frees what is kept per object (metric series, caches) once it is deleted or being deleted. */
  forget?(key: string): void;
  reconcile(ctx: KindContext, obj: Parsed<T, Spec>): Promise<KindResult<Status> | undefined>;
  primaryFilter?: (event: InformerEvent<T>) => boolean;
  owns?: readonly Subscribable[];
  sources?: readonly EventSource[];
  workers?: number;
}

/** A zod error as one line: each problem with the spec field it concerns. */
export function specProblems(error: {
  issues: ReadonlyArray<{ path: PropertyKey[]; message: string }>;
}): string {
  return error.issues
    .map(
      (i) =>
        `spec${i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${i.message}`,
    )
    .join('; ');
}

/**
 * The status of an object whose reconcile failed in a way worth telling (a terminal error, a refused
 * child): Ready False with the reason, and every other condition Unknown, since it was not evaluated.
 * Other fields (what was last validated or served) are kept.
 */
export function failureStatus<Status extends StatusBase>(
  obj: KubeObject,
  error: TerminalError | ReportedError,
  now: Date,
): Status {
  const previous = (obj.status ?? {}) as Status;
  const others: ConditionInput[] = (previous.conditions ?? [])
    .filter((c) => c.type !== 'Ready')
    .map((c) => ({
      type: c.type,
      status: 'Unknown',
      reason: error.reason,
      message: `not evaluated: Ready is False (${error.reason})`,
    }));
  const generation = obj.metadata.generation;
  return {
    ...previous,
    observedGeneration: generation,
    conditions: setConditions(
      previous.conditions,
      [{ type: 'Ready', status: 'False', reason: error.reason, message: error.message }, ...others],
      generation,
      now,
    ),
  };
}

/**
 * Registers the controller of one kind on the shared kit, so every kind's reconcile begins the same way:
 * the object read from the cache (gone: done, and what was kept for it forgotten); deletion and the
 * finalizer handled; the spec parsed with the kind's schema (refused: a terminal InvalidSpec in status,
 * not looked at again until the generation changes); then the kind's reconcile with a context carrying
 * the abort signal, a logger bound to the key and the clock. Its status is written only when it changed,
 * and the condition changes the kind's event policy names become Events.
 */
export function addKindController<T extends KubeObject, Spec, Status extends StatusBase>(
  manager: Manager,
  options: KindControllerOptions<T, Spec, Status>,
): void {
  const { informer, finalizer } = options;
  const hasStatus = options.hasStatus ?? true;
  const recorder = manager.recorder(options.reportingController ?? `aurora-${options.name}`);
  // uid/generation of objects whose spec the schema refused: not looked at again until that changes.
  const invalidSpecs = new Map<string, string>();
  /** Reports the object's conditions as metrics (the leader's alone: only it reconciles); none forgets it. */
  const reportConditions = (key: string, conditions?: readonly Condition[]) => {
    if (!hasStatus) return;
    const [namespace, name] = key.includes('/') ? key.split('/', 2) : ['', key];
    manager.metrics.conditions(
      { kind: informer.kind, namespace: namespace ?? '', name: name ?? '' },
      conditions,
    );
  };

  /** Writes the status when it changed; returns whether it wrote. Nothing is written once aborted. */
  const writeKindStatus = async (signal: AbortSignal, obj: T, status: Status): Promise<boolean> => {
    if (!hasStatus) return false;
    // Aborted: another replica may lead already, and its view of the object is the one that counts.
    signal.throwIfAborted();
    return writeStatus(manager.client, obj, status as Record<string, unknown>);
  };

  manager.addController<T>({
    name: options.name,
    primary: informer,
    ...(options.primaryFilter ? { primaryFilter: options.primaryFilter } : {}),
    ...(options.owns ? { owns: options.owns } : {}),
    ...(options.sources ? { sources: options.sources } : {}),
    ...(options.workers ? { workers: options.workers } : {}),
    async reconcile(base) {
      const obj = informer.get(base.key);
      if (!obj) {
        invalidSpecs.delete(base.key);
        options.forget?.(base.key);
        reportConditions(base.key);
        return undefined;
      }
      const ctx: KindContext = {
        ...base,
        record: (type, reason, action, note) => {
          if (!base.signal.aborted) recorder.record(obj, type, reason, action, note);
        },
      };
      if (obj.metadata.deletionTimestamp) {
        options.forget?.(base.key);
        reportConditions(base.key);
        if (finalizer && hasFinalizer(obj, finalizer.name)) {
          try {
            await finalizer.finalize(ctx, obj);
          } catch (err) {
            // Deletion must never wait forever on one attempt: every failure here is tried again.
            if (err instanceof TerminalError) throw new Error(`finalize: ${err.message}`);
            throw err;
          }
          base.signal.throwIfAborted();
          await setFinalizer(manager.client, obj, finalizer.name, false);
        }
        return undefined;
      }
      // A spec the schema refused is refused again until it changes: nothing else can mend it.
      const generation = `${obj.metadata.uid}/${obj.metadata.generation}`;
      if (invalidSpecs.get(base.key) === generation) return undefined;
      if (finalizer && !hasFinalizer(obj, finalizer.name)) {
        base.signal.throwIfAborted();
        await setFinalizer(manager.client, obj, finalizer.name, true);
      }
      try {
        let parsed = obj as Parsed<T, Spec>;
        if (options.spec) {
          // The CRD's schema refuses such objects; this guards against a CRD older than the operator.
          const result = options.spec.safeParse(obj.spec);
          if (!result.success) throw new TerminalError('InvalidSpec', specProblems(result.error));
          parsed = { ...obj, spec: result.data };
        }
        const result = await options.reconcile(ctx, parsed);
        invalidSpecs.delete(base.key);
        const before = (obj.status as StatusBase | undefined)?.conditions;
        if (result?.status !== undefined && (await writeKindStatus(base.signal, obj, result.status))) {
          for (const e of conditionEvents(before, result.status.conditions, options.events ?? []))
            ctx.record(e.type, e.reason, e.action, e.note);
        }
        // No status from the reconcile (a verdict awaited, or recorded already): what the object holds stands.
        reportConditions(base.key, result?.status?.conditions ?? before);
        return result?.requeueAfterMs === undefined ? undefined : { requeueAfterMs: result.requeueAfterMs };
      } catch (err) {
        const told = err instanceof TerminalError || err instanceof ReportedError;
        if (!told || base.signal.aborted) throw err;
        // One Warning with the reason and what to fix; the other conditions' move to Unknown is no news.
        const failed = failureStatus<Status>(obj, err, base.now());
        const wrote = await writeKindStatus(base.signal, obj, failed);
        reportConditions(base.key, failed.conditions);
        if (wrote || !hasStatus) ctx.record('Warning', err.reason, 'Reconcile', err.message);
        if (err instanceof TerminalError && err.reason === 'InvalidSpec')
          invalidSpecs.set(base.key, generation);
        // A ReportedError goes on to the controller and is retried with backoff; a TerminalError is not.
        throw err;
      }
    },
  });
}
