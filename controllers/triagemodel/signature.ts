import type ort from 'onnxruntime-node';
import type { ModelSignature, TensorInfo } from './contract.ts';

/** What an onnxruntime session says of its inputs and outputs, in the shape checkContract reads. */
export function sessionSignature(session: ort.InferenceSession): ModelSignature {
  const info = (name: string, meta: unknown): TensorInfo => {
    const m = meta as { type?: string; shape?: ReadonlyArray<number | string> };
    return { name, type: m?.type ?? 'unknown', shape: [...(m?.shape ?? [])] };
  };
  return {
    inputs: session.inputNames.map((n, i) => info(n, session.inputMetadata[i])),
    outputs: session.outputNames.map((n, i) => info(n, session.outputMetadata[i])),
  };
}
