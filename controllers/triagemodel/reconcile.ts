import { createHash } from 'node:crypto';
import { Counter } from 'prom-client';
import { apiVersion, type TriageModel } from '../../crds/kinds.ts';
import { triageModelSpec } from '../../crds/triagemodel.ts';
import { writeStatus } from '../../operator/apply.ts';
import { findCondition } from '../../operator/conditions.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import { type GoldenVector, parseGoldenVectors, percentile, scoreAcceptance } from './acceptance.ts';
import { checkContract } from './contract.ts';
import { fetchModel, readConfigMapKey } from './fetch.ts';
import { createModelRunner, type ModelRunner } from './runner.ts';
import { triageModelStatus, type Validation } from './status.ts';

const sourceRetryMs = 30_000;
const digestRetryMs = 5 * 60_000;
const maxCachedResults = 256;
const retryRunnerMs = 60_000;
/** The largest model file the operator holds in memory, whatever a spec allows. */
const maxModelMiB = 512;

/** ConfigMaps a TriageModel reads (its file, its golden vectors), as namespace/name index values. */
function referencedConfigMaps(obj: KubeObject): string[] {
  const spec = (obj as TriageModel).spec;
  const names = [spec?.source?.configMap?.name, spec?.acceptance?.goldenVectors?.configMap?.name];
  return names.filter((n): n is string => Boolean(n)).map((n) => `${obj.metadata.namespace}/${n}`);
}

/**
 * The TriageModel controller: fetch the file, check its digest, load it apart from the operator,
 * check the contract, run the acceptance tests, measure memory and latency, report. A digest already
 * validated against the same contract and tests is not validated again.
 */
export function registerTriageModelController(
  manager: Manager,
  options: { runner?: ModelRunner; workers?: number; now?: () => Date; allowLoopbackSources?: boolean } = {},
): void {
  const runner = options.runner ?? createModelRunner({ concurrency: 1, timeoutMs: 120_000 });
  const now = options.now ?? (() => new Date());
  const models = manager.informer<TriageModel>(apiVersion, 'TriageModel', {
    indexers: { configMap: referencedConfigMaps },
  });
  // Only to learn that a ConfigMap changed: the reconciler reads it fresh, so the cache keeps metadata.
  const configMaps = manager.informer('v1', 'ConfigMap', {
    transform: (cm) => {
      const {
        data: _data,
        binaryData: _binary,
        ...rest
      } = cm as KubeObject & { data?: unknown; binaryData?: unknown };
      delete rest.metadata.managedFields;
      return rest as KubeObject;
    },
  });
  const recorder = manager.recorder('aurora-triagemodel');
  const validations = new Counter({
    name: 'aurora_triagemodel_validations_total',
    help: 'Model validations run (file loaded and tested), by outcome',
    labelNames: ['outcome'],
    registers: [manager.metrics.registry],
  });
  // Outcomes by file digest and what judged it (spec and vectors): the same pair is never validated twice.
  const results = new Map<string, Validation>();

  const goldenVectors = async (
    model: TriageModel,
  ): Promise<{ vectors: GoldenVector[] } | { error: string }> => {
    const { spec } = model;
    const source = spec.acceptance.goldenVectors;
    if (source.inline) return { vectors: source.inline };
    if (!source.configMap) return { error: 'spec.acceptance.goldenVectors names no vectors' };
    const read = await readConfigMapKey(manager.client, model.metadata.namespace ?? '', source.configMap);
    if (!read.ok) return { error: read.message };
    return parseGoldenVectors(
      Buffer.from(read.bytes).toString('utf8'),
      spec.inputs.features.length,
      spec.outputs.labels,
    );
  };

  const validate = async (
    model: TriageModel,
    bytes: Uint8Array,
    digest: string,
    vectors: { vectors: GoldenVector[] },
  ): Promise<Validation | { retry: string }> => {
    const { spec } = model;
    const outcome = await runner.run(bytes, {
      executionProviders: spec.executionProviders,
      vectors: vectors.vectors.map((v) => v.features),
      inputName: spec.inputs.tensorName,
      outputName: spec.outputs.tensorName,
      elementType: spec.inputs.elementType,
      latencyRuns: 200,
    });
    const base = { digest, sizeBytes: bytes.length };
    // A time-out or a crash may be the machine's doing (CPU throttled, memory short): tried again, never cached.
    if (!outcome.ok) {
      if (outcome.stage === 'timeout' || outcome.stage === 'crash') return { retry: outcome.message };
      return { stage: 'load', figures: base, message: outcome.message };
    }
    const figures = {
      ...base,
      memoryMiB: outcome.sessionMemoryMiB,
      executionProvider: outcome.executionProvider,
    };
    const contract = checkContract(spec, outcome.signature);
    if (!contract.valid) return { stage: 'contract', figures, problems: contract.problems };
    const sorted = [...(outcome.latenciesMs ?? [])].sort((a, b) => a - b);
    const latency = { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
    const result = scoreAcceptance(
      spec.acceptance,
      spec.outputs.labels,
      vectors.vectors,
      outcome.probabilities ?? [],
      latency,
    );
    return { stage: 'acceptance', figures: { ...figures, latency }, result };
  };

  manager.addController({
    name: 'triagemodel',
    primary: models as never,
    watches: [
      {
        informer: configMaps,
        map: (cm) =>
          models
            .byIndex('configMap', `${cm.metadata.namespace}/${cm.metadata.name}`)
            .map((m) => `${m.metadata.namespace}/${m.metadata.name}`),
      },
    ],
    workers: options.workers ?? 2,
    async reconcile({ key }) {
      const cached = models.get(key);
      if (!cached || cached.metadata.deletionTimestamp) return undefined;
      const parsed = triageModelSpec.safeParse(cached.spec);
      if (!parsed.success) {
        // The CRD's schema refuses such objects; this guards against a CRD older than the operator.
        const message = parsed.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ');
        await writeStatus(
          manager.client,
          cached,
          triageModelStatus(cached, { stage: 'spec', message }, now()),
        );
        return undefined;
      }
      const model: TriageModel = { ...cached, spec: parsed.data };
      const namespace = model.metadata.namespace ?? '';
      let validation: Validation;
      let retryAfterMs: number | undefined;
      const vectors = await goldenVectors(model);
      if ('error' in vectors) {
        validation = { stage: 'vectors', message: vectors.error };
      } else {
        // The verdict depends on the file, the spec that judges it and the vectors' content, nothing else.
        const judgedBy = createHash('sha256')
          .update(
            JSON.stringify([
              model.spec.inputs,
              model.spec.outputs,
              model.spec.acceptance,
              model.spec.executionProviders,
              model.spec.version,
              vectors.vectors,
            ]),
          )
          .digest('hex');
        const pinned = model.spec.source.http?.sha256 ?? model.spec.source.persistentVolumeClaim?.sha256;
        // A pinned file whose verdict is known need not be downloaded again (resyncs, restarts of reconcile).
        const known = pinned ? results.get(`${pinned}:${judgedBy}`) : undefined;
        if (known) {
          validation = known;
        } else {
          const fetched = await fetchModel(manager.client, namespace, model.spec.source, {
            maxModelMiB,
            allowLoopback: options.allowLoopbackSources ?? false,
          });
          if (!fetched.ok) {
            validation = { stage: 'fetch', reason: fetched.reason, message: fetched.message };
          } else {
            const key = `${fetched.digest}:${judgedBy}`;
            const cachedResult = results.get(key);
            if (cachedResult) {
              validation = cachedResult;
            } else {
              const outcome = await validate(model, fetched.bytes, fetched.digest, vectors);
              if ('retry' in outcome) {
                validations.inc({ outcome: 'retry' });
                validation = {
                  stage: 'load',
                  figures: { digest: fetched.digest, sizeBytes: fetched.bytes.length },
                  message: `${outcome.retry}; trying again in ${retryRunnerMs / 1000} s`,
                };
                retryAfterMs = retryRunnerMs;
              } else {
                validation = outcome;
                validations.inc({
                  outcome:
                    outcome.stage === 'acceptance'
                      ? outcome.result.passed
                        ? 'passed'
                        : 'failed'
                      : outcome.stage,
                });
                if (results.size >= maxCachedResults) results.delete(results.keys().next().value as string);
                results.set(key, validation);
              }
            }
          }
        }
      }
      const status = triageModelStatus(model, validation, now());
      const before = findCondition(model.status?.conditions, 'Ready');
      const after = findCondition(status.conditions, 'Ready');
      const wrote = await writeStatus(manager.client, cached, status as Record<string, unknown>);
      if (wrote && after && (before?.reason !== after.reason || before?.status !== after.status)) {
        recorder.record(
          model,
          after.status === 'True' ? 'Normal' : 'Warning',
          after.reason,
          'Validate',
          after.message,
        );
      }
      if (validation.stage === 'fetch') {
        return { requeueAfterMs: validation.reason === 'SourceUnavailable' ? sourceRetryMs : digestRetryMs };
      }
      return retryAfterMs === undefined ? undefined : { requeueAfterMs: retryAfterMs };
    },
  });
}
