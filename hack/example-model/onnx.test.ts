import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { exampleGoldenFeatures, exampleModelFiles } from './generate.ts';
import { deepenedModel } from './onnx.ts';

const { onnx } = onnxProto;
const example = readFileSync(exampleModelFiles.model);
const features = exampleGoldenFeatures();

async function probabilities(bytes: Uint8Array): Promise<Buffer> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
  const input = new ort.Tensor('float32', Float32Array.from(features.flat()), [features.length, 7]);
  const data = (await session.run({ vitals: input })).probabilities?.data as Float32Array;
  await session.release();
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

describe('deepenedModel', () => {
  it('runs every added layer in order and classifies the golden vectors bit for bit as the example', async () => {
    const deepened = deepenedModel(example, { layers: 3, width: 96, seed: 5 });
    const graph = onnx.ModelProto.decode(deepened).graph as onnxProto.onnx.GraphProto;
    const order = graph.node.map((n) => n.name);
    // Each added layer reads the one before it, and the output layer reads the last.
    expect(order.slice(order.indexOf('relu') + 1, order.indexOf('dense2') + 1)).toEqual([
      'deep1_dense',
      'deep1_add',
      'deep1_relu',
      'deep2_dense',
      'deep2_add',
      'deep2_relu',
      'dense2',
    ]);
    expect(graph.node.find((n) => n.name === 'deep2_dense')?.input).toEqual(['deep1', 'deep2_w']);
    expect(graph.node.find((n) => n.name === 'dense2')?.input).toEqual(['deep2', 'w2']);
    expect(graph.initializer.find((t) => t.name === 'w2')?.dims?.map(Number)).toEqual([96, 4]);
    const [expected, actual] = await Promise.all([probabilities(example), probabilities(deepened)]);
    expect(actual.length).toBe(features.length * 4 * 4);
    expect(actual.equals(expected)).toBe(true);
  });

  it('would classify otherwise if the added units reached the output', async () => {
    // The check above can fail: the same model with the first added unit weighted into the output.
    const deepened = deepenedModel(example, { layers: 2, width: 64, seed: 5 });
    const model = onnx.ModelProto.decode(deepened);
    const w2 = model.graph?.initializer?.find((t) => t.name === 'w2') as onnxProto.onnx.TensorProto;
    // A copy: the decoded bytes are a view into the file's own buffer.
    const weights = new Float32Array(new Uint8Array(w2.rawData).buffer);
    // Row `hidden` of w2 is the first added unit: the example's own units come before it.
    const firstAdded = Number(
      onnx.ModelProto.decode(example).graph?.initializer?.find((t) => t.name === 'b1')?.dims?.[0],
    );
    for (let k = 0; k < 4; k++) weights[firstAdded * 4 + k] = k === 0 ? 5 : -5;
    w2.rawData = new Uint8Array(weights.buffer);
    const [expected, actual] = await Promise.all([
      probabilities(example),
      probabilities(onnx.ModelProto.encode(model).finish()),
    ]);
    expect(actual.equals(expected)).toBe(false);
  });

  it('refuses a width no larger than the example hidden layer', () => {
    expect(() => deepenedModel(example, { layers: 2, width: 4, seed: 1 })).toThrow(/width must exceed/);
  });
});
