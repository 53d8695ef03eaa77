import ort from 'onnxruntime-node';
import type { TriageModelSpec } from '../crds/triagemodel.ts';

export type ElementType = TriageModelSpec['inputs']['elementType'];

/** An input tensor's element type, values and dimensions: what a tensor is made of, and what crosses to a thread. */
export interface InputData {
  type: 'float32' | 'float64' | 'int32' | 'int64';
  data: Float32Array | Float64Array | Int32Array | BigInt64Array;
  dims: number[];
}

/**
 * Rows of feature values in the element type the contract declares: validation and serving build the
 * input the same way, so a model is served exactly as it was tested.
 */
export function inputData(type: ElementType | undefined, rows: readonly number[][]): InputData {
  const dims = [rows.length, rows[0]?.length ?? 0];
  const flat = rows.flat();
  switch (type) {
    case 'float64':
      return { type, data: Float64Array.from(flat), dims };
    case 'int32':
      return { type, data: Int32Array.from(flat), dims };
    case 'int64':
      return { type, data: BigInt64Array.from(flat.map((x) => BigInt(Math.round(x)))), dims };
    default:
      return { type: 'float32', data: Float32Array.from(flat), dims };
  }
}

/** The input tensor for rows of feature values, in the element type the contract declares. */
export function inputTensor(type: ElementType | undefined, rows: readonly number[][]): ort.Tensor {
  const { type: elementType, data, dims } = inputData(type, rows);
  return new ort.Tensor(elementType, data, dims);
}

/**
 * The output tensor as one row of numbers per input row, whatever its element type (int64 comes as
 * BigInt); undefined when it is missing or not rows × width values.
 */
export function outputRows(
  tensor: { readonly data: ArrayLike<unknown> } | undefined,
  rows: number,
  width: number,
): number[][] | undefined {
  if (!tensor || tensor.data.length !== rows * width) return undefined;
  const data = tensor.data as ArrayLike<number | bigint>;
  return Array.from({ length: rows }, (_, i) =>
    Array.from({ length: width }, (_, j) => Number(data[i * width + j])),
  );
}

/** The largest magnitude each element type holds: a value beyond it would be stored as something else. */
export const elementRange: Record<ElementType, { max: number; integer: boolean }> = {
  float32: { max: 3.4028234663852886e38, integer: false },
  float64: { max: Number.MAX_VALUE, integer: false },
  int32: { max: 2_147_483_647, integer: true },
  int64: { max: Number.MAX_SAFE_INTEGER, integer: true },
};
