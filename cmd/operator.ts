// The operator's entry point: node cmd/operator.ts [--flags]; operator/config.ts lists the settings.
import { registerInferencePoolController } from '../controllers/inferencepool/reconcile.ts';
import { registerNodeCapacityController } from '../controllers/node/reconcile.ts';
import { registerTriageModelController } from '../controllers/triagemodel/reconcile.ts';
import { ConfigError, loadOperatorConfig, type OperatorConfig } from '../operator/config.ts';
import type { Manager } from '../operator/manager.ts';
import { runOperator } from '../operator/run.ts';

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
