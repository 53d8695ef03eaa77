import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exampleModelFiles, generateExampleModel } from './generate.ts';

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
});
