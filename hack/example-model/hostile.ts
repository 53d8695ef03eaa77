// Model files built to hurt whoever loads them, for the tests that prove the validator contains them.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

const vitals = (rows: number | string) => ({
  name: 'vitals',
  type: {
    tensorType: {
      elemType: FLOAT,
      shape: { dim: [typeof rows === 'number' ? { dimValue: rows } : { dimParam: rows }, { dimValue: 7 }] },
    },
  },
});
const probabilities = { name: 'probabilities', type: { tensorType: { elemType: FLOAT } } };

/** A 2 KiB file whose one node asks for `floats` floats (1.2 GB by default) when it runs or is folded. */
export function memoryBombModel(floats = 300_000_000): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'bomb',
      initializer: [
        {
          name: 'shape',
          dims: [1],
          dataType: INT64,
          rawData: new Uint8Array(BigInt64Array.from([BigInt(floats)]).buffer),
        },
      ],
      input: [vitals('n')],
      output: [probabilities],
      node: [{ opType: 'ConstantOfShape', input: ['shape'], output: ['probabilities'] }],
    },
  }).finish();
}

/** A model whose weights are said to lie in another file: a path the loader would open. */
export function externalDataModel(path = ['..', '..', '..', '..', 'etc', 'shadow'].join('/')): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'external',
      initializer: [
        {
          name: 'w',
          dims: [7, 4],
          dataType: FLOAT,
          dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
          externalData: [{ key: 'location', value: path }],
        },
      ],
      input: [vitals(1)],
      output: [probabilities],
      node: [{ opType: 'MatMul', input: ['vitals', 'w'], output: ['probabilities'] }],
    },
  }).finish();
}

/**
 * A model whose answer is log(supplemental_oxygen + shift) for every label. With no shift it is finite
 * for the readiness probe (the feature's middle, 0.5) and for patients on oxygen, -Infinity for those
 * who are not; with a shift of -0.5 the probe itself gets -Infinity.
 */
export function nonFiniteModel(shift = 0): Uint8Array {
  const pick = new Float32Array(7 * 4);
  for (let j = 0; j < 4; j++) pick[2 * 4 + j] = 1;
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'non-finite',
      initializer: [
        { name: 'pick', dims: [7, 4], dataType: FLOAT, rawData: new Uint8Array(pick.buffer) },
        {
          name: 'shift',
          dims: [1],
          dataType: FLOAT,
          rawData: new Uint8Array(new Float32Array([shift]).buffer),
        },
      ],
      input: [vitals('batch')],
      output: [
        {
          name: 'probabilities',
          type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 4 }] } } },
        },
      ],
      node: [
        { opType: 'MatMul', input: ['vitals', 'pick'], output: ['chosen'] },
        { opType: 'Add', input: ['chosen', 'shift'], output: ['shifted'] },
        { opType: 'Log', input: ['shifted'], output: ['probabilities'] },
      ],
    },
  }).finish();
}
