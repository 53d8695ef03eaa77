import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exampleModelFiles, generateExampleModel, independentEvaluation } from './generate.ts';
import { news2Boundaries } from './news2.ts';
import { asFloat32 } from './onnx.ts';

describe('the example model', () => {
  const generated = generateExampleModel();

  it.each(Object.keys(exampleModelFiles) as Array<keyof typeof exampleModelFiles>)(
    'the script reproduces the committed %s byte for byte',
    (key) => {
      expect(Buffer.compare(readFileSync(exampleModelFiles[key]), Buffer.from(generated.files[key]))).toBe(0);
    },
  );

  it('stays small and meets the example manifest thresholds, and the under-triage fixture does not', () => {
    expect(generated.files.model.length).toBeLessThan(64 * 1024);
    expect(generated.goldenAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(generated.goldenRecall.high).toBeGreaterThanOrEqual(0.95);
    expect(generated.goldenRecall.medium).toBeGreaterThanOrEqual(0.8);
    expect(generated.underTriageRecallHigh).toBeLessThan(0.95);
  });

  it('holds on patients drawn independently across the clinical range and at every chart boundary', () => {
    const { independent } = generated;
    expect(independent.patients).toBeGreaterThanOrEqual(2000);
    expect(independent.highRecall).toBeGreaterThanOrEqual(0.95);
    expect(independent.underTriage).toBeLessThanOrEqual(0.05);
  });

  it('measures what it claims: a model that misses a chart step fails the independent check', () => {
    // The shipped model with its oxygen-saturation steps three points low: it misses hypoxia.
    const model = asFloat32(generated.classifier);
    const shifted = {
      ...model,
      bands: {
        ...model.bands,
        threshold: model.bands.threshold.map((t, b) => (model.bands.feature[b] === 1 ? t - 3 : t)),
      },
    };
    const broken = independentEvaluation(shifted);
    expect(broken.underTriage).toBeGreaterThan(0.05);
  });

  it('has golden vectors on both sides of every chart boundary', () => {
    const vectors = readFileSync(exampleModelFiles.goldenVectors, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { features: number[] }).features);
    for (const b of news2Boundaries)
      for (const value of [b.below, b.above]) expect(vectors.some((v) => v[b.vital] === value)).toBe(true);
  });
});
