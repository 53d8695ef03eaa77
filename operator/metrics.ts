import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ClientObserver } from './kube/client.ts';
import type { QueueObserver } from './workqueue.ts';

export type ReconcileOutcome = 'success' | 'error' | 'requeue' | 'requeue_after';

/** One controller's view of the shared metrics. */
export interface ControllerScopedMetrics {
  queue: QueueObserver;
  /** A terminal error is an error that is not retried; it is counted both ways, as controller-runtime does. */
  reconciled(outcome: ReconcileOutcome, options?: { terminal?: boolean }): void;
  reconcileSeconds(seconds: number): void;
  activeWorkers(delta: number): void;
  maxWorkers(n: number): void;
}

export interface ControllerMetrics {
  registry: Registry;
  forController(name: string): ControllerScopedMetrics;
  leader(name: string, leading: boolean): void;
  /** The API client's requests and rate-limiter waits (client-go's rest_client_* series). */
  client: ClientObserver;
  /** Reports each informer's cached object count when metrics are scraped. */
  cacheSizes(read: () => Array<{ kind: string; objects: number }>): void;
  /**
   * Reports an object's status conditions as aurora_status_condition series, replacing what was
   * reported for it before; undefined forgets the object.
   */
  conditions(
    object: { kind: string; namespace: string; name: string },
    conditions: ReadonlyArray<{ type: string; status: string; reason?: string }> | undefined,
  ): void;
}

/**
 * Metrics named like controller-runtime's, so dashboards and alerts written for Go operators work on
 * Aurora unchanged. The runtime's labels carry controller, queue and informer names and outcomes; a
 * kind's own metrics (registered on the same registry) may name the object's namespace and name, never
 * anything from its spec or status values.
 */
export function createMetrics(options: { defaultMetrics?: boolean } = {}): ControllerMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const reconcileTotal = new Counter({
    name: 'controller_runtime_reconcile_total',
    help: 'Total number of reconciliations per controller',
    labelNames: ['controller', 'result'],
    registers: [registry],
  });
  const reconcileErrors = new Counter({
    name: 'controller_runtime_reconcile_errors_total',
    help: 'Total number of reconciliation errors per controller',
    labelNames: ['controller'],
    registers: [registry],
  });
  const terminalErrors = new Counter({
    name: 'controller_runtime_terminal_reconcile_errors_total',
    help: 'Total number of terminal reconciliation errors per controller',
    labelNames: ['controller'],
    registers: [registry],
  });
  const reconcileTime = new Histogram({
    name: 'controller_runtime_reconcile_time_seconds',
    help: 'Length of time per reconciliation per controller',
    labelNames: ['controller'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const activeWorkers = new Gauge({
    name: 'controller_runtime_active_workers',
    help: 'Number of currently used workers per controller',
    labelNames: ['controller'],
    registers: [registry],
  });
  const maxWorkers = new Gauge({
    name: 'controller_runtime_max_concurrent_reconciles',
    help: 'Maximum number of concurrent reconciles per controller',
    labelNames: ['controller'],
    registers: [registry],
  });
  const depth = new Gauge({
    name: 'workqueue_depth',
    help: 'Current depth of workqueue',
    labelNames: ['name', 'controller'],
    registers: [registry],
  });
  const adds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by workqueue',
    labelNames: ['name', 'controller'],
    registers: [registry],
  });
  const retries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue',
    labelNames: ['name', 'controller'],
    registers: [registry],
  });
  const queueDuration = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested',
    labelNames: ['name', 'controller'],
    buckets: [0.001, 0.01, 0.1, 1, 10, 100, 1000],
    registers: [registry],
  });
  const leaderStatus = new Gauge({
    name: 'leader_election_master_status',
    help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
    labelNames: ['name'],
    registers: [registry],
  });
  const statusCondition = new Gauge({
    name: 'aurora_status_condition',
    help: "1 for each condition of an Aurora object's status, with its type, status and reason",
    labelNames: ['kind', 'namespace', 'name', 'type', 'status', 'reason'],
    registers: [registry],
  });
  const clientRequests = new Counter({
    name: 'rest_client_requests_total',
    help: 'Number of HTTP requests, partitioned by status code and method',
    labelNames: ['code', 'method'],
    registers: [registry],
  });
  const rateLimiterWait = new Histogram({
    name: 'rest_client_rate_limiter_duration_seconds',
    help: 'Client side rate limiter latency in seconds, by verb',
    labelNames: ['verb'],
    buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
    registers: [registry],
  });
  type ConditionLabels = Record<'kind' | 'namespace' | 'name' | 'type' | 'status' | 'reason', string>;
  // What each object reported last, so a condition that changed or went leaves no series behind.
  const reported = new Map<string, ConditionLabels[]>();

  return {
    registry,
    forController(controller) {
      const q = { name: controller, controller };
      // Series exist from the start, so dashboards show 0 rather than nothing for an idle controller.
      depth.set(q, 0);
      adds.inc(q, 0);
      retries.inc(q, 0);
      reconcileErrors.inc({ controller }, 0);
      terminalErrors.inc({ controller }, 0);
      activeWorkers.set({ controller }, 0);
      return {
        queue: {
          depth: (d) => depth.set(q, d),
          added: () => adds.inc(q),
          retried: () => retries.inc(q),
          queued: (s) => queueDuration.observe(q, s),
        },
        reconciled(outcome, options = {}) {
          reconcileTotal.inc({ controller, result: outcome });
          if (outcome === 'error') reconcileErrors.inc({ controller });
          if (options.terminal) terminalErrors.inc({ controller });
        },
        reconcileSeconds: (s) => reconcileTime.observe({ controller }, s),
        activeWorkers: (delta) => activeWorkers.inc({ controller }, delta),
        maxWorkers: (n) => maxWorkers.set({ controller }, n),
      };
    },
    leader: (name, leading) => leaderStatus.set({ name }, leading ? 1 : 0),
    client: {
      requested: (method, code) => clientRequests.inc({ code, method }),
      waited: (verb, seconds) => rateLimiterWait.observe({ verb }, seconds),
    },
    cacheSizes(read) {
      new Gauge({
        name: 'aurora_cache_objects',
        help: 'Objects held in the operator cache per informer kind',
        labelNames: ['kind'],
        registers: [registry],
        collect() {
          this.reset();
          for (const { kind, objects } of read()) this.inc({ kind }, objects);
        },
      });
    },
    conditions(object, conditions) {
      const key = `${object.kind}/${object.namespace}/${object.name}`;
      for (const labels of reported.get(key) ?? []) statusCondition.remove(labels);
      if (conditions === undefined) {
        reported.delete(key);
        return;
      }
      const now = conditions.map((c) => ({
        ...object,
        type: c.type,
        status: c.status,
        reason: c.reason ?? '',
      }));
      for (const labels of now) statusCondition.set(labels, 1);
      reported.set(key, now);
    },
  };
}
