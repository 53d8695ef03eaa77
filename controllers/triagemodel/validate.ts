import { createHash } from 'node:crypto';
import type { TriageModel } from '../../crds/kinds.ts';
import type { TriageModelSpec } from '../../crds/triagemodel.ts';
import {
  type GoldenVector,
  parseGoldenVectors,
  percentile,
  scoreAcceptance,
} from '../../model/acceptance.ts';
import { checkContract } from '../../model/contract.ts';
import { type Fetched, fetchModel, readConfigMapKey } from '../../model/fetch.ts';
import type { ModelRunner } from '../../model/runner.ts';
import type { KubeClient } from '../../operator/kube/client.ts';
import type { Validation } from './status.ts';

const sourceRetryMs = 30_000;
const digestRetryMs = 5 * 60_000;
const retryRunnerMs = 60_000;
const maxCachedVerdicts = 256;
/** The largest model file the operator holds in memory, whatever a spec allows. */
const maxModelMiB = 512;

/** How validation outcomes were counted (aurora_triagemodel_validations_total's outcome label). */
export type ValidationOutcome = 'passed' | 'failed' | 'retry' | 'load' | 'contract';

/** Where validation got to, and when to look again (a source that may come back, a runner that crashed). */
export interface ValidationRun {
  validation: Validation;
  retryAfterMs?: number;
}

export interface Validator {
  validate(model: TriageModel & { spec: TriageModelSpec }, signal: AbortSignal): Promise<ValidationRun>;
}

/**
 * The validation pipeline: golden vectors read, the file fetched and its digest checked, the model loaded
 * in a runner apart from the operator, its contract checked, its acceptance tests scored. A verdict is
 * kept by file digest and what judged it (spec and vectors), so the same pair is never validated twice.
 */
export function createValidator(options: {
  client: KubeClient;
  runner: ModelRunner;
  allowLoopbackSources: boolean;
  counted: (outcome: ValidationOutcome) => void;
}): Validator {
  const { client, runner } = options;
  const verdicts = new Map<string, Validation>();

  const goldenVectors = async (
    model: TriageModel,
  ): Promise<{ vectors: GoldenVector[] } | { error: string }> => {
    const { spec } = model;
    const source = spec.acceptance.goldenVectors;
    if (source.inline) return { vectors: source.inline };
    if (!source.configMap) return { error: 'spec.acceptance.goldenVectors names no vectors' };
    const read = await readConfigMapKey(client, model.metadata.namespace ?? '', source.configMap);
    if (!read.ok) return { error: read.message };
    return parseGoldenVectors(
      Buffer.from(read.bytes).toString('utf8'),
      spec.inputs.features.length,
      spec.outputs.labels,
    );
  };

  /** Runs the model on the vectors and judges it; a time-out or crash is the machine's doing, tried again. */
  const judge = async (
    spec: TriageModelSpec,
    fetched: Extract<Fetched, { ok: true }>,
    vectors: GoldenVector[],
    signal: AbortSignal,
  ): Promise<Extract<Validation, { stage: 'load' | 'contract' | 'acceptance' }> | { retry: string }> => {
    const outcome = await runner.run(
      fetched.bytes,
      {
        executionProviders: spec.executionProviders,
        vectors: vectors.map((v) => v.features),
        inputName: spec.inputs.tensorName,
        outputName: spec.outputs.tensorName,
        elementType: spec.inputs.elementType,
        latencyRuns: 200,
      },
      signal,
    );
    const base = { digest: fetched.digest, sizeBytes: fetched.bytes.length };
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
      vectors,
      outcome.probabilities ?? [],
      latency,
    );
    return { stage: 'acceptance', figures: { ...figures, latency }, result };
  };

  const remember = (key: string, validation: Validation) => {
    if (verdicts.size >= maxCachedVerdicts) verdicts.delete(verdicts.keys().next().value as string);
    verdicts.set(key, validation);
  };

  return {
    async validate(model, signal) {
      const { spec } = model;
      const vectors = await goldenVectors(model);
      if ('error' in vectors) return { validation: { stage: 'vectors', message: vectors.error } };
      // The verdict depends on the file, the spec that judges it and the vectors' content, nothing else.
      const judgedBy = createHash('sha256')
        .update(
          JSON.stringify([
            spec.inputs,
            spec.outputs,
            spec.acceptance,
            spec.executionProviders,
            spec.version,
            vectors.vectors,
          ]),
        )
        .digest('hex');
      const pinned = spec.source.http?.sha256 ?? spec.source.persistentVolumeClaim?.sha256;
      // A pinned file whose verdict is known need not be downloaded again (resyncs, restarts of reconcile).
      const known = pinned ? verdicts.get(`${pinned}:${judgedBy}`) : undefined;
      if (known) return { validation: known };
      const fetched = await fetchModel(client, model.metadata.namespace ?? '', spec.source, {
        maxModelMiB,
        allowLoopback: options.allowLoopbackSources,
        signal,
      });
      if (!fetched.ok) {
        return {
          validation: { stage: 'fetch', reason: fetched.reason, message: fetched.message },
          retryAfterMs: fetched.reason === 'SourceUnavailable' ? sourceRetryMs : digestRetryMs,
        };
      }
      const key = `${fetched.digest}:${judgedBy}`;
      const cached = verdicts.get(key);
      if (cached) return { validation: cached };
      const outcome = await judge(spec, fetched, vectors.vectors, signal);
      if ('retry' in outcome) {
        options.counted('retry');
        return {
          validation: {
            stage: 'load',
            figures: { digest: fetched.digest, sizeBytes: fetched.bytes.length },
            message: `${outcome.retry}; trying again in ${retryRunnerMs / 1000} s`,
          },
          retryAfterMs: retryRunnerMs,
        };
      }
      options.counted(
        outcome.stage === 'acceptance' ? (outcome.result.passed ? 'passed' : 'failed') : outcome.stage,
      );
      remember(key, outcome);
      return { validation: outcome };
    },
  };
}
