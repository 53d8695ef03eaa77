import { createHash } from 'node:crypto';
import type { TriageModel } from '../../crds/kinds.ts';
import { maxConfigMapModelBytes, type TriageModelSpec } from '../../crds/triagemodel.ts';
import {
  type GoldenVector,
  parseGoldenVectors,
  percentile,
  scoreAcceptance,
} from '../../model/acceptance.ts';
import { checkContract } from '../../model/contract.ts';
import { readConfigMapKey, resolveHttpSource, sha256 } from '../../model/source.ts';
import type { ValidationRequest, ValidationResponse } from '../../model/validation-protocol.ts';
import type { ValidatorClient } from '../../model/validator-client.ts';
import type { Clock } from '../../operator/clock.ts';
import { findCondition } from '../../operator/conditions.ts';
import { createFairQueue } from '../../operator/fair-queue.ts';
import type { KubeClient } from '../../operator/kube/client.ts';
import { fileVerdictReasons, type Validation } from './status.ts';

const sourceRetryMs = 30_000;
const digestRetryMs = 5 * 60_000;
/** Backoff for a validator that could not judge (down, busy, crashed, timed out): 15 s doubling to 10 min. */
const firstRetryMs = 15_000;
const lastRetryMs = 10 * 60_000;
const maxCachedVerdicts = 256;
/** Validations the operator has out at once, shared by namespaces in turn; the rest wait their turn. */
const maxValidationsInFlight = 8;
/** The largest model file any spec may name, whatever it allows. */
const maxModelMiB = 512;

/** How validation outcomes are counted (aurora_triagemodel_validations_total's outcome label). */
export type ValidationOutcome = 'passed' | 'failed' | 'retry' | 'load' | 'contract' | 'memory';

/** What the controller can say about a model now. */
export type ValidationState =
  /** A validation is running apart; the status stays as it is until it answers. */
  | { kind: 'pending' }
  /** The status already holds the verdict for this file and spec (kept across restarts). */
  | { kind: 'recorded' }
  | { kind: 'known'; validation: Validation; specHash: string; retryAfterMs?: number };

export interface Validator {
  /** Where the model's validation stands; starts one, apart, when nothing is known. */
  state(
    key: string,
    model: TriageModel & { spec: TriageModelSpec },
    signal: AbortSignal,
  ): Promise<ValidationState>;
  /** Drops what is kept for a deleted model and ends its validation. */
  forget(key: string): void;
}

type Settled = { validation: Validation; retryAt?: number };
interface Job {
  specHash: string;
  controller: AbortController;
  settled?: Settled;
}

const hash = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex');

/** The runner's answer as a verdict, or undefined when it could not judge (time-out, crash). */
function judge(
  spec: TriageModelSpec,
  vectors: GoldenVector[],
  digest: string,
  sizeBytes: number,
  outcome: NonNullable<Extract<ValidationResponse, { fetched: true }>['outcome']>,
): Validation | { retry: string } {
  const base = { digest, sizeBytes };
  if (!outcome.ok) {
    if (outcome.stage === 'timeout' || outcome.stage === 'crash') return { retry: outcome.message };
    if (outcome.stage === 'memory') return { stage: 'memory', figures: base, message: outcome.message };
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
}

/**
 * The TriageModel controller's side of validation. Files are fetched and judged by the validator
 * (workloads/validator), never in the operator: a reconcile starts a validation and returns, and the
 * answer wakes the model again (wake). A verdict is kept by file digest and what judged it (contract,
 * tests, vectors), so the same pair is judged once; another model pinned to a digest already judged
 * still has its own source fetched and checked before the verdict counts for it. The status records
 * the digest and spec hash its verdict is for, so a restarted operator does not judge the fleet again.
 */
export function createValidator(options: {
  client: KubeClient;
  validator: ValidatorClient;
  clock: Clock;
  counted: (outcome: ValidationOutcome) => void;
  wake: (key: string) => void;
}): Validator {
  const { client } = options;
  const verdicts = new Map<string, Validation>();
  const jobs = new Map<string, Job>();
  const slots = createFairQueue({ concurrency: maxValidationsInFlight, perTenant: maxValidationsInFlight });
  const retries = new Map<string, number>();

  const remember = (key: string, validation: Validation) => {
    if (verdicts.size >= maxCachedVerdicts) verdicts.delete(verdicts.keys().next().value as string);
    verdicts.set(key, validation);
  };

  const goldenVectors = async (
    model: TriageModel,
  ): Promise<{ vectors: GoldenVector[] } | { error: string }> => {
    const source = model.spec.acceptance.goldenVectors;
    if (source.inline) return { vectors: source.inline };
    if (!source.configMap) return { error: 'spec.acceptance.goldenVectors names no vectors' };
    const read = await readConfigMapKey(client, model.metadata.namespace ?? '', source.configMap);
    if (!read.ok) return { error: read.message };
    return parseGoldenVectors(
      Buffer.from(read.bytes).toString('utf8'),
      model.spec.inputs.features.length,
      model.spec.outputs.labels,
    );
  };

  /** A verdict that cannot be had now: told as retrying, with a backoff that grows per model. */
  const retryLater = (key: string, message: string): Settled => {
    const attempt = retries.get(key) ?? 0;
    retries.set(key, attempt + 1);
    const delayMs = Math.min(lastRetryMs, firstRetryMs * 2 ** attempt);
    options.counted('retry');
    return {
      validation: { stage: 'retry', message: `${message}; trying again in ${Math.round(delayMs / 1000)} s` },
      retryAt: options.clock.now() + delayMs,
    };
  };

  /** Runs one validation apart and settles its job; the model is woken to report it. */
  const run = async (
    key: string,
    model: TriageModel & { spec: TriageModelSpec },
    request: ValidationRequest,
    vectors: GoldenVector[],
    judgedBy: string,
    signal: AbortSignal,
  ): Promise<Settled> => {
    let response: ValidationResponse;
    try {
      response = await options.validator.validate(request, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      return retryLater(key, (err as Error).message);
    }
    if (!response.fetched) {
      retries.delete(key);
      const retryMs = response.reason === 'SourceUnavailable' ? sourceRetryMs : digestRetryMs;
      return {
        validation: { stage: 'fetch', reason: response.reason, message: response.message },
        retryAt: options.clock.now() + retryMs,
      };
    }
    const cacheKey = `${response.digest}:${judgedBy}`;
    const known = verdicts.get(cacheKey);
    if (known) {
      retries.delete(key);
      return { validation: known };
    }
    if (!response.outcome) {
      // Checked the source for a verdict that was evicted meanwhile: judge it fully next time.
      return { validation: { stage: 'retry', message: 'the verdict for this file was evicted' }, retryAt: 0 };
    }
    const verdict = judge(model.spec, vectors, response.digest, response.sizeBytes, response.outcome);
    if ('retry' in verdict) return retryLater(key, verdict.retry);
    retries.delete(key);
    options.counted(
      verdict.stage === 'acceptance'
        ? verdict.result.passed
          ? 'passed'
          : 'failed'
        : (verdict.stage as ValidationOutcome),
    );
    remember(cacheKey, verdict);
    return { validation: verdict };
  };

  const start = (
    key: string,
    model: TriageModel & { spec: TriageModelSpec },
    specHash: string,
    request: ValidationRequest,
    vectors: GoldenVector[],
    judgedBy: string,
    signal: AbortSignal,
  ) => {
    const job: Job = { specHash, controller: new AbortController() };
    jobs.set(key, job);
    const jobSignal = AbortSignal.any([signal, job.controller.signal]);
    const settle = (settled: Settled) => {
      if (jobs.get(key) !== job) return;
      job.settled = settled;
      options.wake(key);
    };
    // Validations in flight are bounded: each holds its request (a ConfigMap's file) until sent.
    slots
      .acquire(model.metadata.namespace ?? 'default', jobSignal)
      .then(async (release) => {
        try {
          return await run(key, model, request, vectors, judgedBy, jobSignal);
        } finally {
          release();
        }
      })
      .then(settle, (err: unknown) => {
        // Aborted: the spec moved on, the model went, or the operator is stopping. Anything else is
        // a fault of ours: told as a retry, never left without a status.
        if (jobSignal.aborted) {
          if (jobs.get(key) === job) jobs.delete(key);
          return;
        }
        settle(retryLater(key, `validation failed: ${(err as Error).message}`));
      });
  };

  return {
    async state(key, model, signal) {
      const { spec } = model;
      const vectors = await goldenVectors(model);
      if ('error' in vectors) {
        return { kind: 'known', validation: { stage: 'vectors', message: vectors.error }, specHash: '' };
      }
      const judgedBy = hash([
        spec.inputs,
        spec.outputs,
        spec.acceptance,
        spec.executionProviders,
        spec.version,
        vectors.vectors,
      ]);
      const specHash = hash([judgedBy, spec.source]);
      let job = jobs.get(key);
      if (job && job.specHash !== specHash) {
        job.controller.abort(new Error('the spec changed'));
        jobs.delete(key);
        job = undefined;
      }
      if (job?.settled) {
        const { validation, retryAt } = job.settled;
        const now = options.clock.now();
        if (retryAt !== undefined && now < retryAt) {
          return { kind: 'known', validation, specHash, retryAfterMs: retryAt - now };
        }
        jobs.delete(key);
        // A verdict is told once; after that the status records it, and a source that changes (a
        // rewritten ConfigMap) is read and judged afresh.
        if (retryAt === undefined) return { kind: 'known', validation, specHash };
        job = undefined;
      }
      if (job) return { kind: 'pending' };

      /** The source could not be read (a ConfigMap or Secret missing): told, and looked at again soon. */
      const unavailable = (message: string): ValidationState => ({
        kind: 'known',
        validation: { stage: 'fetch', reason: 'SourceUnavailable', message },
        specHash,
        retryAfterMs: sourceRetryMs,
      });
      const recorded = (digest: string) => {
        const status = model.status;
        const ready = findCondition(status?.conditions, 'Ready');
        return (
          status?.observedGeneration === model.metadata.generation &&
          status?.verdict?.specHash === specHash &&
          status.verdict.digest === `sha256:${digest}` &&
          ready !== undefined &&
          fileVerdictReasons.has(ready.reason)
        );
      };
      const request: Omit<ValidationRequest, 'source' | 'mode'> = {
        namespace: model.metadata.namespace ?? 'default',
        maxModelMiB,
        run: {
          executionProviders: spec.executionProviders,
          vectors: vectors.vectors.map((v) => v.features),
          inputName: spec.inputs.tensorName,
          outputName: spec.outputs.tensorName,
          elementType: spec.inputs.elementType,
          outputWidth: spec.outputs.labels.length,
          latencyRuns: 200,
        },
      };
      if (spec.source.configMap) {
        // Small enough to read through the API server: the operator reads it and sends the bytes.
        const read = await readConfigMapKey(client, model.metadata.namespace ?? '', spec.source.configMap);
        if (!read.ok) return unavailable(read.message);
        if (read.bytes.length > maxConfigMapModelBytes) {
          return {
            kind: 'known',
            validation: {
              stage: 'fetch',
              reason: 'SourceTooLarge',
              message: `ConfigMap ${spec.source.configMap.name} holds ${read.bytes.length} bytes; a configMap source may hold at most ${maxConfigMapModelBytes} (960 KiB) so that pools can release it with its contract: serve larger files over http`,
            },
            specHash,
          };
        }
        const digest = sha256(read.bytes);
        if (recorded(digest)) return { kind: 'recorded' };
        const known = verdicts.get(`${digest}:${judgedBy}`);
        if (known) return { kind: 'known', validation: known, specHash };
        const source = { base64: Buffer.from(read.bytes).toString('base64') };
        start(key, model, specHash, { ...request, source }, vectors.vectors, judgedBy, signal);
        return { kind: 'pending' };
      }
      if (spec.source.http) {
        const { sha256: pinned } = spec.source.http;
        if (recorded(pinned)) return { kind: 'recorded' };
        const resolved = await resolveHttpSource(client, model.metadata.namespace ?? '', spec.source.http);
        if (!resolved.ok) return unavailable(resolved.message);
        // Judged already for another model: this one's own source is still fetched and its digest checked.
        const mode = verdicts.has(`${pinned}:${judgedBy}`) ? 'check-source' : 'validate';
        const source = { http: resolved.source, ...(resolved.shownAs ? { shownAs: resolved.shownAs } : {}) };
        start(key, model, specHash, { ...request, source, mode }, vectors.vectors, judgedBy, signal);
        return { kind: 'pending' };
      }
      return {
        kind: 'known',
        validation: {
          stage: 'fetch',
          reason: 'SourceNotSupported',
          message:
            'persistentVolumeClaim sources are not validated by this Aurora version; use configMap or http',
        },
        specHash,
      };
    },
    forget(key) {
      jobs.get(key)?.controller.abort(new Error('the model was deleted'));
      jobs.delete(key);
      retries.delete(key);
    },
  };
}
