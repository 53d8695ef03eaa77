import { describe, expect, it } from 'vitest';
import { checkContract, type ModelSignature } from './contract.ts';

const spec = {
  inputs: {
    tensorName: 'vitals',
    elementType: 'float32' as const,
    features: ['a', 'b', 'c'].map((name) => ({ name })),
  },
  outputs: { tensorName: 'probabilities', labels: ['high', 'medium', 'low'] },
};
const good: ModelSignature = {
  inputs: [{ name: 'vitals', type: 'float32', shape: ['batch', 3] }],
  outputs: [{ name: 'probabilities', type: 'float32', shape: ['batch', 3] }],
};

describe('checkContract', () => {
  it('accepts a model that matches, with a dynamic batch', () => {
    expect(checkContract(spec, good)).toEqual({ valid: true, problems: [] });
  });

  it.each([
    {
      name: 'input renamed',
      model: { ...good, inputs: [{ name: 'x', type: 'float32', shape: ['batch', 3] }] },
      problem: "the model has no input named 'vitals' (it has 'x'): set spec.inputs.tensorName",
    },
    {
      name: 'wrong element type',
      model: { ...good, inputs: [{ name: 'vitals', type: 'float64', shape: ['batch', 3] }] },
      problem: "input 'vitals' holds float64, the spec declares float32: set spec.inputs.elementType",
    },
    {
      name: 'fewer features',
      model: { ...good, inputs: [{ name: 'vitals', type: 'float32', shape: ['batch', 2] }] },
      problem:
        "input 'vitals' has shape [batch, 2], the spec declares 3 features: the last dimension must be 3",
    },
    {
      name: 'feature dimension dynamic',
      model: { ...good, inputs: [{ name: 'vitals', type: 'float32', shape: ['batch', 'n'] }] },
      problem:
        "input 'vitals' has shape [batch, n], the spec declares 3 features: the last dimension must be 3",
    },
    {
      name: 'an extra input',
      model: { ...good, inputs: [...good.inputs, { name: 'mask', type: 'float32', shape: ['batch', 3] }] },
      problem: "the model takes further inputs Aurora cannot feed: 'mask'",
    },
    {
      name: 'output renamed',
      model: { ...good, outputs: [{ name: 'scores', type: 'float32', shape: ['batch', 3] }] },
      problem: "the model has no output named 'probabilities' (it has 'scores'): set spec.outputs.tensorName",
    },
    {
      name: 'one label more in the model',
      model: { ...good, outputs: [{ name: 'probabilities', type: 'float32', shape: ['batch', 4] }] },
      problem: "output 'probabilities' has shape [batch, 4], the spec declares 3 labels (high, medium, low)",
    },
    {
      name: 'labels as integers',
      model: { ...good, outputs: [{ name: 'probabilities', type: 'int64', shape: ['batch', 3] }] },
      problem: "output 'probabilities' holds int64; per-label probabilities must be float32 or float64",
    },
  ])('refuses: $name', ({ model, problem }) => {
    const result = checkContract(spec, model as ModelSignature);
    expect(result.valid).toBe(false);
    expect(result.problems).toEqual([problem]);
  });

  it('checks a declared shape dimension by dimension', () => {
    const declared = { ...spec, inputs: { ...spec.inputs, shape: [1, 3] } };
    expect(checkContract(declared, good).valid).toBe(true);
    const fixedBatch = { ...good, inputs: [{ name: 'vitals', type: 'float32', shape: [8, 3] }] };
    expect(checkContract(declared, fixedBatch).problems).toEqual([
      "input 'vitals' has shape [8, 3], spec.inputs.shape is [1, 3]",
    ]);
  });
});
