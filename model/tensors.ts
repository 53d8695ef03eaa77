import ort from 'onnxruntime-node';
import type { TriageModelSpec } from '../crds/triagemodel.ts';

export type ElementType = TriageModelSpec['inputs']['elementType'];

/**
 * The input tensor for rows of feature values, in the element type the contract declares: validation
 * and serving build it the same way, so a model is served exactly as it was tested.
 */
export function inputTensor(type: ElementType | undefined, rows: readonly number[][]): ort.Tensor {
  const dims = [rows.length, rows[0]?.length ?? 0];
  const flat = rows.flat();
  switch (type) {
    case 'float64':
      return new ort.Tensor('float64', Float64Array.from(flat), dims);
    case 'int32':
      return new ort.Tensor('int32', Int32Array.from(flat), dims);
    case 'int64':
      return new ort.Tensor('int64', BigInt64Array.from(flat.map((x) => BigInt(Math.round(x)))), dims);
    default:
      return new ort.Tensor('float32', Float32Array.from(flat), dims);
  }
}
