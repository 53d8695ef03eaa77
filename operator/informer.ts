import { type Clock, systemClock } from './clock.ts';
import { internStrings } from './intern.ts';
import { ApiError, isGone, type KubeClient, type WatchEvent } from './kube/client.ts';
import { type KubeObject, objectKey } from './kube/types.ts';
import { type Logger, silentLogger } from './log.ts';

export type InformerEventType = 'added' | 'updated' | 'deleted' | 'resync';
export interface InformerEvent<T extends KubeObject> {
  type: InformerEventType;
  object: T;
  old?: T;
}
export type InformerHandler<T extends KubeObject> = (event: InformerEvent<T>) => void;

/** Returns the index values of an object (for example the uid of its controlling owner). */
export type IndexFunction<T extends KubeObject> = (obj: T) => string[];

export interface InformerOptions<T extends KubeObject> {
  client: KubeClient;
  apiVersion: string;
  kind: string;
  /** Only this namespace; all namespaces when omitted. */
  namespace?: string;
  labelSelector?: string;
  /** Every resyncMs each cached object is handed to the handlers again (0: never). */
  resyncMs?: number;
  indexers?: Record<string, IndexFunction<T>>;
  /** Applied to every object before it is cached; the default drops managedFields to save memory. */
  transform?: (obj: T) => T;
  pageSize?: number;
  clock?: Clock;
  log?: Logger;
  /** Reconnect backoff after errors: initial, doubled per failure, capped, with full jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** Random in [0, 1), injected for tests. */
  random?: () => number;
  /** Lists and watches metadata only (PartialObjectMetadata): for caches that need to know of changes, not data. */
  metadataOnly?: boolean;
  /** A watch that has sent nothing (no event, no bookmark) this much past its own time-out is reopened. */
  silenceGraceMs?: number;
}

export interface InformerStats {
  lists: number;
  watches: number;
  errors: number;
  /** Watches found silent past their time-out and reopened. */
  silentWatches: number;
  lastError?: string;
}

export interface Informer<T extends KubeObject> {
  readonly apiVersion: string;
  readonly kind: string;
  start(): void;
  stop(): Promise<void>;
  hasSynced(): boolean;
  /** Resolves when the first list is in the cache. */
  synced(): Promise<void>;
  get(key: string): T | undefined;
  list(namespace?: string): T[];
  byIndex(index: string, value: string): T[];
  /** Adds indexes before start, so controllers sharing an informer can each index it their way. */
  addIndexers(indexers: Record<string, IndexFunction<T>>): void;
  /** Adds a handler; it is first told of every object already cached. */
  addHandler(handler: InformerHandler<T>): () => void;
  size(): number;
  stats(): InformerStats;
  /**
   * False when the list/watch loop has made no progress (no list, event, reconnect or error) for
   * wedgedAfterMs: the loop itself is stuck, which only a restart mends. An API server that is down
   * is not this: the loop keeps trying and turning.
   */
  healthy(wedgedAfterMs: number): boolean;
}

const stripManagedFields = <T extends KubeObject>(obj: T): T => {
  if (obj.metadata.managedFields) delete obj.metadata.managedFields;
  return obj;
};

class WatchExpired extends Error {}

/**
 * An informer with client-go's reflector guarantees: list, then watch from the list's resourceVersion;
 * relist on 410 Gone; reconnect after any error with jittered backoff; resync periodically; report when
 * the first list is done. A relist compares against the cache and reports every object that vanished
 * while the watch was down as deleted, so no event is lost silently.
 */
export function createInformer<T extends KubeObject>(options: InformerOptions<T>): Informer<T> {
  const { client, apiVersion, kind } = options;
  const clock = options.clock ?? systemClock;
  const log = (options.log ?? silentLogger).child({ informer: `${kind}.${apiVersion}` });
  const transform = options.transform ?? stripManagedFields;
  const pageSize = options.pageSize ?? 100;
  // client-go starts at 800 ms too but caps at 30 s; capped at 4 s, the caches are fresh again within
  // seconds of an API server's return, for a few requests a second (one per informer) while it is down.
  const backoff = options.backoff ?? { initialMs: 800, maxMs: 4_000 };
  const random = options.random ?? Math.random;
  const indexers: Record<string, IndexFunction<T>> = { ...options.indexers };
  const store = new Map<string, T>();
  const indexes = new Map<string, Map<string, Set<string>>>();
  for (const name of Object.keys(indexers)) indexes.set(name, new Map());
  const handlers = new Set<InformerHandler<T>>();
  const stats: InformerStats = { lists: 0, watches: 0, errors: 0, silentWatches: 0 };
  const silenceGraceMs = options.silenceGraceMs ?? 60_000;
  // When the loop last turned: a list, a watch event, a reconnect, an error.
  let progressAt = clock.now();
  const progressed = () => {
    progressAt = clock.now();
  };

  let started = false;
  let stopped = false;
  let hasSynced = false;
  let resolveSynced: () => void = () => {};
  const syncedPromise = new Promise<void>((resolve) => {
    resolveSynced = resolve;
  });
  let abort: AbortController | undefined;
  let loop: Promise<void> | undefined;
  let resyncTimer: unknown;
  let wake: (() => void) | undefined;

  const emit = (event: InformerEvent<T>) => {
    if (stopped) return;
    for (const handler of handlers) {
      try {
        handler(event);
      } catch (err) {
        log.error({ err }, 'informer handler threw');
      }
    }
  };

  const unindex = (key: string, obj: T) => {
    for (const [name, fn] of Object.entries(indexers)) {
      const index = indexes.get(name) as Map<string, Set<string>>;
      for (const value of fn(obj)) {
        const keys = index.get(value);
        keys?.delete(key);
        if (keys?.size === 0) index.delete(value);
      }
    }
  };
  const reindex = (key: string, obj: T) => {
    for (const [name, fn] of Object.entries(indexers)) {
      const index = indexes.get(name) as Map<string, Set<string>>;
      for (const value of fn(obj)) {
        const keys = index.get(value) ?? new Set<string>();
        keys.add(key);
        index.set(value, keys);
      }
    }
  };

  const put = (obj: T): T | undefined => {
    internStrings(obj);
    const key = objectKey(obj);
    const old = store.get(key);
    if (old) unindex(key, old);
    store.set(key, obj);
    reindex(key, obj);
    return old;
  };
  const remove = (key: string): T | undefined => {
    const old = store.get(key);
    if (old) {
      unindex(key, old);
      store.delete(key);
    }
    return old;
  };

  const listAll = async (): Promise<{ items: T[]; resourceVersion: string }> => {
    const items: T[] = [];
    let continueToken: string | undefined;
    let resourceVersion = '';
    do {
      const page = await client.list<T>(apiVersion, kind, {
        namespace: options.namespace,
        labelSelector: options.labelSelector,
        limit: pageSize,
        continue: continueToken,
        ...(options.metadataOnly ? { metadataOnly: true } : {}),
      });
      progressed();
      for (const item of page.items) items.push(transform(item));
      continueToken = page.continue || undefined;
      resourceVersion = page.resourceVersion;
    } while (continueToken);
    return { items, resourceVersion };
  };

  const relist = async (): Promise<string> => {
    stats.lists++;
    const { items, resourceVersion } = await listAll();
    const seen = new Set<string>();
    for (const obj of items) {
      const key = objectKey(obj);
      seen.add(key);
      const old = put(obj);
      if (!old) emit({ type: 'added', object: obj });
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) {
        emit({ type: 'updated', object: obj, old });
      }
    }
    for (const key of [...store.keys()]) {
      if (seen.has(key)) continue;
      const old = remove(key);
      if (old) emit({ type: 'deleted', object: old });
    }
    if (!hasSynced) {
      hasSynced = true;
      resolveSynced();
      log.debug({ objects: store.size }, 'cache synced');
    }
    return resourceVersion;
  };

  const handleWatchEvent = (event: WatchEvent, state: { resourceVersion: string; lastEventAt: number }) => {
    state.lastEventAt = clock.now();
    progressed();
    if (event.type === 'ERROR') {
      const status = event.object as unknown as { code?: number; reason?: string; message?: string };
      if (status.code === 410) throw new WatchExpired(status.message ?? 'resource version too old');
      throw new ApiError(status.code ?? 500, status.reason ?? 'WatchError', status.message ?? 'watch error');
    }
    const obj = event.object as T;
    if (obj.metadata?.resourceVersion) state.resourceVersion = obj.metadata.resourceVersion;
    if (event.type === 'BOOKMARK') return;
    obj.apiVersion = apiVersion;
    obj.kind = kind;
    if (event.type === 'DELETED') {
      const old = remove(objectKey(obj));
      emit({ type: 'deleted', object: transform(obj), ...(old ? { old } : {}) });
      return;
    }
    const cached = transform(obj);
    const old = put(cached);
    emit(old ? { type: 'updated', object: cached, old } : { type: 'added', object: cached });
  };

  const watchFrom = async (resourceVersion: string): Promise<string> => {
    const state = { resourceVersion, lastEventAt: clock.now() };
    // Discovery runs here, inside the retry loop, so a kind not (yet) served is retried, not fatal.
    const path = client.path(await client.resource(apiVersion, kind), options.namespace);
    // stop() may have come while discovery or the list ran: open no watch that nobody would abort.
    if (stopped) return resourceVersion;
    const watchAbort = new AbortController();
    abort = watchAbort;
    stats.watches++;
    progressed();
    // The server ends each watch after timeoutSeconds; spreading them keeps reconnects from bunching up.
    const timeoutSeconds = Math.floor(300 + random() * 300);
    // Bookmarks come at least once a minute: a watch silent well past its own end is wedged (a
    // half-open connection), and is cut and reopened from the last resourceVersion seen.
    const silenceLimitMs = timeoutSeconds * 1000 + silenceGraceMs;
    let silent = false;
    const checkSilence = () => {
      if (watchAbort.signal.aborted) return;
      const quietMs = clock.now() - state.lastEventAt;
      if (quietMs >= silenceLimitMs) {
        silent = true;
        stats.silentWatches++;
        watchAbort.abort(new Error(`the watch sent nothing for ${Math.round(quietMs / 1000)} s`));
        return;
      }
      silenceTimer = clock.setTimeout(checkSilence, silenceLimitMs - quietMs);
    };
    let silenceTimer = clock.setTimeout(checkSilence, silenceLimitMs);
    try {
      await client.watch(
        path,
        {
          resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds,
          labelSelector: options.labelSelector,
        },
        (event) => handleWatchEvent(event, state),
        watchAbort.signal,
        options.metadataOnly ? { metadataOnly: true } : {},
      );
      if (silent) throw new Error(`the watch sent nothing past its ${timeoutSeconds} s; reopened`);
    } catch (err) {
      const failure = silent
        ? new Error(`the watch sent nothing past its ${timeoutSeconds} s; reopened`)
        : err;
      // Events handled before the failure still count: resume after the last one.
      (failure as { resourceVersion?: string }).resourceVersion = state.resourceVersion;
      throw failure;
    } finally {
      clock.clearTimeout(silenceTimer);
    }
    progressed();
    return state.resourceVersion;
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const handle = clock.setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clock.clearTimeout(handle);
        wake = undefined;
        resolve();
      };
    });

  const run = async () => {
    let resourceVersion: string | undefined;
    let failures = 0;
    // 410s in a row with no watch lasting in between: each relist waits longer, so a storm is paced.
    let expiries = 0;
    const delay = (n: number, maxMs = backoff.maxMs) =>
      Math.min(maxMs, backoff.initialMs * 2 ** (n - 1)) * (0.5 + random() * 0.5);
    while (!stopped) {
      try {
        if (resourceVersion === undefined) resourceVersion = await relist();
        if (stopped) break;
        resourceVersion = await watchFrom(resourceVersion);
        failures = 0;
        expiries = 0;
      } catch (err) {
        if (stopped) break;
        progressed();
        const resumeFrom = (err as { resourceVersion?: string }).resourceVersion;
        if (resumeFrom) resourceVersion = resumeFrom;
        if (err instanceof WatchExpired || isGone(err)) {
          resourceVersion = undefined;
          expiries++;
          if (expiries === 1) {
            log.info({ reason: (err as Error).message }, 'watch expired; listing again');
            continue;
          }
          // Relists of a large cache cost the API server most: these keep client-go's 30 s cap.
          const waitMs = delay(expiries - 1, Math.max(backoff.maxMs, 30_000));
          log.warn(
            { expiries, retryInMs: Math.round(waitMs) },
            'watch expired again at once; pacing the relists',
          );
          await sleep(waitMs);
          continue;
        }
        failures++;
        stats.errors++;
        stats.lastError = (err as Error).message;
        const delayMs = delay(failures);
        log.warn(
          { err: (err as Error).message, failures, retryInMs: Math.round(delayMs) },
          'list/watch failed',
        );
        await sleep(delayMs);
      }
    }
  };

  const scheduleResync = () => {
    if (!options.resyncMs || stopped) return;
    resyncTimer = clock.setTimeout(() => {
      if (hasSynced) for (const obj of store.values()) emit({ type: 'resync', object: obj });
      scheduleResync();
    }, options.resyncMs);
  };

  return {
    apiVersion,
    kind,
    start() {
      if (started) return;
      started = true;
      loop = run();
      scheduleResync();
    },
    async stop() {
      stopped = true;
      if (resyncTimer !== undefined) clock.clearTimeout(resyncTimer);
      abort?.abort();
      wake?.();
      await loop;
    },
    addIndexers(more) {
      if (started) throw new Error(`indexers for ${kind} added after the informer started`);
      for (const [name, fn] of Object.entries(more)) {
        if (indexers[name] && indexers[name] !== fn)
          throw new Error(`index ${name} of ${kind} defined twice`);
        indexers[name] = fn;
        indexes.set(name, new Map());
      }
    },
    hasSynced: () => hasSynced,
    synced: () => syncedPromise,
    get: (key) => store.get(key),
    list(namespace) {
      const all = [...store.values()];
      return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
    },
    byIndex(index, value) {
      const keys = indexes.get(index)?.get(value);
      if (!keys) return [];
      return [...keys].map((k) => store.get(k)).filter((o): o is T => o !== undefined);
    },
    addHandler(handler) {
      handlers.add(handler);
      // A handler that joins a running informer first hears of everything already cached, as in client-go.
      for (const obj of store.values()) handler({ type: 'added', object: obj });
      return () => handlers.delete(handler);
    },
    size: () => store.size,
    stats: () => ({ ...stats }),
    healthy: (wedgedAfterMs) => !started || stopped || clock.now() - progressAt < wedgedAfterMs,
  };
}
