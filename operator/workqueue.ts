import { type Clock, systemClock } from './clock.ts';

/** Per-key exponential backoff: baseDelayMs · 2^failures, capped at maxDelayMs (client-go's defaults). */
export interface BackoffPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultBackoff: BackoffPolicy = { baseDelayMs: 5, maxDelayMs: 1_000_000 };

export function backoffDelayMs(failures: number, policy: BackoffPolicy = defaultBackoff): number {
  // 2^failures overflows to Infinity long before it matters; the cap keeps it finite.
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** failures);
}

/** Observations the queue reports, so metrics stay out of the queue's logic. */
export interface QueueObserver {
  depth?(depth: number): void;
  added?(): void;
  retried?(): void;
  /** How long a key waited between becoming ready and being handed to a worker. */
  queued?(seconds: number): void;
}

/**
 * Why a key is queued. `prompt`: something changed (an event, a retry after a failure). `routine`: the
 * clock asked for a look (requeueAfter). Prompt keys go first, so a spec change is not stuck behind
 * hundreds of periodic looks; routine keys still get every `routineShare`-th turn, so none starves.
 */
export type Priority = 'prompt' | 'routine';

/** Under a backlog of prompt keys, every this many-th key handed out is a routine one (when any wait). */
export const routineShare = 4;

export interface WorkQueue {
  /**
   * Makes key ready now. A key already waiting is not queued twice; a routine key added again as
   * prompt moves ahead.
   */
  add(key: string, priority?: Priority): void;
  /** Makes key ready after delayMs; an earlier pending time for the same key wins. */
  addAfter(key: string, delayMs: number, priority?: Priority): void;
  /** Requeues key after its backoff, and counts the failure. */
  addRateLimited(key: string): void;
  /** Clears key's failure count (after a success). */
  forget(key: string): void;
  failures(key: string): number;
  /** The next ready key, or undefined once the queue has shut down. */
  get(): Promise<string | undefined>;
  /** Marks key finished; if it was added again meanwhile, it becomes ready again. */
  done(key: string): void;
  /** Ready keys (not those waiting for a delay, not those being processed). */
  len(): number;
  /** Stops handing out keys and drops those not started; resolves when every key in progress is done. */
  shutdown(): Promise<void>;
  isShuttingDown(): boolean;
}

interface DelayedEntry {
  readyAt: number;
  key: string;
}

/** A key's place in a ready list: live while it is the key's newest place (its sequence number). */
interface ReadyEntry {
  key: string;
  seq: number;
}

/** A FIFO that may hold stale entries (skipped when taken), with amortised O(1) removal. */
class ReadyFifo {
  private items: ReadyEntry[] = [];
  private head = 0;
  push(entry: ReadyEntry) {
    this.items.push(entry);
  }
  /** The first entry for which live() holds, dropping the stale ones before it; undefined if none. */
  peek(live: (entry: ReadyEntry) => boolean): string | undefined {
    while (this.head < this.items.length) {
      const entry = this.items[this.head] as ReadyEntry;
      if (live(entry)) return entry.key;
      this.shift();
    }
    return undefined;
  }
  shift() {
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
  }
  clear() {
    this.items = [];
    this.head = 0;
  }
}

/**
 * A work queue with client-go's guarantees: one key is never processed by two workers at once, repeated
 * adds merge, failures back off per key, and delayed adds keep the earliest time asked for.
 */
export function createWorkQueue(
  options: { clock?: Clock; backoff?: BackoffPolicy; observer?: QueueObserver } = {},
): WorkQueue {
  const clock = options.clock ?? systemClock;
  const backoff = options.backoff ?? defaultBackoff;
  const observer = options.observer ?? {};
  const lists: Record<Priority, ReadyFifo> = { prompt: new ReadyFifo(), routine: new ReadyFifo() };
  /** Each ready key's newest place in a list; older places of the key are stale. */
  const placeOf = new Map<string, number>();
  let places = 0;
  /** Keys ready and not handed out (each counted once, whatever stale entries the lists hold). */
  let readyCount = 0;
  /** Prompt keys handed out in a row while routine ones waited. */
  let promptStreak = 0;
  const readySince = new Map<string, number>();
  /** Keys added and not yet handed out, with the priority they wait at. */
  const dirty = new Map<string, Priority>();
  const processing = new Set<string>();
  const failureCounts = new Map<string, number>();
  const waiters: Array<(key: string | undefined) => void> = [];
  let shuttingDown = false;
  const drained: Array<() => void> = [];

  // Delayed keys: a min-heap on readyAt with lazy deletion against the map of each key's current time
  // (and the priority it will be added at: the stronger of those asked for).
  const heap: DelayedEntry[] = [];
  const delayedAt = new Map<string, { readyAt: number; priority: Priority }>();
  let timer: unknown;
  let timerAt = Number.POSITIVE_INFINITY;

  const readyLength = () => readyCount;
  const report = () => observer.depth?.(readyLength());

  const push = (key: string, priority: Priority) => {
    readySince.set(key, clock.now());
    const waiter = waiters.shift();
    if (waiter) {
      hand(waiter, key);
      return;
    }
    place(key, priority);
    readyCount++;
    report();
  };

  const place = (key: string, priority: Priority) => {
    const seq = ++places;
    placeOf.set(key, seq);
    lists[priority].push({ key, seq });
  };
  const live = (entry: ReadyEntry) => placeOf.get(entry.key) === entry.seq;
  const takeReady = (): string | undefined => {
    const prompt = lists.prompt.peek(live);
    const routine = lists.routine.peek(live);
    const useRoutine = routine !== undefined && (prompt === undefined || promptStreak >= routineShare - 1);
    const key = useRoutine ? routine : prompt;
    if (key === undefined) return undefined;
    lists[useRoutine ? 'routine' : 'prompt'].shift();
    promptStreak = useRoutine || routine === undefined ? 0 : promptStreak + 1;
    readyCount--;
    return key;
  };

  const hand = (waiter: (key: string | undefined) => void, key: string) => {
    dirty.delete(key);
    placeOf.delete(key);
    processing.add(key);
    observer.queued?.((clock.now() - (readySince.get(key) ?? clock.now())) / 1000);
    readySince.delete(key);
    waiter(key);
  };

  const add = (key: string, priority: Priority = 'prompt') => {
    if (shuttingDown) return;
    const waiting = dirty.get(key);
    if (waiting !== undefined) {
      if (waiting === 'routine' && priority === 'prompt') {
        // Moves ahead: the routine entry goes stale, and the key is still counted once.
        dirty.set(key, 'prompt');
        if (!processing.has(key)) place(key, 'prompt');
      }
      return;
    }
    observer.added?.();
    dirty.set(key, priority);
    if (!processing.has(key)) push(key, priority);
  };

  const heapPush = (entry: DelayedEntry) => {
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as DelayedEntry).readyAt <= entry.readyAt) break;
      heap[i] = heap[parent] as DelayedEntry;
      i = parent;
    }
    heap[i] = entry;
  };

  const heapPop = (): DelayedEntry | undefined => {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let smallest = i;
        const at = (k: number) => (k === i ? last.readyAt : (heap[k] as DelayedEntry).readyAt);
        if (l < heap.length && at(l) < at(smallest)) smallest = l;
        if (r < heap.length && at(r) < at(smallest)) smallest = r;
        if (smallest === i) break;
        heap[i] = heap[smallest] as DelayedEntry;
        i = smallest;
      }
      heap[i] = last;
    }
    return top;
  };

  const fireDue = () => {
    timer = undefined;
    timerAt = Number.POSITIVE_INFINITY;
    const now = clock.now();
    while (heap.length > 0 && (heap[0] as DelayedEntry).readyAt <= now) {
      const entry = heapPop() as DelayedEntry;
      const pending = delayedAt.get(entry.key);
      if (pending?.readyAt !== entry.readyAt) continue;
      delayedAt.delete(entry.key);
      add(entry.key, pending.priority);
    }
    arm();
  };

  const arm = () => {
    const next = heap[0];
    if (!next || shuttingDown) return;
    if (next.readyAt >= timerAt) return;
    if (timer !== undefined) clock.clearTimeout(timer);
    timerAt = next.readyAt;
    timer = clock.setTimeout(fireDue, Math.max(0, next.readyAt - clock.now()));
  };

  const addAfter = (key: string, delayMs: number, priority: Priority = 'prompt') => {
    if (shuttingDown) return;
    if (delayMs <= 0) {
      add(key, priority);
      return;
    }
    const readyAt = clock.now() + delayMs;
    const current = delayedAt.get(key);
    const stronger: Priority = priority === 'prompt' || current?.priority === 'prompt' ? 'prompt' : 'routine';
    if (current !== undefined && current.readyAt <= readyAt) {
      current.priority = stronger;
      return;
    }
    delayedAt.set(key, { readyAt, priority: stronger });
    heapPush({ key, readyAt });
    arm();
  };

  return {
    add,
    addAfter,
    addRateLimited(key) {
      const failures = failureCounts.get(key) ?? 0;
      failureCounts.set(key, failures + 1);
      observer.retried?.();
      addAfter(key, backoffDelayMs(failures, backoff));
    },
    forget(key) {
      failureCounts.delete(key);
    },
    failures: (key) => failureCounts.get(key) ?? 0,
    get() {
      const key = takeReady();
      if (key !== undefined) {
        report();
        return new Promise((resolve) => hand(resolve, key));
      }
      if (shuttingDown) return Promise.resolve(undefined);
      return new Promise((resolve) => waiters.push(resolve));
    },
    done(key) {
      processing.delete(key);
      const again = dirty.get(key);
      if (again !== undefined && !shuttingDown) push(key, again);
      if (shuttingDown && processing.size === 0) for (const resolve of drained.splice(0)) resolve();
    },
    len: readyLength,
    async shutdown() {
      shuttingDown = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      // Keys not yet started are dropped: whoever runs next lists everything again anyway.
      lists.prompt.clear();
      lists.routine.clear();
      placeOf.clear();
      readyCount = 0;
      dirty.clear();
      report();
      for (const waiter of waiters.splice(0)) waiter(undefined);
      if (processing.size === 0) return;
      await new Promise<void>((resolve) => drained.push(resolve));
    },
    isShuttingDown: () => shuttingDown,
  };
}
