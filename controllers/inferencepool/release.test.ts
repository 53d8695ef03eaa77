import { describe, expect, it } from 'vitest';
import type { TriageModel } from '../../crds/kinds.ts';
import { chooseRelease, type ModelRelease, modelState } from './release.ts';

const digest = 'ab'.repeat(32);
const contract: ModelRelease['contract'] = {
  version: '1.0.0',
  inputs: { tensorName: 'vitals', elementType: 'float32', features: [{ name: 'pulse' }] },
  outputs: { tensorName: 'probabilities', labels: ['high', 'low'] },
  executionProviders: ['coreml', 'cpu'],
};
const model = (status: Record<string, unknown> | undefined, generation = 3, http = false): TriageModel =>
  ({
    apiVersion: 'aurora.health/v1alpha1',
    kind: 'TriageModel',
    metadata: { name: 'er', namespace: 'emergency', generation },
    spec: {
      version: '1.0.0',
      source: http
        ? {
            http: {
              url: 'https://models.example/er.onnx',
              sha256: digest,
              timeoutSeconds: 60,
              maxSizeMiB: 512,
            },
          }
        : { configMap: { name: 'er-model', key: 'model.onnx' } },
      inputs: contract.inputs,
      outputs: contract.outputs,
      executionProviders: ['coreml', 'cpu'],
    },
    status,
  }) as unknown as TriageModel;
const ready = (status: 'True' | 'False' | 'Unknown', reason = 'Validated') => ({
  type: 'Ready',
  status,
  reason,
  message: 'm',
  lastTransitionTime: '2026-11-23T10:00:00Z',
});

describe('modelState', () => {
  const validatedStatus = {
    observedGeneration: 3,
    conditions: [ready('True')],
    digest: `sha256:${digest}`,
    validatedVersion: '1.0.0',
    validatedDigest: `sha256:${digest}`,
    measuredMemoryMiB: 22.7,
  };
  it.each([
    ['no TriageModel', undefined, 'missing'],
    ['no status yet', model(undefined), 'pending'],
    ['status of an older generation', model({ ...validatedStatus, observedGeneration: 2 }), 'pending'],
    ['Ready Unknown', model({ ...validatedStatus, conditions: [ready('Unknown', 'Validating')] }), 'pending'],
    [
      'failed acceptance',
      model({ ...validatedStatus, conditions: [ready('False', 'AcceptanceFailed')] }),
      'rejected',
    ],
    ['validated', model(validatedStatus), 'validated'],
    [
      'Ready but the validated digest is an older file',
      model({ ...validatedStatus, digest: `sha256:${'cd'.repeat(32)}` }),
      'pending',
    ],
  ])('%s → %s', (_name, m, kind) => {
    expect(modelState('er', m).kind).toBe(kind);
  });

  it('records what the pods need from a validated model', () => {
    const state = modelState('er', model(validatedStatus, 3, true));
    expect(state).toMatchObject({
      kind: 'validated',
      release: {
        version: '1.0.0',
        digest,
        measuredMemoryMiB: 22.7,
        http: { url: 'https://models.example/er.onnx', sha256: digest },
      },
    });
  });

  it('releases a small file itself, whatever its source; only a large HTTP file is left to the pods', () => {
    const small = modelState('er', model({ ...validatedStatus, sizeBytes: 2056 }, 3, true));
    expect(small.kind === 'validated' && small.release.http).toBeUndefined();
    const large = modelState('er', model({ ...validatedStatus, sizeBytes: 50 * 2 ** 20 }, 3, true));
    expect(large.kind === 'validated' && large.release.http?.url).toBe('https://models.example/er.onnx');
  });

  it('carries the reason a version was rejected', () => {
    const state = modelState(
      'er',
      model({ ...validatedStatus, conditions: [ready('False', 'ContractMismatch')] }),
    );
    expect(state).toMatchObject({ kind: 'rejected', reason: 'ContractMismatch', version: '1.0.0' });
  });
});

describe('chooseRelease', () => {
  const known = new Set(['pool-1-0-0', 'pool-1-1-0']);
  it.each([
    ['the newest, with no rollback', {}, { name: 'pool-1-1-0', rolledBack: false }],
    [
      'the release rolled back to',
      { to: 'pool-1-0-0', from: 'pool-1-1-0' },
      { name: 'pool-1-0-0', rolledBack: true },
    ],
    // A newer version passed since: the rollback lapses.
    [
      'the newest once another version passed',
      { to: 'pool-1-0-0', from: 'pool-0-9-0' },
      { name: 'pool-1-1-0', rolledBack: false },
    ],
    [
      'the newest when the earlier release is gone',
      { to: 'pool-0-1-0', from: 'pool-1-1-0' },
      { name: 'pool-1-1-0', rolledBack: false },
    ],
  ])('%s', (_n, rollback, expected) => {
    expect(chooseRelease({ newest: 'pool-1-1-0', known, rollback })).toEqual(expected);
  });
});
