// The operator's entry point: node cmd/operator.ts [--flags]; operator/config.ts lists the settings.
import { registerInferencePoolController } from '../controllers/inferencepool/reconcile.ts';
import { registerNodeCapacityController } from '../controllers/node/reconcile.ts';
import { registerTriageModelController } from '../controllers/triagemodel/reconcile.ts';
import {
  createValidatorClient,
  type LocalValidator,
  startLocalValidator,
  type ValidatorClient,
} from '../model/validator-client.ts';
import { ConfigError, loadOperatorConfig, type OperatorConfig } from '../operator/config.ts';
import type { Manager } from '../operator/manager.ts';
import { runOperator } from '../operator/run.ts';

/** The product's controllers; each issue that adds a kind registers it here. */
export function registerAuroraControllers(
  manager: Manager,
  config: OperatorConfig,
  validator: ValidatorClient,
): void {
  registerTriageModelController(manager, { validator });
  registerNodeCapacityController(manager);
  registerInferencePoolController(manager, { image: config.workloadImage, validator });
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
    // A local validator reads its standard input and ends with this process, however it ends.
    await runOperator(config, (manager) => registerAuroraControllers(manager, config, client));
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(err instanceof ConfigError ? 2 : 1);
  }
}
