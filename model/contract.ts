import type { TriageModelSpec } from '../crds/triagemodel.ts';

/** What onnxruntime reports of one graph input or output. */
export interface TensorInfo {
  name: string;
  /** onnxruntime's element type name: float32, float64, int64, ... */
  type: string;
  /** Dimensions; a string or -1 is a symbolic (dynamic) dimension. */
  shape: Array<number | string>;
}

export interface ModelSignature {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
}

export interface ContractCheck {
  valid: boolean;
  /** Each mismatch in words a person can act on: what the model has, what the spec declares. */
  problems: string[];
}

const isDynamic = (d: number | string) => typeof d === 'string' || d < 0;
const shapeText = (shape: Array<number | string>) => `[${shape.join(', ')}]`;

/** Checks the model's graph against the TriageModel's declared inputs and outputs. */
export function checkContract(
  spec: Pick<TriageModelSpec, 'inputs' | 'outputs'>,
  model: ModelSignature,
): ContractCheck {
  const problems: string[] = [];
  const features = spec.inputs.features.length;
  const input = model.inputs.find((t) => t.name === spec.inputs.tensorName);
  if (!input) {
    problems.push(
      `the model has no input named '${spec.inputs.tensorName}' (it has ${model.inputs.map((t) => `'${t.name}'`).join(', ') || 'none'}): set spec.inputs.tensorName`,
    );
  } else {
    if (input.type !== spec.inputs.elementType) {
      problems.push(
        `input '${input.name}' holds ${input.type}, the spec declares ${spec.inputs.elementType}: set spec.inputs.elementType`,
      );
    }
    const last = input.shape[input.shape.length - 1];
    if (input.shape.length < 2 || last === undefined || isDynamic(last) || last !== features) {
      problems.push(
        `input '${input.name}' has shape ${shapeText(input.shape)}, the spec declares ${features} features: the last dimension must be ${features}`,
      );
    }
    const declared = spec.inputs.shape;
    if (declared) {
      const mismatch =
        declared.length !== input.shape.length ||
        declared.some((d, i) => {
          const actual = input.shape[i] as number | string;
          return d >= 0 && !isDynamic(actual) && actual !== d;
        });
      if (mismatch) {
        problems.push(
          `input '${input.name}' has shape ${shapeText(input.shape)}, spec.inputs.shape is ${shapeText(declared)}`,
        );
      }
    }
  }
  if (model.inputs.length > 1) {
    const others = model.inputs.filter((t) => t.name !== spec.inputs.tensorName).map((t) => `'${t.name}'`);
    problems.push(`the model takes further inputs Aurora cannot feed: ${others.join(', ')}`);
  }
  const output = model.outputs.find((t) => t.name === spec.outputs.tensorName);
  if (!output) {
    problems.push(
      `the model has no output named '${spec.outputs.tensorName}' (it has ${model.outputs.map((t) => `'${t.name}'`).join(', ') || 'none'}): set spec.outputs.tensorName`,
    );
  } else {
    if (output.type !== 'float32' && output.type !== 'float64') {
      problems.push(
        `output '${output.name}' holds ${output.type}; per-label probabilities must be float32 or float64`,
      );
    }
    const last = output.shape[output.shape.length - 1];
    if (last === undefined || isDynamic(last) || last !== spec.outputs.labels.length) {
      problems.push(
        `output '${output.name}' has shape ${shapeText(output.shape)}, the spec declares ${spec.outputs.labels.length} labels (${spec.outputs.labels.join(', ')})`,
      );
    }
  }
  return { valid: problems.length === 0, problems };
}
