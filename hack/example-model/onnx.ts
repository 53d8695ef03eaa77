import onnxProto from 'onnx-proto';
import { seededRandom } from './patients.ts';
import type { Classifier } from './train.ts';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

export interface OnnxContract {
  inputName: string;
  outputName: string;
  features: readonly string[];
  labels: readonly string[];
  version: string;
}

function tensor(
  name: string,
  dims: number[],
  values: readonly number[] | Float32Array,
): onnxProto.onnx.ITensorProto {
  const data = new Float32Array(values);
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(data.buffer) };
}

function floatTensorType(name: string, dims: Array<number | string>): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/**
 * The classifier as an ONNX graph (opset 13): Sub and Div standardise the vitals with the training
 * mean and spread; MatMul picks each band's vital, Sub/Mul/Sigmoid make its soft step; Concat joins
 * both; MatMul/Add/Relu is the hidden layer, MatMul/Add/Softmax gives one probability per label. The
 * contract (names, labels, version) is also written to the model's metadata.
 */
export function classifierToOnnx(model: Classifier, contract: OnnxContract): Uint8Array {
  const inputs = model.mean.length;
  const bands = model.bands.feature.length;
  const hidden = model.b1.length;
  const classes = model.b2.length;
  // pick[i][b] = 1 when band b reads vital i: one MatMul lays every band's vital side by side.
  const pick = Array.from({ length: inputs }, (_, i) => model.bands.feature.map((f) => (f === i ? 1 : 0)));
  const graph: onnxProto.onnx.IGraphProto = {
    name: 'news2_risk',
    input: [floatTensorType(contract.inputName, ['batch', inputs])],
    output: [floatTensorType(contract.outputName, ['batch', classes])],
    initializer: [
      tensor('mean', [inputs], model.mean),
      tensor('std', [inputs], model.std),
      ...(bands > 0
        ? [
            tensor('band_pick', [inputs, bands], pick.flat()),
            tensor('band_threshold', [bands], model.bands.threshold),
            tensor('band_sharpness', [bands], model.bands.sharpness),
          ]
        : []),
      tensor('w1', [inputs + bands, hidden], model.w1.flat()),
      tensor('b1', [hidden], model.b1),
      tensor('w2', [hidden, classes], model.w2.flat()),
      tensor('b2', [classes], model.b2),
    ],
    node: [
      { opType: 'Sub', input: [contract.inputName, 'mean'], output: ['centred'], name: 'centre' },
      { opType: 'Div', input: ['centred', 'std'], output: ['standardised'], name: 'scale' },
      ...(bands > 0
        ? [
            {
              opType: 'MatMul',
              input: [contract.inputName, 'band_pick'],
              output: ['band_value'],
              name: 'band_pick',
            },
            {
              opType: 'Sub',
              input: ['band_value', 'band_threshold'],
              output: ['band_offset'],
              name: 'band_offset',
            },
            {
              opType: 'Mul',
              input: ['band_offset', 'band_sharpness'],
              output: ['band_logit'],
              name: 'band_sharpen',
            },
            { opType: 'Sigmoid', input: ['band_logit'], output: ['band_step'], name: 'band_step' },
            {
              opType: 'Concat',
              input: ['standardised', 'band_step'],
              output: ['layer_input'],
              name: 'join',
              attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
            },
          ]
        : [{ opType: 'Identity', input: ['standardised'], output: ['layer_input'], name: 'join' }]),
      { opType: 'MatMul', input: ['layer_input', 'w1'], output: ['hidden_pre'], name: 'dense1' },
      { opType: 'Add', input: ['hidden_pre', 'b1'], output: ['hidden_bias'], name: 'bias1' },
      { opType: 'Relu', input: ['hidden_bias'], output: ['hidden'], name: 'relu' },
      { opType: 'MatMul', input: ['hidden', 'w2'], output: ['logits_pre'], name: 'dense2' },
      { opType: 'Add', input: ['logits_pre', 'b2'], output: ['logits'], name: 'bias2' },
      {
        opType: 'Softmax',
        input: ['logits'],
        output: [contract.outputName],
        name: 'softmax',
        attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
      },
    ],
  };
  const message = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'aurora-example-model',
    producerVersion: contract.version,
    modelVersion: 1,
    docString: 'Synthetic NEWS2 risk classifier for exercising Aurora. Not a medical device.',
    graph,
    metadataProps: [
      { key: 'aurora.features', value: JSON.stringify(contract.features) },
      { key: 'aurora.labels', value: JSON.stringify(contract.labels) },
      { key: 'aurora.version', value: contract.version },
    ],
  });
  return onnx.ModelProto.encode(message).finish();
}

/** The classifier with every weight rounded to float32, as the ONNX file stores it. */
export function asFloat32(model: Classifier): Classifier {
  const f = (xs: number[]) => xs.map((x) => Math.fround(x));
  return {
    mean: f(model.mean),
    std: f(model.std),
    bands: {
      feature: model.bands.feature,
      threshold: f(model.bands.threshold),
      sharpness: f(model.bands.sharpness),
    },
    w1: model.w1.map(f),
    b1: f(model.b1),
    w2: model.w2.map(f),
    b2: f(model.b2),
  };
}

/**
 * The same model grown to at least minBytes by an initializer no node reads: it classifies exactly as
 * before, for tests that need a file too large to travel in a ConfigMap.
 */
export function paddedModel(bytes: Uint8Array, minBytes: number): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const floats = Math.ceil(Math.max(0, minBytes - bytes.length) / 4) + 1024;
  model.graph?.initializer?.push(
    onnx.TensorProto.create({
      name: 'padding',
      dims: [floats],
      dataType: FLOAT,
      rawData: new Uint8Array(floats * 4),
    }),
  );
  return onnx.ModelProto.encode(model).finish();
}

/**
 * The same model taking its input as float64 or int64: a Cast to float at the front, so it classifies
 * as before (int64 rounds each value). For tests of element types other than float32.
 */
export function withInputType(bytes: Uint8Array, type: 'float64' | 'int64'): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph as onnxProto.onnx.GraphProto;
  const input = graph.input[0] as onnxProto.onnx.ValueInfoProto;
  const inner = `${input.name}_as_float`;
  for (const node of graph.node)
    node.input = (node.input ?? []).map((name) => (name === input.name ? inner : name));
  const tensorType = input.type?.tensorType as onnxProto.onnx.TypeProto.Tensor;
  tensorType.elemType =
    type === 'float64' ? onnx.TensorProto.DataType.DOUBLE : onnx.TensorProto.DataType.INT64;
  graph.node.unshift(
    onnx.NodeProto.create({
      opType: 'Cast',
      input: [input.name],
      output: [inner],
      attribute: [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }],
    }),
  );
  return onnx.ModelProto.encode(model).finish();
}

export interface Deepening {
  /** Hidden layers in all (the first is the example's own, widened). */
  layers: number;
  /** Units in each hidden layer; more than the example's own hidden units. */
  width: number;
  seed: number;
}

/**
 * The same model made as costly to run as a larger network: its hidden layer is widened to
 * `width` units and followed by further hidden layers of that width, so each row costs about
 * (layers - 1) x width^2 multiply-adds. It classifies as before: the example's hidden units pass through
 * every added layer by an identity block (a ReLU output is never negative, so ReLU keeps it, and every
 * other term of those sums is an exact zero), the added units have seeded random weights, and the
 * output layer gives them zero weight. The first and last layers add the same terms as the example's
 * plus exact zeros, so the probabilities agree to the last bit wherever the math library sums in the
 * same order (the test checks the golden vectors). For benchmarks that need inference to cost what a
 * real model's does.
 */
export function deepenedModel(bytes: Uint8Array, deepening: Deepening): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph as onnxProto.onnx.GraphProto;
  const dense2 = graph.node.find((n) => n.name === 'dense2');
  if (!dense2) throw new Error('the model has no node dense2');
  const init = (name: string) => {
    const found = graph.initializer.find((t) => t.name === name);
    if (!found) throw new Error(`the model has no initializer ${name}`);
    return found;
  };
  const floats = (t: onnxProto.onnx.ITensorProto) => {
    const raw = t.rawData as Uint8Array;
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  };
  const [inputs, hidden] = (init('w1').dims ?? []).map(Number) as [number, number];
  const classes = Number(init('w2').dims?.[1]);
  const { width, layers } = deepening;
  if (!(width > hidden) || !(layers >= 1))
    throw new Error(`width must exceed ${hidden} and layers be 1 or more`);
  const random = seededRandom(deepening.seed);
  // He initialisation for the added units, so their activations neither vanish nor grow layer to layer.
  const he = (fanIn: number) => () => (random() * 2 - 1) * Math.sqrt(6 / fanIn);
  const w1 = floats(init('w1'));
  const b1 = floats(init('b1'));
  const w2 = floats(init('w2'));
  const first = new Float32Array(inputs * width);
  const firstWeight = he(inputs);
  for (let i = 0; i < inputs; i++)
    for (let j = 0; j < width; j++)
      first[i * width + j] = j < hidden ? (w1[i * hidden + j] ?? 0) : firstWeight();
  const firstBias = new Float32Array(width);
  firstBias.set(b1);
  const replace = (name: string, dims: number[], values: Float32Array) => {
    const t = init(name);
    t.dims = dims;
    t.rawData = new Uint8Array(values.buffer);
  };
  replace('w1', [inputs, width], first);
  replace('b1', [width], firstBias);
  const last = new Float32Array(width * classes);
  last.set(w2);
  replace('w2', [width, classes], last);
  let previous = 'hidden';
  for (let k = 1; k < layers; k++) {
    const weight = new Float32Array(width * width);
    const added = he(width);
    for (let i = 0; i < width; i++)
      for (let j = 0; j < width; j++)
        weight[i * width + j] = i < hidden || j < hidden ? (i === j ? 1 : 0) : added();
    graph.initializer.push(
      onnx.TensorProto.create(tensor(`deep${k}_w`, [width, width], weight)),
      onnx.TensorProto.create(tensor(`deep${k}_b`, [width], new Float32Array(width))),
    );
    const output = `deep${k}`;
    graph.node.splice(
      graph.node.indexOf(dense2),
      0,
      onnx.NodeProto.create({
        opType: 'MatMul',
        input: [previous, `deep${k}_w`],
        output: [`${output}_pre`],
        name: `${output}_dense`,
      }),
      onnx.NodeProto.create({
        opType: 'Add',
        input: [`${output}_pre`, `deep${k}_b`],
        output: [`${output}_bias`],
        name: `${output}_add`,
      }),
      onnx.NodeProto.create({
        opType: 'Relu',
        input: [`${output}_bias`],
        output: [output],
        name: `${output}_relu`,
      }),
    );
    previous = output;
  }
  dense2.input = [previous, 'w2'];
  return onnx.ModelProto.encode(model).finish();
}
