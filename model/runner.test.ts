import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { TriageModelSpec } from '../crds/triagemodel.ts';
import { contract, exampleModelFiles } from '../hack/example-model/generate.ts';
import { externalDataModel, memoryBombModel } from '../hack/example-model/hostile.ts';
import { news2Risk } from '../hack/example-model/news2.ts';
import { asFloat32, classifierToOnnx, withInputType } from '../hack/example-model/onnx.ts';
import { parseGoldenVectors, percentile, scoreAcceptance } from './acceptance.ts';
import { checkContract } from './contract.ts';
import { createModelRunner, type RunOutcome } from './runner.ts';

const root = join(import.meta.dirname, '..');
const spec = parse(readFileSync(join(root, 'examples/triage-model.yaml'), 'utf8')).spec as TriageModelSpec;
const goldenText = readFileSync(exampleModelFiles.goldenVectors, 'utf8');
const golden = parseGoldenVectors(goldenText, spec.inputs.features.length, spec.outputs.labels);
if ('error' in golden) throw new Error(golden.error);
const runner = createModelRunner({ concurrency: 2, timeoutMs: 30_000 });
const request = {
  executionProviders: spec.executionProviders,
  vectors: golden.vectors.map((v) => v.features),
  inputName: spec.inputs.tensorName,
  outputName: spec.outputs.tensorName,
  elementType: spec.inputs.elementType,
  latencyRuns: 50,
};

/** A golden vector with every vital rounded to a whole number, and its NEWS2 label for those values. */
function wholeNumbers(v: { features: number[]; expectedLabel: string }) {
  const f = v.features.map(Math.round);
  const vitals = {
    respirationRatePerMin: f[0] as number,
    spo2Percent: f[1] as number,
    supplementalOxygen: f[2] === 1,
    systolicBpMmHg: f[3] as number,
    pulsePerMin: f[4] as number,
    alteredConsciousness: f[5] === 1,
    temperatureCelsius: f[6] as number,
  };
  return { features: f, expectedLabel: news2Risk(vitals).risk as string };
}

function expectOk(outcome: RunOutcome) {
  if (!outcome.ok) throw new Error(`expected the model to run: ${outcome.stage}: ${outcome.message}`);
  return outcome;
}

describe('the model runner, with onnxruntime-node', () => {
  it('runs the example model: contract valid, acceptance passed, figures measured', async () => {
    const outcome = expectOk(await runner.run(readFileSync(exampleModelFiles.model), request));
    expect(checkContract(spec, outcome.signature)).toEqual({ valid: true, problems: [] });
    expect(outcome.executionProvider).toBe(process.platform === 'darwin' ? 'coreml' : 'cpu');
    const latencies = [...(outcome.latenciesMs ?? [])].sort((a, b) => a - b);
    expect(latencies).toHaveLength(50);
    const result = scoreAcceptance(
      spec.acceptance,
      spec.outputs.labels,
      golden.vectors,
      outcome.probabilities ?? [],
      {
        p50Ms: percentile(latencies, 50),
        p99Ms: percentile(latencies, 99),
      },
    );
    expect(result.failures).toEqual([]);
    expect(result.accuracy).toBeGreaterThan(0.95);
    expect(outcome.sessionMemoryMiB).toBeGreaterThanOrEqual(0);
  });

  it('runs a model that takes float64: the contract holds and it passes acceptance', async () => {
    const typed = withInputType(readFileSync(exampleModelFiles.model), 'float64');
    const outcome = expectOk(await runner.run(typed, { ...request, elementType: 'float64' }));
    const typedSpec = { ...spec, inputs: { ...spec.inputs, elementType: 'float64' as const } };
    expect(checkContract(typedSpec, outcome.signature)).toEqual({ valid: true, problems: [] });
    const result = scoreAcceptance(
      spec.acceptance,
      spec.outputs.labels,
      golden.vectors,
      outcome.probabilities ?? [],
      {
        p50Ms: 0,
        p99Ms: 0,
      },
    );
    expect(result.failures).toEqual([]);
  });

  it('runs a model that takes int64: it passes acceptance on whole-number vitals, as the float model runs them', async () => {
    const wholeVectors = golden.vectors.map(wholeNumbers);
    const whole = wholeVectors.map((v) => v.features);
    const typed = withInputType(readFileSync(exampleModelFiles.model), 'int64');
    const asInt = expectOk(await runner.run(typed, { ...request, vectors: whole, elementType: 'int64' }));
    const typedSpec = { ...spec, inputs: { ...spec.inputs, elementType: 'int64' as const } };
    expect(checkContract(typedSpec, asInt.signature)).toEqual({ valid: true, problems: [] });
    const asFloat = expectOk(
      await runner.run(readFileSync(exampleModelFiles.model), { ...request, vectors: whole }),
    );
    expect(asInt.probabilities?.length).toBe(golden.vectors.length);
    const result = scoreAcceptance(
      spec.acceptance,
      spec.outputs.labels,
      wholeVectors,
      asInt.probabilities ?? [],
      {
        p50Ms: 0,
        p99Ms: 0,
      },
    );
    expect(result.failures).toEqual([]);
    for (const [i, row] of (asInt.probabilities ?? []).entries())
      for (const [j, p] of row.entries())
        expect(p).toBeCloseTo(asFloat.probabilities?.[i]?.[j] ?? Number.NaN, 6);
  });

  it('refuses the under-triaging model at the high-acuity recall floor', async () => {
    const outcome = expectOk(await runner.run(readFileSync(exampleModelFiles.underTriage), request));
    const result = scoreAcceptance(
      spec.acceptance,
      spec.outputs.labels,
      golden.vectors,
      outcome.probabilities ?? [],
    );
    expect(result.passed).toBe(false);
    expect(result.failures[0]).toMatch(
      /^recall of 'high' is \d+\.\d% \(\d+ of \d+\), below the floor of 95\.0%$/,
    );
  });

  it('reports a contract mismatch for a model whose input is named otherwise', async () => {
    const weights = asFloat32({
      mean: Array(7).fill(0),
      std: Array(7).fill(1),
      bands: { feature: [], threshold: [], sharpness: [] },
      w1: Array.from({ length: 7 }, () => [0.1, 0.2]),
      b1: [0, 0],
      w2: [
        [1, 0, 0, 0],
        [0, 1, 0, 0],
      ],
      b2: [0, 0, 0, 0],
    });
    const renamed = classifierToOnnx(weights, { ...contract, inputName: 'features' });
    const outcome = expectOk(await runner.run(renamed, { ...request, inputName: undefined }));
    expect(checkContract(spec, outcome.signature).problems).toEqual([
      "the model has no input named 'vitals' (it has 'features'): set spec.inputs.tensorName",
    ]);
  });

  const { onnx } = onnxProto;
  const hugeTensor = onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'huge',
      initializer: [
        {
          name: 'w',
          dims: [4_000_000_000],
          dataType: onnx.TensorProto.DataType.FLOAT,
          rawData: new Uint8Array(16),
        },
      ],
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } }],
      node: [{ opType: 'Identity', input: ['x'], output: ['y'] }],
    },
  }).finish();

  it.each([
    ['garbage bytes', Buffer.from('this is not an onnx model at all, just text pretending to be one')],
    ['a truncated file', readFileSync(exampleModelFiles.model).subarray(0, 900)],
    ['a length prefix claiming 2 GiB', Buffer.from([0x3a, 0xff, 0xff, 0xff, 0xff, 0x07, 0x01, 0x02])],
    ['a tensor declaring 4 billion floats', Buffer.from(hugeTensor)],
    ['an empty file', Buffer.alloc(0)],
  ])('survives %s and never accepts it', async (_name, bytes) => {
    const outcome = await runner.run(bytes, request);
    if (outcome.ok) {
      // Loaded (onnxruntime does not read a bogus initializer until it is used): the contract refuses it.
      expect(checkContract(spec, outcome.signature).valid).toBe(false);
    } else {
      expect(['load', 'run', 'crash', 'memory']).toContain(outcome.stage);
      expect(outcome.message.length).toBeGreaterThan(0);
    }
    // This process is unharmed and the runner still works.
    expectOk(await runner.run(readFileSync(exampleModelFiles.model), { ...request, latencyRuns: 1 }));
  });

  it('ends a run that exceeds its time limit', async () => {
    const impatient = createModelRunner({ timeoutMs: 50 });
    const outcome = await impatient.run(readFileSync(exampleModelFiles.model), request);
    expect(outcome).toEqual({
      ok: false,
      stage: 'timeout',
      message: 'loading and testing the model took longer than 0.05 s',
    });
  });

  it('reports a model that allocates past the memory bound as such, and stays within it', async () => {
    const bounded = createModelRunner({ memoryMiB: 256, timeoutMs: 60_000 });
    const outcome = await bounded.run(Buffer.from(memoryBombModel()), request);
    expect(outcome).toMatchObject({ ok: false, stage: 'memory' });
    // The same runner still validates a good model within the same bound.
    expectOk(await bounded.run(readFileSync(exampleModelFiles.model), { ...request, latencyRuns: 1 }));
  });

  it('refuses a model that keeps its weights in an external file, before loading it', async () => {
    const outcome = await runner.run(Buffer.from(externalDataModel()), request);
    expect(outcome).toMatchObject({ ok: false, stage: 'load' });
    if (!outcome.ok) expect(outcome.message).toMatch(/keeps 1 tensor\(s\) in external data files \(w\)/);
  });

  it('refuses an answer that is not one row of labels per vector, before copying it', async () => {
    // Declares [batch, 4] but answers with its 7 inputs: a model's declared shape binds nothing.
    const wide = onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'wide',
        input: [
          {
            name: 'vitals',
            type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'b' }, { dimValue: 7 }] } } },
          },
        ],
        output: [
          {
            name: 'probabilities',
            type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'b' }, { dimValue: 4 }] } } },
          },
        ],
        node: [{ opType: 'Identity', input: ['vitals'], output: ['probabilities'] }],
      },
    }).finish();
    const outcome = await runner.run(Buffer.from(wide), { ...request, outputWidth: 4 });
    expect(outcome).toMatchObject({ ok: false, stage: 'run' });
    if (!outcome.ok)
      expect(outcome.message).toBe(
        `the model gave ${golden.vectors.length * 7} values for ${golden.vectors.length} vectors; the contract expects 4 per vector`,
      );
  });
});
