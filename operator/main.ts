// The operator's entry point: node operator/main.ts [--flags]; see operator/config.ts for settings.
import { registerInferencePoolController } from '../controllers/inferencepool/reconcile.ts';
import { registerNodeCapacityController } from '../controllers/node/reconcile.ts';
import { registerTriageModelController } from '../controllers/triagemodel/reconcile.ts';
import { ConfigError, loadOperatorConfig, type OperatorConfig } from './config.ts';
import { createKubeClient, type KubeClient } from './kube/client.ts';
import { loadKubeConfig } from './kube/kubeconfig.ts';
import { createLogger } from './log.ts';
import { createManager, type Manager } from './manager.ts';

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
  const client = createKubeClient(loadKubeConfig(config.kubeconfig));
  const manager = createManager({
    client,
    log,
    identity: config.identity,
    ...(config.namespace ? { namespace: config.namespace } : {}),
    health: { port: config.httpPort },
    resyncMs: config.resyncSeconds * 1000,
    ...(config.leaderElect
      ? {
          leaderElection: {
            namespace: config.leaderElectionNamespace,
            name: config.leaderElectionId,
            identity: config.identity,
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

/** The product's controllers; each issue that adds a kind registers it here. */
export function registerAuroraControllers(manager: Manager, config: OperatorConfig): void {
  registerTriageModelController(manager);
  registerNodeCapacityController(manager);
  registerInferencePoolController(manager, { image: config.workloadImage });
}

if (import.meta.main) {
  try {
    const config = loadOperatorConfig(process.argv.slice(2), process.env);
    await runOperator(config, registerAuroraControllers);
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
}
