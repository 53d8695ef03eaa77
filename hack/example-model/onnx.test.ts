import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { exampleGoldenFeatures, exampleModelFiles } from './generate.ts';
import { deepenedModel } from './onnx.ts';

const example = readFileSync(exampleModelFiles.model);
const features = exampleGoldenFeatures();

async function probabilities(bytes: Uint8Array): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
  const input = new ort.Tensor('float32', Float32Array.from(features.flat()), [features.length, 7]);
  const out = await session.run({ vitals: input });
  await session.release();
  return out.probabilities?.data as Float32Array;
}

describe('deepenedModel', () => {
  it('classifies every golden vector bit for bit as the example does, with the added layers run', async () => {
    const deepened = deepenedModel(example, { layers: 3, width: 96, seed: 5 });
    // Two added 96 x 96 layers and the widened first and last: the file carries their weights.
    expect(deepened.length).toBeGreaterThan(example.length + 2 * 96 * 96 * 4);
    const [expected, actual] = await Promise.all([probabilities(example), probabilities(deepened)]);
    expect(actual.length).toBe(features.length * 4);
    expect(Buffer.from(actual.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
  });

  it('would change the classifications if the added units reached the output', async () => {
    // The check above can fail: the same model with the identity blocks' diagonal halved does not agree.
    const deepened = deepenedModel(example, { layers: 2, width: 64, seed: 5 });
    const halved = new Uint8Array(deepened);
    const view = Buffer.from(halved.buffer);
    let changed = 0;
    for (let at = view.indexOf(Buffer.from(new Float32Array([1]).buffer)); at >= 0; ) {
      view.writeFloatLE(0.5, at);
      changed++;
      at = view.indexOf(Buffer.from(new Float32Array([1]).buffer), at + 4);
    }
    expect(changed).toBeGreaterThan(0);
    const [expected, actual] = await Promise.all([probabilities(example), probabilities(halved)]);
    expect(Buffer.from(actual.buffer).equals(Buffer.from(expected.buffer))).toBe(false);
  });

  it('refuses a width no larger than the example hidden layer', () => {
    expect(() => deepenedModel(example, { layers: 2, width: 4, seed: 1 })).toThrow(/width must exceed/);
  });
});
