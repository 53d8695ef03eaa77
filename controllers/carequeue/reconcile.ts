import { Counter, Gauge, Histogram } from 'prom-client';
import { type CareQueueSpec, type CareQueueStatus, careQueueSpec } from '../../crds/carequeue.ts';
import { apiVersion, type CareQueue, type InferencePool } from '../../crds/kinds.ts';
import { rfc3339Seconds } from '../../operator/conditions.ts';
import { addKindController, type KindContext, type Parsed } from '../../operator/kind-controller.ts';
import { isNotFound } from '../../operator/kube/client.ts';
import { createSecretKeyCache } from '../../operator/kube/secrets.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import { type EventSource, watch } from '../../operator/sources.ts';
import { type CategoryStream, categoryStreams } from '../../queue/contract.ts';
import { readStreams, type StreamState } from '../../queue/observe.ts';
import {
  createRedisPool,
  type RedisPool,
  type RedisTarget,
  redisFault,
  redisFaultMessages,
  type SharedRedis,
} from '../../queue/redis.ts';
import { createStreamWaker, type StreamWaker } from '../../queue/wake.ts';
import {
  addArrivals,
  type DecisionRecord,
  readArrivals,
  recordDecision,
} from '../../state/carequeue-history.ts';
import type { StateStore } from '../../state/postgres.ts';
import { careQueueInformer, careQueueTargetIndex, careQueueTargetKey } from '../../views/carequeue.ts';
import { deploymentInformer, labelSelectorString } from '../../views/workload.ts';
import { type Decision, decideReplicas, type Recommendation, type ScaleChange } from './decide.ts';
import { bucketMs, type Forecast, forecastArrivals, forecastWindows } from './forecast.ts';
import { emptyMemory, type QueueMemory, type QueueView, viewQueue } from './observe.ts';
import {
  careQueueEvents,
  careQueueStatus,
  figureRefreshMs,
  type QueueFault,
  statusToWrite,
} from './status.ts';
import { type KnownReplicas, trustedReplicas } from './target.ts';

/** The annotation the ReplicaSet controller reads to choose which pods go first on scale-in (lower first). */
export const podDeletionCostAnnotation = 'controller.kubernetes.io/pod-deletion-cost';
/** Marks the pods whose deletion cost Aurora set, so it only ever clears its own. */
export const deletionCostByAnnotation = 'aurora.health/deletion-cost-by';
const fieldManager = 'aurora-carequeue';

/** The look at a queue when nothing wakes it sooner. */
export const safetyPollMs = 5_000;
/** Wakes of one queue closer together than this are merged into one look after it. */
export const wakeIntervalMs = 200;
/** A forecast is read again after this long. */
const forecastRefreshMs = 60_000;
/** Arrivals are written to PostgreSQL at most this often. */
const arrivalsFlushMs = 30_000;
/**
 * A URL read from a Secret is read again after this long, or at once when Redis refuses it; queues that
 * name one Secret share each read.
 */
const secretRefreshMs = 30_000;

interface Scale {
  /** The target's generation, when read from the cache (a scale subresource carries none). */
  metadata?: { generation?: number };
  spec?: { replicas?: number };
  status?: { replicas?: number; selector?: string };
}

/** What Aurora keeps of one queue between looks, in memory: the leader's alone. */
interface QueueState {
  uid: string;
  namespace: string;
  queue: string;
  categories: string[];
  /** The target (kind/name) and its pods' selector when last seen, to clean up after a move. */
  target?: string;
  selector?: string;
  /** The streams' keys when last seen, in order: the memory below belongs to them. */
  streamKeys?: string;
  memory: QueueMemory;
  recommendations: Recommendation[];
  changes: ScaleChange[];
  breachingWhenLastSeen: boolean;
  written?: CareQueueStatus;
  lastStatusWriteMs?: number;
  lastRecordKey?: string;
  /** Server time of the first entry of a burst not yet answered by a scale-up. */
  burstStartMs?: number;
  lastScale?: CareQueueStatus['lastDecision'];
  /** The target's replicas as Aurora last knew them (its write, or a live read), to check the cache by. */
  knownReplicas?: KnownReplicas;
  redis?: { targetKey: string; shared: SharedRedis };
  forecast?: { atMs: number; value: Forecast & { bucketCount: number } };
  arrivals: Map<string, { category: string; bucketStartMs: number; arrivals: number }>;
  lastFlushMs: number;
  /** Records that could not be written yet (PostgreSQL away); written before any new one. */
  unwritten: DecisionRecord[];
}

export interface CareQueueControllerOptions {
  /** Where decisions and arrival history go; without one, decisions are only Events and status. */
  store?: StateStore;
  workers?: number;
  /** Count as Redis before 7 must (for tests of that path on a newer Redis). */
  legacyCounts?: boolean;
}

const apiVersionOf = (kind: CareQueueSpec['scaleTargetRef']['kind']) =>
  kind === 'InferencePool' ? apiVersion : 'apps/v1';

/**
 * The CareQueue controller: looks at each category's stream (counts, IDs and ages only, read inside
 * Redis), decides the consumers the waits need, and sets them through the target's scale subresource.
 * A new entry wakes it within a second; a safety poll looks every few seconds anyway. When the queue
 * cannot be seen it never removes a consumer.
 */
export function registerCareQueueController(
  manager: Manager,
  options: CareQueueControllerOptions = {},
): void {
  const queues = careQueueInformer(manager);
  const pools = manager.informer<InferencePool>(apiVersion, 'InferencePool');
  // Targets' replicas come from the caches: a live GET per look was 100 requests a second at 500 queues.
  const deployments = deploymentInformer(manager);
  const registry = manager.metrics.registry;
  const depthGauge = new Gauge({
    name: 'aurora_carequeue_depth',
    help: 'Entries of each category not yet delivered to a consumer',
    labelNames: ['namespace', 'queue', 'category'],
    registers: [registry],
  });
  const inFlightGauge = new Gauge({
    name: 'aurora_carequeue_in_flight',
    help: 'Entries of each category delivered to a consumer and not yet acknowledged',
    labelNames: ['namespace', 'queue', 'category'],
    registers: [registry],
  });
  const oldestGauge = new Gauge({
    name: 'aurora_carequeue_oldest_wait_seconds',
    help: 'How long the oldest entry of each category not yet acknowledged has waited',
    labelNames: ['namespace', 'queue', 'category'],
    registers: [registry],
  });
  const maxWaitGauge = new Gauge({
    name: 'aurora_carequeue_max_wait_seconds',
    help: 'The maximum wait of each category, for alerts on the ratio',
    labelNames: ['namespace', 'queue', 'category'],
    registers: [registry],
  });
  const replicasGauge = new Gauge({
    name: 'aurora_carequeue_replicas',
    help: 'Consumers of each queue: desired and current',
    labelNames: ['namespace', 'queue', 'state'],
    registers: [registry],
  });
  const visibleGauge = new Gauge({
    name: 'aurora_carequeue_queue_visible',
    help: '1 when the queue could be read at the last look, 0 when it could not (consumers are then never removed)',
    labelNames: ['namespace', 'queue'],
    registers: [registry],
  });
  const decisions = new Counter({
    name: 'aurora_carequeue_decisions_total',
    help: 'Changes of replicas, by direction and what held the number',
    labelNames: ['namespace', 'queue', 'direction', 'limited_by'],
    registers: [registry],
  });
  const arrivalToScale = new Histogram({
    name: 'aurora_carequeue_arrival_to_scale_seconds',
    help: 'From the first entry of a burst to the scale-up it caused being set on the target',
    labelNames: ['namespace', 'queue'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [registry],
  });

  const states = new Map<string, QueueState>();
  const secretKeys = createSecretKeyCache(manager.client, secretRefreshMs);
  let pool: RedisPool | undefined;
  const wakers = new Map<SharedRedis['client'], { waker: StreamWaker; users: number }>();
  let enqueue: ((key: string) => void) | undefined;

  // Wakes from Redis, merged per queue: the first at once, the rest at most every wakeIntervalMs.
  const lastWake = new Map<string, number>();
  const trailing = new Map<string, NodeJS.Timeout>();
  const wake = (key: string) => {
    const now = performance.now();
    const last = lastWake.get(key) ?? 0;
    if (now - last >= wakeIntervalMs) {
      lastWake.set(key, now);
      enqueue?.(key);
    } else if (!trailing.has(key)) {
      const timer = setTimeout(
        () => {
          trailing.delete(key);
          lastWake.set(key, performance.now());
          enqueue?.(key);
        },
        wakeIntervalMs - (now - last),
      );
      timer.unref();
      trailing.set(key, timer);
    }
  };

  const releaseRedis = (key: string, state: QueueState) => {
    if (!state.redis) return;
    const entry = wakers.get(state.redis.shared.client);
    entry?.waker.unwatch(key);
    if (entry && --entry.users === 0) {
      entry.waker.close();
      wakers.delete(state.redis.shared.client);
    }
    state.redis.shared.release();
    delete state.redis;
  };

  /** Redis connections and wakers live while the controller runs (on the leader), and close with it. */
  const redisLifecycle: EventSource = {
    start(push) {
      enqueue = push;
      pool = createRedisPool({ connectionName: 'aurora-operator' });
      return () => {
        enqueue = undefined;
        for (const timer of trailing.values()) clearTimeout(timer);
        trailing.clear();
        for (const [key, state] of states) releaseRedis(key, state);
        for (const { waker } of wakers.values()) waker.close();
        wakers.clear();
        pool?.close();
        pool = undefined;
        // A new leader, or this one again later, starts from what the API server and Redis say.
        states.clear();
      };
    },
  };

  const forgetCategories = (namespace: string, queue: string, categories: readonly string[]) => {
    for (const category of categories) {
      for (const g of [depthGauge, inFlightGauge, oldestGauge, maxWaitGauge])
        g.remove({ namespace, queue, category });
    }
  };
  const forgetMetrics = (namespace: string, queue: string, categories: readonly string[]) => {
    forgetCategories(namespace, queue, categories);
    for (const state of ['desired', 'current']) replicasGauge.remove({ namespace, queue, state });
    visibleGauge.remove({ namespace, queue });
  };

  /** The Redis the spec names: the URL from its Secret, and TLS with the CA from its Secret. */
  const redisTarget = async (
    namespace: string,
    spec: CareQueueSpec,
    nowMs: number,
  ): Promise<{ ok: true; target: RedisTarget } | { ok: false; fault: QueueFault }> => {
    const url = await secretKeys.read(namespace, spec.redis.urlSecretRef, nowMs);
    if (!url.ok) return { ok: false, fault: { reason: 'RedisSecretNotFound', message: url.message } };
    if (!/^rediss?:\/\/[^\s]+$/.test(url.value)) {
      return {
        ok: false,
        fault: {
          reason: 'InvalidRedisURL',
          message: `the URL in Secret ${namespace}/${spec.redis.urlSecretRef.name} (key ${spec.redis.urlSecretRef.key}) must be a redis:// or rediss:// URL`,
          blocksReady: true,
        },
      };
    }
    let ca: string | undefined;
    if (spec.redis.tls?.caSecretRef) {
      const read = await secretKeys.read(namespace, spec.redis.tls.caSecretRef, nowMs);
      if (!read.ok) return { ok: false, fault: { reason: 'RedisSecretNotFound', message: read.message } };
      ca = read.value;
    }
    return {
      ok: true,
      target: {
        url: url.value,
        ...(spec.redis.tls ? { tls: { enabled: spec.redis.tls.enabled, ...(ca ? { ca } : {}) } } : {}),
      },
    };
  };

  /** The queue's connection, shared with every queue on the same Redis, and its stream watcher. */
  const connect = (
    key: string,
    state: QueueState,
    target: RedisTarget,
    streams: readonly CategoryStream[],
  ) => {
    const targetKey = JSON.stringify(target);
    if (state.redis && state.redis.targetKey !== targetKey) releaseRedis(key, state);
    if (!state.redis) {
      if (!pool) throw new Error('the CareQueue controller is not running');
      const shared = pool.acquire(target);
      state.redis = { targetKey, shared };
      let entry = wakers.get(shared.client);
      if (!entry) {
        entry = { waker: createStreamWaker(shared.client, wake), users: 0 };
        wakers.set(shared.client, entry);
      }
      entry.users++;
    }
    wakers.get(state.redis.shared.client)?.waker.watch(
      key,
      streams.map((s) => s.streamKey),
    );
    return state.redis.shared;
  };

  /** The target's scale as the cache has it; undefined when the cache cannot say (not there yet). */
  const cachedScale = (namespace: string, spec: CareQueueSpec): Scale | undefined => {
    const { kind, name } = spec.scaleTargetRef;
    const asScale = (
      target: KubeObject,
      replicas: number | undefined,
      running: number | undefined,
      selector: string | undefined,
    ): Scale | undefined =>
      replicas === undefined
        ? undefined
        : {
            metadata: {
              ...(target.metadata.generation !== undefined ? { generation: target.metadata.generation } : {}),
            },
            spec: { replicas },
            status: {
              ...(running !== undefined ? { replicas: running } : {}),
              ...(selector ? { selector } : {}),
            },
          };
    if (kind === 'InferencePool') {
      const pool = pools.get(`${namespace}/${name}`);
      const status = pool?.status as { replicas?: number; selector?: string } | undefined;
      return pool
        ? asScale(
            pool,
            (pool.spec as { replicas?: number } | undefined)?.replicas,
            status?.replicas,
            status?.selector,
          )
        : undefined;
    }
    const deployment = deployments.get(`${namespace}/${name}`);
    return deployment
      ? asScale(
          deployment,
          deployment.spec?.replicas,
          deployment.status?.replicas,
          deployment.spec?.selector ? labelSelectorString(deployment.spec.selector) : undefined,
        )
      : undefined;
  };

  /**
   * The target's scale: from the cache when it agrees with what Aurora last knew, Aurora's own write
   * while the cache has not seen it, else (and when the cache has no answer) read live.
   */
  const currentScale = async (
    namespace: string,
    spec: CareQueueSpec,
    state: QueueState,
  ): Promise<Scale | undefined> => {
    const cached = cachedScale(namespace, spec);
    const known = state.knownReplicas;
    const trust = cached
      ? trustedReplicas(
          { replicas: cached.spec?.replicas ?? 0, generation: cached.metadata?.generation },
          known,
        )
      : 'live';
    if (trust === 'cache') {
      delete state.knownReplicas;
      return cached;
    }
    if (trust === 'known' && known) return { ...cached, spec: { replicas: known.replicas } };
    const live = await readScale(namespace, spec);
    if (live?.spec?.replicas !== undefined && cached) state.knownReplicas = { replicas: live.spec.replicas };
    else delete state.knownReplicas;
    return live;
  };

  const readScale = async (namespace: string, spec: CareQueueSpec): Promise<Scale | undefined> => {
    const { kind, name } = spec.scaleTargetRef;
    const info = await manager.client.resource(apiVersionOf(kind), kind);
    const get = () =>
      manager.client.request<Scale>('GET', manager.client.path(info, namespace, name, 'scale'));
    try {
      return await get();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      // A pool written without spec.replicas runs minReplicas, but the API server cannot serve its scale
      // subresource until the field exists. Aurora owns the field (as an HPA would), so it writes what
      // the pool runs now, once, read live (a cached copy could be older than Aurora's last scale).
      if (kind !== 'InferencePool' || !/replicas.*does not exist/i.test((err as Error).message)) throw err;
    }
    const pool = await manager.client.get<InferencePool>({ apiVersion, kind, metadata: { name, namespace } });
    if (!pool) return undefined;
    if (pool.spec?.replicas === undefined) {
      // Without the field a pool runs minReplicas (which its CRD keeps within maxReplicas).
      const running = pool.spec?.minReplicas ?? 1;
      await manager.client.patch(
        { apiVersion, kind, metadata: { name, namespace } },
        { metadata: { resourceVersion: pool.metadata.resourceVersion }, spec: { replicas: running } },
        { type: 'merge', fieldManager },
      );
    }
    return await get();
  };

  const noteWrite = (state: QueueState, decidedFrom: Scale, replicas: number) => {
    const generation = decidedFrom.metadata?.generation;
    state.knownReplicas = {
      replicas,
      ...(generation !== undefined ? { decidedAtGeneration: generation } : {}),
    };
  };

  const setScale = (namespace: string, spec: CareQueueSpec, replicas: number) =>
    manager.client.patch(
      {
        apiVersion: apiVersionOf(spec.scaleTargetRef.kind),
        kind: spec.scaleTargetRef.kind,
        metadata: { name: spec.scaleTargetRef.name, namespace },
      },
      { spec: { replicas } },
      { type: 'merge', subresource: 'scale', fieldManager },
    );

  /**
   * Before consumers are removed: pods whose consumer holds unacknowledged entries get a deletion cost
   * (the entries they hold), so the ReplicaSet removes idle ones first; pods Aurora marked before and
   * now idle go back to no cost.
   */
  const spareBusyConsumers = async (
    namespace: string,
    selector: string | undefined,
    inFlight: Map<string, number>,
  ) => {
    if (!selector) return;
    const { items } = await manager.client.list<KubeObject>('v1', 'Pod', {
      namespace,
      labelSelector: selector,
    });
    for (const pod of items) {
      const busy = inFlight.get(pod.metadata.name) ?? 0;
      const annotations = pod.metadata.annotations ?? {};
      const ours = annotations[deletionCostByAnnotation] === fieldManager;
      const want = busy > 0 ? String(Math.min(busy, 1_000_000)) : undefined;
      // Set where the consumer is busy; taken back (null removes) where Aurora set it and it is idle now.
      const change =
        want !== undefined && annotations[podDeletionCostAnnotation] !== want
          ? { [podDeletionCostAnnotation]: want, [deletionCostByAnnotation]: fieldManager }
          : want === undefined && ours
            ? { [podDeletionCostAnnotation]: null, [deletionCostByAnnotation]: null }
            : undefined;
      if (!change) continue;
      await manager.client
        .patch(
          { apiVersion: 'v1', kind: 'Pod', metadata: { name: pod.metadata.name, namespace } },
          { metadata: { annotations: change } },
          { type: 'merge', fieldManager },
        )
        .catch((err) => {
          if (!isNotFound(err)) throw err;
        });
    }
  };

  /** Writes records held back by an outage, then this one; false when PostgreSQL did not take them. */
  const writeRecords = async (state: QueueState, record?: DecisionRecord): Promise<boolean> => {
    if (record) state.unwritten.push(record);
    // Bounded: an outage of days keeps the newest records, and says so in the log.
    if (state.unwritten.length > 1000) state.unwritten.splice(0, state.unwritten.length - 1000);
    if (!options.store) {
      state.unwritten = [];
      return true;
    }
    try {
      while (state.unwritten.length > 0) {
        const next = state.unwritten[0];
        if (next) await recordDecision(options.store, next);
        state.unwritten.shift();
      }
      return true;
    } catch {
      return false;
    }
  };

  const flushArrivals = async (state: QueueState, nowMs: number, force = false) => {
    if (!options.store || state.arrivals.size === 0) return;
    if (!force && nowMs - state.lastFlushMs < arrivalsFlushMs) return;
    const counts = [...state.arrivals.values()].map((c) => ({
      ...c,
      namespace: state.namespace,
      queue: state.queue,
    }));
    try {
      await addArrivals(options.store, counts);
      state.arrivals.clear();
      state.lastFlushMs = nowMs;
    } catch {
      // Kept for the next flush; the forecast is only a little short meanwhile.
    }
  };

  const readForecast = async (
    queue: Parsed<CareQueue, CareQueueSpec>,
    state: QueueState,
    nowMs: number,
    servedPerConsumerPerSecond: number,
  ) => {
    const settings = queue.spec.forecast;
    if (!settings || !options.store) return undefined;
    if (state.forecast && nowMs - state.forecast.atMs < forecastRefreshMs) return state.forecast.value;
    try {
      const read = await readArrivals(
        options.store,
        queue.metadata.namespace ?? '',
        queue.metadata.name,
        forecastWindows(nowMs, settings.leadTimeSeconds, settings.historyWeeks),
      );
      const value = {
        ...forecastArrivals({
          nowMs,
          leadTimeSeconds: settings.leadTimeSeconds,
          historyWeeks: settings.historyWeeks,
          buckets: read.buckets,
          ...(read.historyStartMs !== undefined ? { historyStartMs: read.historyStartMs } : {}),
          servedPerConsumerPerSecond,
        }),
        bucketCount: read.bucketCount,
      };
      state.forecast = { atMs: nowMs, value };
      return value;
    } catch {
      return state.forecast?.value;
    }
  };

  addKindController(manager, {
    name: 'carequeue',
    informer: queues,
    spec: careQueueSpec,
    events: careQueueEvents,
    sources: [
      redisLifecycle,
      // A pool's bounds and replicas matter to the queues that scale it.
      watch(pools, (p) =>
        queues
          .byIndex(
            careQueueTargetIndex,
            careQueueTargetKey(p.metadata.namespace ?? '', 'InferencePool', p.metadata.name),
          )
          .map((q) => `${q.metadata.namespace}/${q.metadata.name}`),
      ),
    ],
    ...(options.workers ? { workers: options.workers } : {}),
    forget(key) {
      const state = states.get(key);
      const [namespace = '', queue = ''] = key.split('/');
      if (state) {
        void flushArrivals(state, Date.now(), true);
        // The queue is gone: the deletion costs it set on its consumers go with it.
        if (state.selector) void spareBusyConsumers(namespace, state.selector, new Map()).catch(() => {});
        releaseRedis(key, state);
        forgetMetrics(namespace, queue, state.categories);
      }
      states.delete(key);
      const timer = trailing.get(key);
      if (timer) clearTimeout(timer);
      trailing.delete(key);
      lastWake.delete(key);
    },
    async reconcile(ctx: KindContext, queue) {
      const namespace = queue.metadata.namespace ?? '';
      const name = queue.metadata.name;
      const spec = queue.spec;
      const nowMs = ctx.now().getTime();
      let state = states.get(ctx.key);
      if (!state || state.uid !== queue.metadata.uid) {
        if (state) releaseRedis(ctx.key, state);
        state = {
          uid: queue.metadata.uid ?? '',
          namespace,
          queue: name,
          categories: [],
          memory: emptyMemory(),
          recommendations: [],
          changes: [],
          breachingWhenLastSeen: false,
          arrivals: new Map(),
          lastFlushMs: nowMs,
          unwritten: [],
          ...(queue.status?.lastDecision ? { lastScale: queue.status.lastDecision } : {}),
        };
        states.set(ctx.key, state);
      }
      const streams = categoryStreams(namespace, name, spec);
      // Series of categories the spec no longer has are dropped.
      const gone = state.categories.filter((c) => !streams.some((s) => s.category === c));
      if (gone.length > 0) forgetCategories(namespace, name, gone);
      state.categories = streams.map((s) => s.category);
      // What is remembered of each stream (counters, cursors, rates) is kept by position: when the
      // streams change, it starts again rather than compare one stream with another's past.
      const streamKeys = streams.map((s) => s.streamKey).join('\n');
      if (state.streamKeys !== undefined && state.streamKeys !== streamKeys) state.memory = emptyMemory();
      state.streamKeys = streamKeys;
      const faults: QueueFault[] = [];

      // A queue that moved to another target leaves the old one's pods as it found them.
      const targetName = `${spec.scaleTargetRef.kind}/${spec.scaleTargetRef.name}`;
      if (state.target !== undefined && state.target !== targetName && state.selector) {
        await spareBusyConsumers(namespace, state.selector, new Map()).catch(() => {});
        state.selector = undefined;
      }
      if (state.target !== targetName) delete state.knownReplicas;
      state.target = targetName;
      // One queue per target: two would fight over its replicas. The oldest keeps it.
      const rival = queues
        .byIndex(
          careQueueTargetIndex,
          careQueueTargetKey(namespace, spec.scaleTargetRef.kind, spec.scaleTargetRef.name),
        )
        // A queue whose spec is invalid scales nothing, and the pool does not consume it either.
        .filter(
          (q) =>
            q.metadata.uid !== queue.metadata.uid &&
            !q.metadata.deletionTimestamp &&
            careQueueSpec.safeParse(q.spec).success,
        )
        .find(
          (q) =>
            (q.metadata.creationTimestamp ?? '') < (queue.metadata.creationTimestamp ?? '') ||
            ((q.metadata.creationTimestamp ?? '') === (queue.metadata.creationTimestamp ?? '') &&
              q.metadata.name < name),
        );
      if (rival) {
        return {
          status: careQueueStatus({
            spec,
            generation: queue.metadata.generation,
            previous: queue.status as CareQueueStatus | undefined,
            now: ctx.now(),
            faults: [
              {
                reason: 'TargetTaken',
                message: `CareQueue ${rival.metadata.name} already scales ${spec.scaleTargetRef.kind} ${spec.scaleTargetRef.name}; one set of consumers serves one queue`,
                blocksReady: true,
              },
            ],
          }),
          requeueAfterMs: safetyPollMs,
        };
      }

      // The target first: without it there is nothing to scale.
      const scale = await currentScale(namespace, spec, state);
      if (!scale) {
        faults.push({
          reason: 'TargetNotFound',
          message: `${spec.scaleTargetRef.kind} ${namespace}/${spec.scaleTargetRef.name} does not exist`,
          blocksReady: true,
        });
      }
      if (scale?.status?.selector) state.selector = scale.status.selector;
      const currentReplicas = scale?.spec?.replicas ?? 0;
      if (state.recommendations.length === 0) {
        // First look (a new leader, a restart): the scale-down window starts now, from what runs now.
        state.recommendations.push({ atMs: nowMs, replicas: currentReplicas });
      }

      // The queue: counts, IDs and ages, read inside Redis.
      let view: QueueView | undefined;
      let wakeMode: 'notifications' | 'poll' | undefined;
      // From the shared cache of Secret keys: read again now and then, at once after Redis refused it.
      const target = await redisTarget(namespace, spec, nowMs);
      if (!target.ok) {
        faults.push(target.fault);
        if (state.redis) releaseRedis(ctx.key, state);
      } else {
        const shared = connect(ctx.key, state, target.target, streams);
        wakeMode = wakers.get(shared.client)?.waker.mode();
        let states_: StreamState[] | undefined;
        try {
          states_ = await readStreams(
            shared.client,
            spec.consumerGroup,
            streams.map((s, i) => ({
              key: s.streamKey,
              ...(state?.memory.cursors[i] ? { cursor: state.memory.cursors[i] } : {}),
            })),
            { legacyCounts: options.legacyCounts ?? false },
          );
        } catch (err) {
          let fault = redisFault(err);
          if (fault === 'RedisUnreachable') fault = shared.lastFault() ?? fault;
          if (fault === 'RedisAuthenticationFailed') secretKeys.forget(namespace, spec.redis.urlSecretRef);
          faults.push({ reason: fault, message: redisFaultMessages[fault] });
        }
        if (states_) {
          view = viewQueue(streams, states_, state.memory, scale?.status?.replicas ?? currentReplicas);
          state.memory = view.memory;
          if (view.fault) {
            faults.push(
              view.fault.reason === 'GroupMissing'
                ? {
                    reason: 'GroupMissing',
                    message: `stream of ${view.fault.category} has entries but no consumer group '${spec.consumerGroup}' yet (consumers create it when they start)`,
                  }
                : {
                    reason: 'NotAStream',
                    message: `the key of ${view.fault.category} holds something other than a stream`,
                  },
            );
          }
          // Arrivals into their 5-minute buckets, for the forecast.
          for (const c of view.categories) {
            const samples = state.memory.samples[view.categories.indexOf(c)] ?? [];
            const [previous, latest] = samples.slice(-2);
            const added = previous && latest ? latest.added - previous.added : 0;
            if (added > 0 && spec.forecast) {
              const bucketStartMs = Math.floor(view.serverTimeMs / bucketMs) * bucketMs;
              const id = `${c.name}|${bucketStartMs}`;
              const entry = state.arrivals.get(id) ?? { category: c.name, bucketStartMs, arrivals: 0 };
              entry.arrivals += added;
              state.arrivals.set(id, entry);
            }
            if (c.firstArrivalMs !== undefined && state.burstStartMs === undefined)
              state.burstStartMs = c.firstArrivalMs;
          }
          await flushArrivals(state, nowMs);
        }
      }
      const observation = view?.observation;

      const forecast = await readForecast(
        queue,
        state,
        nowMs,
        observation?.servedPerConsumerPerSecond ?? spec.assumedServedPerConsumerPerSecond,
      );
      const pool =
        spec.scaleTargetRef.kind === 'InferencePool'
          ? pools.get(`${namespace}/${spec.scaleTargetRef.name}`)
          : undefined;
      const poolBounds = pool?.spec
        ? {
            min: (pool.spec as { minReplicas?: number }).minReplicas ?? 1,
            max: (pool.spec as { maxReplicas?: number }).maxReplicas ?? 10,
          }
        : undefined;

      let decision: Decision | undefined;
      let replicasNow = currentReplicas;
      if (scale) {
        decision = decideReplicas({
          spec,
          observed: observation,
          breachingWhenLastSeen: state.breachingWhenLastSeen,
          currentReplicas,
          history: state.recommendations,
          changes: state.changes,
          ...(forecast?.replicas !== undefined ? { forecastReplicas: forecast.replicas } : {}),
          ...(view?.waitingWithoutGroup ? { knownWaiting: true } : {}),
          ...(poolBounds ? { targetBounds: poolBounds } : {}),
          nowMs,
        });
        if (observation) {
          state.breachingWhenLastSeen = decision.terms.some((t) => t.breaching);
          state.recommendations.push({ atMs: nowMs, replicas: decision.recommendation });
        }
        const longestWindowMs =
          Math.max(
            spec.behavior.scaleUp.stabilizationWindowSeconds,
            spec.behavior.scaleDown.stabilizationWindowSeconds,
          ) * 1000;
        state.recommendations = state.recommendations
          .filter((r) => nowMs - r.atMs <= longestWindowMs + 1000)
          .slice(-2000);
        state.changes = state.changes.filter((c) => nowMs - c.atMs < 60_000);

        const record: DecisionRecord = {
          decidedAt: ctx.now(),
          namespace,
          queue: name,
          queueUid: queue.metadata.uid ?? '',
          generation: queue.metadata.generation ?? 0,
          fromReplicas: currentReplicas,
          toReplicas: decision.desiredReplicas,
          recommendation: decision.recommendation,
          limitedBy: decision.limitedBy,
          summary: decision.summary,
          queueSeen: observation !== undefined,
          ...(decision.servedPerConsumerPerSecond !== undefined
            ? { servedPerConsumerPerSecond: decision.servedPerConsumerPerSecond }
            : {}),
          servedRateMeasured: decision.servedRateMeasured,
          ...(forecast?.replicas !== undefined ? { forecastReplicas: forecast.replicas } : {}),
          terms: decision.terms.map((t, i) => ({
            category: t.category,
            depth: view?.categories[i]?.depth ?? 0,
            inFlight: view?.categories[i]?.pending ?? 0,
            oldestWaitSeconds: Math.round(view?.categories[i]?.oldestWaitSeconds ?? 0),
            arrivalsPerSecond: Number((view?.categories[i]?.arrivalsPerSecond ?? 0).toFixed(4)),
            backlogAhead: t.backlogAhead,
            arrivalsAheadPerSecond: Number(t.arrivalsAheadPerSecond.toFixed(4)),
            budgetSeconds: Math.round(t.budgetSeconds),
            breaching: t.breaching,
            replicas: t.replicas,
          })),
        };
        const change = decision.desiredReplicas - currentReplicas;
        const recordKey = `${decision.desiredReplicas}/${decision.limitedBy}`;
        if (change < 0) {
          // Removing consumers is done only once it is on record.
          if (!(await writeRecords(state, record))) {
            faults.push({
              reason: 'DecisionLogUnavailable',
              message:
                'PostgreSQL does not take the decision record, so consumers are not removed until it does',
            });
          } else {
            await spareBusyConsumers(namespace, scale.status?.selector, view?.inFlight ?? new Map());
            await setScale(namespace, spec, decision.desiredReplicas);
            replicasNow = decision.desiredReplicas;
            noteWrite(state, scale, replicasNow);
          }
        } else if (change > 0) {
          await setScale(namespace, spec, decision.desiredReplicas);
          replicasNow = decision.desiredReplicas;
          noteWrite(state, scale, replicasNow);
          if (state.burstStartMs !== undefined && view) {
            // On Redis's clock, like the entry's ID; the patch has just returned.
            arrivalToScale.observe(
              { namespace, queue: name },
              Math.max(0, (view.serverTimeMs + (Date.now() - nowMs) - state.burstStartMs) / 1000),
            );
          }
          if (!(await writeRecords(state, record))) {
            faults.push({
              reason: 'DecisionLogUnavailable',
              message: 'PostgreSQL does not take the decision record; it is kept and written when it does',
            });
          }
        } else if (recordKey !== state.lastRecordKey && decision.limitedBy !== 'none') {
          // A hold worth remembering (blind, breached, paused): once per kind of hold.
          await writeRecords(state, record);
        }
        state.lastRecordKey = recordKey;
        if (replicasNow !== currentReplicas) {
          state.changes.push({ atMs: nowMs, from: currentReplicas, to: replicasNow });
          state.lastScale = {
            time: rfc3339Seconds(ctx.now()),
            fromReplicas: currentReplicas,
            toReplicas: replicasNow,
            recommendation: decision.recommendation,
            limitedBy: decision.limitedBy,
            summary: decision.summary.slice(0, 1024),
          };
          const up = replicasNow > currentReplicas;
          decisions.inc({
            namespace,
            queue: name,
            direction: up ? 'up' : 'down',
            limited_by: decision.limitedBy,
          });
          ctx.record('Normal', up ? 'ScaledUp' : 'ScaledDown', 'Scale', decision.summary);
          ctx.log.info(
            {
              from: currentReplicas,
              to: replicasNow,
              recommendation: decision.recommendation,
              limitedBy: decision.limitedBy,
            },
            up ? 'scaled up' : 'scaled down',
          );
          if (up) delete state.burstStartMs;
        }
        if (view?.categories.every((c) => c.depth === 0)) delete state.burstStartMs;
      }

      // Metrics: counts and ages per category, never an entry.
      visibleGauge.set({ namespace, queue: name }, observation ? 1 : 0);
      if (view) {
        view.categories.forEach((c, i) => {
          const labels = { namespace, queue: name, category: c.name };
          depthGauge.set(labels, c.depth);
          inFlightGauge.set(labels, c.pending);
          oldestGauge.set(labels, c.oldestWaitSeconds);
          maxWaitGauge.set(labels, spec.categories[i]?.maxWaitSeconds ?? 0);
        });
      }
      if (decision) replicasGauge.set({ namespace, queue: name, state: 'desired' }, decision.desiredReplicas);
      replicasGauge.set({ namespace, queue: name, state: 'current' }, replicasNow);

      const next = careQueueStatus({
        spec,
        generation: queue.metadata.generation,
        previous: queue.status as CareQueueStatus | undefined,
        now: ctx.now(),
        ...(view ? { view } : {}),
        ...(decision ? { decision } : {}),
        ...(scale ? { currentReplicas: replicasNow } : {}),
        faults,
        ...(forecast ? { forecast } : {}),
        ...(state.lastScale ? { lastScale: state.lastScale } : {}),
        ...(wakeMode ? { wake: wakeMode } : {}),
      });
      const status = statusToWrite(
        queue.status as CareQueueStatus | undefined,
        next,
        state.lastStatusWriteMs,
        nowMs,
        figureRefreshMs(queues.size()),
      );
      if (status === next) state.lastStatusWriteMs = nowMs;
      return { status, requeueAfterMs: safetyPollMs };
    },
  });
}
