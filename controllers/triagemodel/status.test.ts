import { describe, expect, it } from 'vitest';
import type { TriageModel } from '../../crds/kinds.ts';
import { conditionEvents } from '../../operator/condition-events.ts';
import { triageModelEvents, triageModelStatus, type Validation } from './status.ts';

const now = new Date('2026-11-23T10:00:00Z');
const later = new Date('2026-11-23T11:00:00Z');
const model = (status?: TriageModel['status'], generation = 2): TriageModel =>
  ({
    apiVersion: 'aurora.health/v1alpha1',
    kind: 'TriageModel',
    metadata: { name: 'er', namespace: 'emergency', generation },
    spec: { version: '2.0.0' },
    status,
  }) as unknown as TriageModel;
const figures = {
  digest: 'ab'.repeat(32),
  sizeBytes: 2056,
  memoryMiB: 3.21,
  latency: { p50Ms: 0.0133, p99Ms: 0.0533 },
};
const passed: Validation = {
  stage: 'acceptance',
  figures,
  result: {
    passed: true,
    vectors: 400,
    accuracy: 0.9625,
    recall: [{ label: 'high', recall: 0.967 }],
    failures: [],
  },
};

const reasons = (v: Validation) =>
  Object.fromEntries(
    (triageModelStatus(model(), v, now).conditions ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]),
  );

describe('triageModelStatus', () => {
  it.each<[string, Validation, Record<string, string>]>([
    [
      'source unavailable',
      { stage: 'fetch', reason: 'SourceUnavailable', message: 'ConfigMap emergency/x does not exist' },
      {
        ContractValid: 'Unknown/SourceUnavailable',
        AcceptancePassed: 'Unknown/SourceUnavailable',
        Ready: 'False/SourceUnavailable',
      },
    ],
    [
      'digest mismatch',
      { stage: 'fetch', reason: 'DigestMismatch', message: 'the file has sha256 x' },
      {
        ContractValid: 'Unknown/DigestMismatch',
        AcceptancePassed: 'Unknown/DigestMismatch',
        Ready: 'False/DigestMismatch',
      },
    ],
    [
      'unloadable file',
      { stage: 'load', figures, message: 'protobuf parsing failed' },
      {
        ContractValid: 'False/InvalidModel',
        AcceptancePassed: 'Unknown/InvalidModel',
        Ready: 'False/InvalidModel',
      },
    ],
    [
      'contract mismatch',
      { stage: 'contract', figures, problems: ["the model has no input named 'vitals'"] },
      {
        ContractValid: 'False/ContractMismatch',
        AcceptancePassed: 'Unknown/ContractMismatch',
        Ready: 'False/ContractMismatch',
      },
    ],
    [
      'acceptance failed',
      {
        stage: 'acceptance',
        figures,
        result: { ...passed.result, passed: false, failures: ["recall of 'high' is 64.4%"] },
      },
      {
        ContractValid: 'True/ContractMatches',
        AcceptancePassed: 'False/AcceptanceFailed',
        Ready: 'False/AcceptanceFailed',
      },
    ],
    [
      'passed',
      passed,
      {
        ContractValid: 'True/ContractMatches',
        AcceptancePassed: 'True/AcceptancePassed',
        Ready: 'True/Validated',
      },
    ],
  ])('%s', (_name, validation, expected) => {
    expect(reasons(validation)).toEqual(expected);
  });

  it('records the figures and the version that passed', () => {
    const status = triageModelStatus(model(), passed, now);
    expect(status).toMatchObject({
      observedGeneration: 2,
      digest: `sha256:${figures.digest}`,
      sizeBytes: 2056,
      measuredMemoryMiB: 3.2,
      latency: { p50Ms: 0.013, p99Ms: 0.053 },
      acceptance: { vectors: 400, accuracy: 0.9625 },
      validatedVersion: '2.0.0',
      validatedDigest: `sha256:${figures.digest}`,
      validatedAt: '2026-11-23T10:00:00Z',
    });
    expect(status.conditions?.find((c) => c.type === 'Ready')?.message).toBe(
      'version 2.0.0 (sha256 abababababab) passed: 400 golden vectors, accuracy 96.3%, recall high 96.7%',
    );
  });

  it('keeps the last version that passed when a newer one fails, and its time when it passes again', () => {
    const first = triageModelStatus(model(), passed, now);
    const failed = triageModelStatus(
      model(first, 3),
      { stage: 'contract', figures: { ...figures, digest: 'cd'.repeat(32) }, problems: ['x'] },
      later,
    );
    expect(failed).toMatchObject({
      validatedVersion: '2.0.0',
      validatedDigest: `sha256:${figures.digest}`,
      digest: `sha256:${'cd'.repeat(32)}`,
    });
    const again = triageModelStatus(model(first, 4), passed, later);
    expect(again.validatedAt).toBe('2026-11-23T10:00:00Z');
  });
});

describe('triageModelEvents', () => {
  const ready = (status: 'True' | 'False' | 'Unknown', reason: string) => ({
    type: 'Ready',
    status,
    reason,
    message: reason,
    lastTransitionTime: '2026-11-23T10:00:00Z',
  });
  it.each([
    ['a version passes', undefined, ready('True', 'Validated'), 'Normal Validated Validate'],
    [
      'a version fails acceptance',
      ready('True', 'Validated'),
      ready('False', 'AcceptanceFailed'),
      'Warning AcceptanceFailed Validate',
    ],
    [
      'the source is down',
      undefined,
      ready('False', 'SourceUnavailable'),
      'Warning SourceUnavailable Validate',
    ],
    ['the same verdict again', ready('True', 'Validated'), ready('True', 'Validated'), undefined],
  ] as const)('%s', (_name, before, after, expected) => {
    const told = conditionEvents(before ? [before] : [], [after], triageModelEvents).map(
      (e) => `${e.type} ${e.reason} ${e.action}`,
    );
    expect(told).toEqual(expected ? [expected] : []);
  });
});
