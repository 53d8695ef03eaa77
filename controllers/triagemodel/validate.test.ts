import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { TriageModel } from '../../crds/kinds.ts';
import { triageModelSpec } from '../../crds/triagemodel.ts';
import { exampleModelFiles } from '../../hack/example-model/generate.ts';
import type { ValidationRequest, ValidationResponse } from '../../model/validation-protocol.ts';
import { FakeClock } from '../../operator/clock.ts';
import { createFakeClient } from '../../operator/fake-client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { createValidator, type ValidationState } from './validate.ts';

const settle = async () => {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
};

async function setup(answer: (request: ValidationRequest) => Promise<ValidationResponse>) {
  const client = createFakeClient();
  const configMap = parse(readFileSync(exampleModelFiles.configMap, 'utf8')) as KubeObject;
  configMap.metadata.namespace = 'er';
  await client.create(configMap);
  const manifest = parse(readFileSync('examples/triage-model.yaml', 'utf8')) as TriageModel;
  const model = {
    ...manifest,
    metadata: { name: 'er-news2-risk', namespace: 'er', generation: 1 },
    spec: triageModelSpec.parse(manifest.spec),
  } as TriageModel & { spec: ReturnType<typeof triageModelSpec.parse> };
  const asked: ValidationRequest[] = [];
  const woken: string[] = [];
  const validator = createValidator({
    client,
    validator: {
      validate: (request) => {
        asked.push(request);
        return answer(request);
      },
    },
    clock: new FakeClock(),
    counted: () => {},
    wake: (key) => void woken.push(key),
  });
  const state = () => validator.state('er/er-news2-risk', model, new AbortController().signal);
  return { client, configMap, asked, woken, state };
}

const known = (s: ValidationState) => (s.kind === 'known' ? s.validation : undefined);

describe('validation apart, as the TriageModel controller drives it', () => {
  it('judges a ConfigMap again when its file changes, after the first verdict was told', async () => {
    const { client, configMap, asked, woken, state } = await setup(async (request) => ({
      fetched: true,
      digest: 'a'.repeat(64),
      sizeBytes: 'base64' in request.source ? request.source.base64.length : 0,
      outcome: { ok: false, stage: 'load', message: 'not a model' },
    }));
    expect((await state()).kind).toBe('pending');
    await settle();
    expect(woken).toEqual(['er/er-news2-risk']);
    expect(known(await state())).toMatchObject({ stage: 'load' });
    expect(asked).toHaveLength(1);
    // The file is rewritten: the next look reads it and asks about the new bytes.
    await client.patch(
      configMap,
      { binaryData: { 'model.onnx': Buffer.from('a fixed model').toString('base64') } },
      { type: 'merge' },
    );
    expect((await state()).kind).toBe('pending');
    expect(asked).toHaveLength(2);
  });

  it('tells a fault of its own as a retry and wakes the model, never leaving it without a status', async () => {
    // An answer the controller cannot read (no signature): judging it throws.
    const { woken, state } = await setup(async () => ({
      fetched: true,
      digest: 'a'.repeat(64),
      sizeBytes: 1,
      outcome: { ok: true } as never,
    }));
    expect((await state()).kind).toBe('pending');
    await settle();
    expect(woken).toEqual(['er/er-news2-risk']);
    const told = await state();
    expect(told).toMatchObject({ kind: 'known', validation: { stage: 'retry' } });
    expect((known(told) as { message: string }).message).toMatch(
      /^validation failed: .*; trying again in 15 s$/,
    );
  });
});
