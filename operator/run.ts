import type { OperatorConfig } from './config.ts';
import { createKubeClient, type KubeClient } from './kube/client.ts';
import { loadKubeAccess } from './kube/kubeconfig.ts';
import { createLogger } from './log.ts';
import { createManager, type Manager } from './manager.ts';
import { createMetrics } from './metrics.ts';

export interface RunningOperator {
  manager: Manager;
  client: KubeClient;
  stop(): Promise<void>;
}

/**
 * Starts the runtime with the given controllers registered: probes and metrics, informers, leader
 * election, then the controllers on the leader. SIGTERM and SIGINT drain and release the lease.
 */
export async function runOperator(
  config: OperatorConfig,
  register: (manager: Manager, config: OperatorConfig) => void,
  options: { handleSignals?: boolean } = {},
): Promise<RunningOperator> {
  const log = createLogger({ level: config.logLevel });
  const metrics = createMetrics();
  const client = createKubeClient(loadKubeAccess(config.kubeconfig), {
    rateLimit: { qps: config.kubeApiQps, burst: config.kubeApiBurst },
    observer: metrics.client,
  });
  const manager = createManager({
    client,
    log,
    metrics,
    identity: config.identity,
    ...(config.namespace ? { namespace: config.namespace } : {}),
    health: { port: config.httpPort },
    resyncMs: config.resyncSeconds * 1000,
    workers: config.workers,
    ...(config.leaderElect
      ? {
          leaderElection: {
            namespace: config.leaderElectionNamespace,
            name: config.leaderElectionId,
            identity: config.identity,
            timing: {
              leaseDurationMs: config.leaseDurationSeconds * 1000,
              renewDeadlineMs: config.renewDeadlineSeconds * 1000,
              retryPeriodMs: config.retryPeriodSeconds * 1000,
            },
          },
        }
      : {}),
  });
  register(manager, config);
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= manager.stop();
    return stopping;
  };
  if (options.handleSignals ?? true) {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        log.info({ signal }, 'shutting down');
        void stop().then(() => process.exit(0));
      });
    }
  }
  log.info({ identity: config.identity, leaderElect: config.leaderElect }, 'starting Aurora operator');
  await manager.start();
  return { manager, client, stop };
}
