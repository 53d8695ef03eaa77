import { Counter } from 'prom-client';
import { apiVersion, type TriageModel } from '../../crds/kinds.ts';
import { triageModelSpec } from '../../crds/triagemodel.ts';
import { createModelRunner, type ModelRunner } from '../../model/runner.ts';
import { addKindController } from '../../operator/kind-controller.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import { watch } from '../../operator/sources.ts';
import { triageModelEvents, triageModelStatus } from './status.ts';
import { createValidator } from './validate.ts';

/** ConfigMaps a TriageModel reads (its file, its golden vectors), as namespace/name index values. */
function referencedConfigMaps(obj: TriageModel): string[] {
  const spec = obj.spec;
  const names = [spec?.source?.configMap?.name, spec?.acceptance?.goldenVectors?.configMap?.name];
  return names.filter((n): n is string => Boolean(n)).map((n) => `${obj.metadata.namespace}/${n}`);
}

/** A ConfigMap as this controller caches it: metadata only, since it reads the data fresh. */
function metadataOnly(cm: KubeObject): KubeObject {
  const {
    data: _data,
    binaryData: _binary,
    ...rest
  } = cm as KubeObject & { data?: unknown; binaryData?: unknown };
  delete rest.metadata.managedFields;
  return rest as KubeObject;
}

/**
 * The TriageModel controller: fetch the file, check its digest, load it apart from the operator,
 * check the contract, run the acceptance tests, measure memory and latency, report. A digest already
 * validated against the same contract and tests is not validated again.
 */
export function registerTriageModelController(
  manager: Manager,
  options: { runner?: ModelRunner; workers?: number; allowLoopbackSources?: boolean } = {},
): void {
  const models = manager.informer<TriageModel>(apiVersion, 'TriageModel', {
    indexers: { configMap: referencedConfigMaps },
  });
  // Only to learn that a ConfigMap changed: the reconciler reads it fresh, so the cache keeps metadata.
  const configMaps = manager.informer('v1', 'ConfigMap', { transform: metadataOnly });
  const validations = new Counter({
    name: 'aurora_triagemodel_validations_total',
    help: 'Model validations run (file loaded and tested), by outcome',
    labelNames: ['outcome'],
    registers: [manager.metrics.registry],
  });
  const validator = createValidator({
    client: manager.client,
    runner: options.runner ?? createModelRunner({ concurrency: 1, timeoutMs: 120_000 }),
    allowLoopbackSources: options.allowLoopbackSources ?? false,
    counted: (outcome) => validations.inc({ outcome }),
  });

  addKindController(manager, {
    name: 'triagemodel',
    informer: models,
    spec: triageModelSpec,
    events: triageModelEvents,
    sources: [
      watch(configMaps, (cm) =>
        models
          .byIndex('configMap', `${cm.metadata.namespace}/${cm.metadata.name}`)
          .map((m) => `${m.metadata.namespace}/${m.metadata.name}`),
      ),
    ],
    ...(options.workers ? { workers: options.workers } : {}),
    async reconcile(ctx, model) {
      const { validation, retryAfterMs } = await validator.validate(model, ctx.signal);
      return {
        status: triageModelStatus(model, validation, ctx.now()),
        ...(retryAfterMs === undefined ? {} : { requeueAfterMs: retryAfterMs }),
      };
    },
  });
}
