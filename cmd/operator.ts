// The operator's entry point: node cmd/operator.ts [--flags]; operator/config.ts lists the settings.
import { careQueueAccess } from '../controllers/carequeue/access.ts';
import { registerCareQueueController } from '../controllers/carequeue/reconcile.ts';
import { healingPolicyAccess } from '../controllers/healingpolicy/access.ts';
import { registerHealingPolicyController } from '../controllers/healingpolicy/reconcile.ts';
import { inferencePoolAccess } from '../controllers/inferencepool/access.ts';
import { registerInferencePoolController } from '../controllers/inferencepool/reconcile.ts';
import { nodeCapacityAccess } from '../controllers/node/access.ts';
import { registerNodeCapacityController } from '../controllers/node/reconcile.ts';
import { triageModelAccess } from '../controllers/triagemodel/access.ts';
import { registerTriageModelController } from '../controllers/triagemodel/reconcile.ts';
import {
  createValidatorClient,
  type LocalValidator,
  startLocalValidator,
  type ValidatorClient,
} from '../model/validator-client.ts';
import { ConfigError, loadOperatorConfig, type OperatorConfig } from '../operator/config.ts';
import type { Manager } from '../operator/manager.ts';
import { type AccessRule, runtimeAccess } from '../operator/rbac.ts';
import { runOperator } from '../operator/run.ts';
import { pruneHistory } from '../state/carequeue-history.ts';
import { createStateStore, type StateStore } from '../state/postgres.ts';

/**
 * The API access of the runtime and of every controller registered below: the chart's RBAC is generated
 * from it (charts/generate.ts), so a controller added here without its declaration fails the chart's tests.
 */
export const auroraAccess: readonly AccessRule[] = [
  ...runtimeAccess,
  ...triageModelAccess,
  ...nodeCapacityAccess,
  ...inferencePoolAccess,
  ...careQueueAccess,
  ...healingPolicyAccess,
];

/** The product's controllers; each issue that adds a kind registers it here. */
export function registerAuroraControllers(
  manager: Manager,
  config: OperatorConfig,
  validator: ValidatorClient,
  store?: StateStore,
): void {
  registerTriageModelController(manager, { validator });
  registerNodeCapacityController(manager);
  registerInferencePoolController(manager, { image: config.workloadImage, validator });
  registerCareQueueController(manager, { workers: config.queueWorkers, ...(store ? { store } : {}) });
  registerHealingPolicyController(manager, {
    // The operator's own namespace is never healed: the one it leads from, and the one it runs in.
    protectedNamespaces: [
      config.leaderElectionNamespace,
      ...(process.env.POD_NAMESPACE ? [process.env.POD_NAMESPACE] : []),
    ],
    auditSchema: config.postgresSchema,
    identity: config.identity,
  });
}

/**
 * The PostgreSQL state, when --postgres-url is given. Its tables are made in the background, tried
 * again until PostgreSQL answers: meanwhile decisions cannot be recorded, so no consumer is removed.
 */
function stateStoreFor(config: OperatorConfig): StateStore | undefined {
  if (!config.postgresUrl) {
    console.warn(
      'no --postgres-url: CareQueue decisions are kept in Events and status only, and no forecast is made',
    );
    return undefined;
  }
  const store = createStateStore({ url: config.postgresUrl, schema: config.postgresSchema });
  const migrate = (attempt: number): void => {
    store
      .migrate()
      .then(() => {
        // Arrivals are kept as long as the longest forecast reads (12 weeks) and a week more; decisions for
        // 90 days. Pruning is idempotent, so every replica may run it.
        const prune = () =>
          pruneHistory(store, {
            arrivalsBefore: new Date(Date.now() - 13 * 7 * 86_400_000),
            decisionsBefore: new Date(Date.now() - 90 * 86_400_000),
          }).catch((err: Error) =>
            console.warn(`PostgreSQL history not pruned: ${(err as { code?: string }).code ?? err.name}`),
          );
        void prune();
        setInterval(prune, 3_600_000).unref();
      })
      .catch((err: Error) => {
        // The error's code only: a connection error can carry the host, never the password, but keep it short.
        console.warn(
          `PostgreSQL schema not ready (attempt ${attempt}): ${(err as { code?: string }).code ?? err.name}; trying again`,
        );
        setTimeout(() => migrate(attempt + 1), Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5))).unref();
      });
  };
  migrate(1);
  return store;
}

/**
 * The validator that judges model files apart from the operator: the one at --validator-url (in a
 * cluster, the chart's container beside the operator), else a child process started here, given only
 * its own AURORA_VALIDATOR_* settings.
 */
async function validatorFor(
  config: OperatorConfig,
): Promise<{ client: ValidatorClient; local?: LocalValidator }> {
  const { validatorUrl } = config;
  if (validatorUrl) return { client: createValidatorClient(() => validatorUrl.replace(/\/$/, '')) };
  const settings = Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] => e[0].startsWith('AURORA_VALIDATOR_') && e[1] !== undefined,
    ),
  );
  const local = await startLocalValidator({ settings, onLog: (line) => process.stdout.write(`${line}\n`) });
  return { client: createValidatorClient(() => local.url()), local };
}

if (import.meta.main) {
  try {
    const config = loadOperatorConfig(process.argv.slice(2), process.env);
    const { client } = await validatorFor(config);
    const store = stateStoreFor(config);
    // A local validator reads its standard input and ends with this process, however it ends.
    await runOperator(config, (manager) => registerAuroraControllers(manager, config, client, store));
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
}
