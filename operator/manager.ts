import { type Clock, systemClock } from './clock.ts';
import { type Controller, type ControllerOptions, createController } from './controller.ts';
import { createEventRecorder, type EventRecorder } from './events.ts';
import { type HealthServer, startHealthServer } from './health.ts';
import { createInformer, type Informer, type InformerOptions } from './informer.ts';
import { createKubeClient, type KubeClient } from './kube/client.ts';
import type { KubeObject } from './kube/types.ts';
import { type LeaderElector, startLeaderElection } from './leader-election.ts';
import { defaultLeaderTiming, type LeaderTiming } from './leader-state.ts';
import type { Logger } from './log.ts';
import { type ControllerMetrics, createMetrics } from './metrics.ts';

export interface ManagerOptions {
  client: KubeClient;
  log: Logger;
  metrics?: ControllerMetrics;
  clock?: Clock;
  /** Watch only this namespace; all namespaces when omitted. */
  namespace?: string;
  /** Omit to run without leader election (a single replica, or tests). */
  leaderElection?: { namespace: string; name: string; identity: string; timing?: LeaderTiming };
  health?: { port: number; host?: string };
  resyncMs?: number;
  /** Called when the process must end (leadership lost); the default exits with code 1. */
  onFatal?: (reason: string) => void;
  identity?: string;
  /** Workers per controller, unless a controller asks for its own number. */
  workers?: number;
  /** How long stop() waits for reconciles in progress after aborting them. */
  stopTimeoutMs?: number;
}

export type ManagedControllerOptions<T extends KubeObject> = Omit<
  ControllerOptions<T>,
  'log' | 'clock' | 'metrics'
>;

export interface Manager {
  readonly client: KubeClient;
  readonly log: Logger;
  readonly metrics: ControllerMetrics;
  readonly clock: Clock;
  /** The shared informer for a kind (one per kind, namespace and selector, whoever asks). */
  informer<T extends KubeObject = KubeObject>(
    apiVersion: string,
    kind: string,
    options?: Pick<
      InformerOptions<T>,
      'labelSelector' | 'namespace' | 'indexers' | 'transform' | 'metadataOnly'
    >,
  ): Informer<T>;
  /** Registers a controller; it runs once the caches synced and this replica leads. */
  addController<T extends KubeObject>(options: ManagedControllerOptions<T>): void;
  recorder(controller: string): EventRecorder;
  /** Starts informers, probes and the election; resolves when the caches have synced. */
  start(): Promise<void>;
  stop(): Promise<void>;
  isLeader(): boolean;
  controllersRunning(): boolean;
  healthPort(): number | undefined;
}

/** Longer than any watch's time-out and silence grace (11 min) plus the longest reconnect backoff. */
const wedgedAfterMs = 15 * 60_000;

/**
 * Runs informers on every replica, so a standby has warm caches, and starts controllers only on the
 * leader, as controller-runtime's manager does.
 */
export function createManager(options: ManagerOptions): Manager {
  const clock = options.clock ?? systemClock;
  const log = options.log;
  const metrics = options.metrics ?? createMetrics();
  const informers = new Map<string, Informer<KubeObject>>();
  const transforms = new Map<string, unknown>();
  metrics.cacheSizes(() => [...informers.values()].map((i) => ({ kind: i.kind, objects: i.size() })));
  // Each registration as a function that builds its controller, so every kind keeps its own type.
  const controllerFactories: Array<() => Controller> = [];
  const controllers: Controller[] = [];
  const recorders: EventRecorder[] = [];
  const identity = options.identity ?? options.leaderElection?.identity ?? 'aurora-operator';
  let elector: LeaderElector | undefined;
  let health: HealthServer | undefined;
  let started = false;
  let running = false;
  let stopping = false;

  const allSynced = () => [...informers.values()].every((i) => i.hasSynced());

  const startControllers = async () => {
    await Promise.all([...informers.values()].map((i) => i.synced()));
    if (stopping || running) return;
    for (const create of controllerFactories) {
      const controller = create();
      controllers.push(controller);
      controller.start();
    }
    running = true;
    log.info({ controllers: controllers.map((c) => c.name) }, 'controllers running');
  };

  const manager: Manager = {
    client: options.client,
    log,
    metrics,
    clock,
    informer<T extends KubeObject = KubeObject>(
      apiVersion: string,
      kind: string,
      opts: Pick<
        InformerOptions<T>,
        'labelSelector' | 'namespace' | 'indexers' | 'transform' | 'metadataOnly'
      > = {},
    ) {
      const namespace = opts.namespace ?? options.namespace;
      const key = [
        apiVersion,
        kind,
        namespace ?? '',
        opts.labelSelector ?? '',
        opts.metadataOnly ? 'meta' : '',
      ].join('|');
      let informer = informers.get(key);
      if (!informer) {
        if (started) throw new Error(`informer for ${kind} requested after the manager started`);
        informer = createInformer<KubeObject>({
          client: options.client,
          apiVersion,
          kind,
          clock,
          log,
          ...(namespace ? { namespace } : {}),
          ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}),
          ...(opts.metadataOnly ? { metadataOnly: true } : {}),
          ...(opts.indexers ? { indexers: opts.indexers as InformerOptions<KubeObject>['indexers'] } : {}),
          ...(opts.transform
            ? { transform: opts.transform as unknown as (obj: KubeObject) => KubeObject }
            : {}),
          ...(options.resyncMs ? { resyncMs: options.resyncMs } : {}),
        });
        informers.set(key, informer);
        transforms.set(key, opts.transform);
      } else {
        // One cache per kind and selector: a second transform would silently lose to the first.
        if (opts.transform && transforms.get(key) !== opts.transform)
          throw new Error(`informer for ${kind} requested with a different transform`);
        if (opts.indexers)
          informer.addIndexers(opts.indexers as InformerOptions<KubeObject>['indexers'] & {});
      }
      return informer as unknown as Informer<T>;
    },
    addController(c) {
      if (started) throw new Error(`controller ${c.name} added after the manager started`);
      controllerFactories.push(() =>
        createController({
          ...c,
          workers: c.workers ?? options.workers ?? 2,
          log,
          clock,
          metrics,
        }),
      );
    },
    recorder(controller) {
      const recorder = createEventRecorder({
        client: options.client,
        controller,
        instance: identity,
        clock,
        log,
      });
      recorders.push(recorder);
      return recorder;
    },
    async start() {
      started = true;
      if (options.health) {
        health = await startHealthServer({
          port: options.health.port,
          ...(options.health.host ? { host: options.health.host } : {}),
          registry: metrics.registry,
          checks: {
            // A list/watch loop that stopped turning is mended only by a restart; an API server that is down is not.
            live: () => !stopping && [...informers.values()].every((i) => i.healthy(wedgedAfterMs)),
            ready: () => {
              if (!allSynced()) return { ok: false, reason: 'caches not synced' };
              // A standby is ready with warm caches; the leader once its controllers run.
              const mustRun = elector ? elector.isLeader() : true;
              if (mustRun && !running) return { ok: false, reason: 'starting controllers' };
              return { ok: true, reason: '' };
            },
          },
        });
        log.info({ port: health.port() }, 'serving /healthz, /readyz and /metrics');
      }
      for (const informer of informers.values()) informer.start();
      if (options.leaderElection) {
        const le = options.leaderElection;
        metrics.leader(le.name, false);
        const timing = le.timing ?? defaultLeaderTiming;
        elector = startLeaderElection({
          // Lease requests time out within a retry period, so a hung API server cannot stall a renewal.
          client: createKubeClient(options.client.access, { requestTimeoutMs: timing.retryPeriodMs }),
          ...le,
          timing,
          clock,
          log,
          onStartedLeading: () => {
            metrics.leader(le.name, true);
            void startControllers();
          },
          onStoppedLeading: () => {
            metrics.leader(le.name, false);
            // Another replica may lead already: nothing in progress here may write on.
            for (const c of controllers) c.abort('leader election lost');
            (options.onFatal ?? defaultFatal)('leader election lost');
          },
        });
      } else {
        void startControllers();
      }
      await Promise.all([...informers.values()].map((i) => i.synced()));
      log.info({ informers: informers.size }, 'caches synced');
    },
    async stop() {
      stopping = true;
      await Promise.all(controllers.map((c) => c.stop(options.stopTimeoutMs)));
      running = false;
      await elector?.stop();
      await Promise.all([...informers.values()].map((i) => i.stop()));
      await Promise.all(recorders.map((r) => r.flush()));
      await health?.close();
    },
    isLeader: () => elector?.isLeader() ?? running,
    controllersRunning: () => running,
    healthPort: () => health?.port(),
  };
  return manager;
}

function defaultFatal(reason: string): never {
  // Exiting hands the lease to a standby at once; the Deployment restarts this pod as a new candidate.
  console.error(JSON.stringify({ level: 'fatal', msg: `exiting: ${reason}` }));
  process.exit(1);
}
