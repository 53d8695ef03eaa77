import { Counter } from 'prom-client';
import { apiVersion, type TriageModel } from '../../crds/kinds.ts';
import { triageModelSpec } from '../../crds/triagemodel.ts';
import type { ValidatorClient } from '../../model/validator-client.ts';
import { addKindController } from '../../operator/kind-controller.ts';
import type { Manager } from '../../operator/manager.ts';
import { channelSource, watch } from '../../operator/sources.ts';
import { triageModelEvents, triageModelStatus } from './status.ts';
import { createValidator } from './validate.ts';

/** ConfigMaps a TriageModel reads (its file, its golden vectors), as namespace/name index values. */
function referencedConfigMaps(obj: TriageModel): string[] {
  const spec = obj.spec;
  const names = [spec?.source?.configMap?.name, spec?.acceptance?.goldenVectors?.configMap?.name];
  return names.filter((n): n is string => Boolean(n)).map((n) => `${obj.metadata.namespace}/${n}`);
}

/**
 * The TriageModel controller: the file is fetched and judged by the validator, apart from the
 * operator (digest, load, contract, acceptance tests, memory and latency), and the verdict reported.
 * A reconcile never waits for a validation: the validator's answer wakes the model again.
 */
export function registerTriageModelController(
  manager: Manager,
  options: { validator: ValidatorClient; workers?: number },
): void {
  const models = manager.informer<TriageModel>(apiVersion, 'TriageModel', {
    indexers: { configMap: referencedConfigMaps },
  });
  // Only to learn that a ConfigMap changed: the reconciler reads it fresh, so only metadata is sent.
  const configMaps = manager.informer('v1', 'ConfigMap', { metadataOnly: true });
  const validations = new Counter({
    name: 'aurora_triagemodel_validations_total',
    help: 'Model validations that reached a verdict or must be tried again, by outcome',
    labelNames: ['outcome'],
    registers: [manager.metrics.registry],
  });
  const answers = channelSource();
  const validator = createValidator({
    client: manager.client,
    validator: options.validator,
    clock: manager.clock,
    counted: (outcome) => validations.inc({ outcome }),
    wake: (key) => answers.send(key),
  });

  addKindController(manager, {
    name: 'triagemodel',
    informer: models,
    spec: triageModelSpec,
    events: triageModelEvents,
    sources: [
      answers,
      watch(configMaps, (cm) =>
        models
          .byIndex('configMap', `${cm.metadata.namespace}/${cm.metadata.name}`)
          .map((m) => `${m.metadata.namespace}/${m.metadata.name}`),
      ),
    ],
    ...(options.workers ? { workers: options.workers } : {}),
    forget: (key) => validator.forget(key),
    async reconcile(ctx, model) {
      const state = await validator.state(ctx.key, model, ctx.signal);
      if (state.kind !== 'known') return undefined;
      return {
        status: triageModelStatus(model, state.validation, ctx.now(), state.specHash),
        ...(state.retryAfterMs === undefined ? {} : { requeueAfterMs: state.retryAfterMs }),
      };
    },
  });
}
