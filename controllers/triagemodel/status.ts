import type { TriageModel } from '../../crds/kinds.ts';
import type { TriageModelStatus } from '../../crds/triagemodel.ts';
import type { AcceptanceResult } from '../../model/acceptance.ts';
import type { FetchFailureReason } from '../../model/source.ts';
import type { ConditionEventPolicy } from '../../operator/condition-events.ts';
import { type ConditionInput, rfc3339Seconds, setConditions } from '../../operator/conditions.ts';

export interface ModelFigures {
  digest: string;
  sizeBytes: number;
  memoryMiB?: number;
  latency?: { p50Ms: number; p99Ms: number };
  executionProvider?: string;
}

/** Where validation got to, and what it found. */
export type Validation =
  | { stage: 'fetch'; reason: FetchFailureReason; message: string }
  | { stage: 'vectors'; message: string }
  | { stage: 'retry'; message: string }
  | { stage: 'load'; figures: ModelFigures; message: string }
  | { stage: 'memory'; figures: ModelFigures; message: string }
  | { stage: 'contract'; figures: ModelFigures; problems: string[] }
  | { stage: 'acceptance'; figures: ModelFigures; result: AcceptanceResult };

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const unknown = (type: string, reason: string, message: string): ConditionInput => ({
  type,
  status: 'Unknown',
  reason,
  message,
});

/** Ready reasons that judge the file itself: kept, with its digest and spec hash, across restarts. */
export const fileVerdictReasons: ReadonlySet<string> = new Set([
  'Validated',
  'InvalidModel',
  'ExceedsValidationMemory',
  'ContractMismatch',
  'AcceptanceFailed',
]);

function conditionsFor(v: Validation, version: string): ConditionInput[] {
  switch (v.stage) {
    case 'retry':
      // The validator could not judge the file this time: nothing is known against it.
      return [
        unknown('ContractValid', 'ValidationRetrying', 'not checked yet'),
        unknown('AcceptancePassed', 'ValidationRetrying', 'not run yet'),
        unknown('Ready', 'ValidationRetrying', `the validator could not judge the file: ${v.message}`),
      ];
    case 'memory':
      return [
        unknown('ContractValid', 'ExceedsValidationMemory', 'not checked: the model could not be loaded'),
        unknown('AcceptancePassed', 'ExceedsValidationMemory', 'not run: the model could not be loaded'),
        {
          type: 'Ready',
          status: 'False',
          reason: 'ExceedsValidationMemory',
          message: `the model (sha256 ${v.figures.digest}, ${v.figures.sizeBytes} bytes) allocates more than validation allows: ${v.message}`,
        },
      ];
    case 'fetch':
      return [
        unknown('ContractValid', v.reason, 'the model file could not be fetched'),
        unknown('AcceptancePassed', v.reason, 'the model file could not be fetched'),
        { type: 'Ready', status: 'False', reason: v.reason, message: v.message },
      ];
    case 'vectors':
      return [
        unknown('ContractValid', 'GoldenVectorsInvalid', 'not checked: the golden vectors could not be read'),
        { type: 'AcceptancePassed', status: 'False', reason: 'GoldenVectorsInvalid', message: v.message },
        { type: 'Ready', status: 'False', reason: 'GoldenVectorsInvalid', message: v.message },
      ];
    case 'load':
      return [
        { type: 'ContractValid', status: 'False', reason: 'InvalidModel', message: v.message },
        unknown('AcceptancePassed', 'InvalidModel', 'not run: the model could not be loaded'),
        {
          type: 'Ready',
          status: 'False',
          reason: 'InvalidModel',
          message: `onnxruntime could not load the file (sha256 ${v.figures.digest}, ${v.figures.sizeBytes} bytes): ${v.message}`,
        },
      ];
    case 'contract': {
      const message = `the model does not match the spec: ${v.problems.join('; ')}`;
      return [
        { type: 'ContractValid', status: 'False', reason: 'ContractMismatch', message },
        unknown('AcceptancePassed', 'ContractMismatch', 'not run: the contract does not match'),
        { type: 'Ready', status: 'False', reason: 'ContractMismatch', message },
      ];
    }
    case 'acceptance': {
      const contract: ConditionInput = {
        type: 'ContractValid',
        status: 'True',
        reason: 'ContractMatches',
        message: 'inputs and outputs match the spec',
      };
      if (!v.result.passed) {
        const message = `version ${version} failed acceptance: ${v.result.failures.join('; ')}`;
        return [
          contract,
          { type: 'AcceptancePassed', status: 'False', reason: 'AcceptanceFailed', message },
          { type: 'Ready', status: 'False', reason: 'AcceptanceFailed', message },
        ];
      }
      const summary = `${v.result.vectors} golden vectors, accuracy ${pct(v.result.accuracy)}, recall ${v.result.recall
        .map((r) => `${r.label} ${pct(r.recall)}`)
        .join(', ')}`;
      return [
        contract,
        { type: 'AcceptancePassed', status: 'True', reason: 'AcceptancePassed', message: summary },
        {
          type: 'Ready',
          status: 'True',
          reason: 'Validated',
          message: `version ${version} (sha256 ${v.figures.digest.slice(0, 12)}) passed: ${summary}`,
        },
      ];
    }
  }
}

/**
 * The status for a validation outcome. The fields of the last version that passed are kept when a
 * newer one fails, so pools keep serving it.
 */
export function triageModelStatus(
  model: TriageModel,
  v: Validation,
  now: Date,
  /** What judged the file (spec and vectors), recorded with a verdict on the file. */
  specHash?: string,
): TriageModelStatus {
  const previous = model.status ?? {};
  const generation = model.metadata.generation;
  const status: TriageModelStatus = {
    ...previous,
    observedGeneration: generation,
    conditions: setConditions(previous.conditions, conditionsFor(v, model.spec.version), generation, now),
  };
  if ('figures' in v) {
    status.digest = `sha256:${v.figures.digest}`;
    if (specHash) status.verdict = { digest: `sha256:${v.figures.digest}`, specHash };
    status.sizeBytes = v.figures.sizeBytes;
    if (v.figures.memoryMiB !== undefined)
      status.measuredMemoryMiB = Math.round(v.figures.memoryMiB * 10) / 10;
    if (v.figures.latency) {
      status.latency = {
        p50Ms: Math.round(v.figures.latency.p50Ms * 1000) / 1000,
        p99Ms: Math.round(v.figures.latency.p99Ms * 1000) / 1000,
      };
    }
  }
  if (v.stage === 'acceptance') {
    status.acceptance = {
      vectors: v.result.vectors,
      accuracy: Math.round(v.result.accuracy * 10_000) / 10_000,
      recall: v.result.recall.map((r) => ({
        label: r.label,
        recall: Math.round(r.recall * 10_000) / 10_000,
      })),
    };
    if (v.result.passed) {
      const alreadyValidated =
        previous.validatedDigest === `sha256:${v.figures.digest}` &&
        previous.validatedVersion === model.spec.version;
      status.validatedVersion = model.spec.version;
      status.validatedDigest = `sha256:${v.figures.digest}`;
      status.validatedAt =
        alreadyValidated && previous.validatedAt ? previous.validatedAt : rfc3339Seconds(now);
    }
  }
  return status;
}

/** Every change of the verdict is told: passing is Normal, anything else a Warning. */
export const triageModelEvents: ConditionEventPolicy = [
  { type: 'Ready', healthyStatus: 'True', announce: 'changes', action: 'Validate' },
];
