import { describe, expect, it } from 'vitest';
import { parseGoldenVectors, percentile, scoreAcceptance } from './acceptance.ts';

const labels = ['high', 'medium', 'low'];
const row = (label: string) => labels.map((l) => (l === label ? 0.9 : 0.05));

describe('parseGoldenVectors', () => {
  it('reads JSON lines, skipping blank ones', () => {
    const text = '{"features":[1,2],"expectedLabel":"high"}\n\n{"features":[3,4],"expectedLabel":"low"}\n';
    expect(parseGoldenVectors(text, 2, labels)).toEqual({
      vectors: [
        { features: [1, 2], expectedLabel: 'high' },
        { features: [3, 4], expectedLabel: 'low' },
      ],
    });
  });

  it.each([
    ['not JSON', '{"features":[1,2]', 'golden vectors line 1 is not JSON'],
    [
      'wrong length',
      '{"features":[1],"expectedLabel":"high"}',
      'golden vectors line 1 has 1 features, the spec declares 2',
    ],
    [
      'text values',
      '{"features":[1,"x"],"expectedLabel":"high"}',
      'golden vectors line 1: features must be a list of numbers',
    ],
    [
      'unknown label',
      '\n{"features":[1,2],"expectedLabel":"red"}',
      'golden vectors line 2: expectedLabel must be one of high, medium, low',
    ],
    ['empty', '\n\n', 'the golden vectors are empty'],
  ])('refuses %s, naming the line but not its values', (_name, text, error) => {
    expect(parseGoldenVectors(text, 2, labels)).toEqual({ error });
  });
});

describe('percentile', () => {
  it.each([
    [[5], 50, 5],
    [[1, 2, 3, 4], 50, 2],
    [[1, 2, 3, 4], 99, 4],
    [Array.from({ length: 100 }, (_, i) => i + 1), 99, 99],
    [[], 50, Number.NaN],
  ])('%j at p%i is %d', (samples, p, expected) => {
    expect(percentile(samples, p)).toBe(expected);
  });
});

describe('scoreAcceptance', () => {
  const vectors = [
    ...Array.from({ length: 20 }, () => ({ features: [0], expectedLabel: 'high' })),
    ...Array.from({ length: 10 }, () => ({ features: [0], expectedLabel: 'low' })),
  ];
  const acceptance = { goldenVectors: {}, minRecall: [{ label: 'high', min: 0.95 }], minAccuracy: 0.9 };

  it('passes a model that labels every vector right', () => {
    const result = scoreAcceptance(
      acceptance,
      labels,
      vectors,
      vectors.map((v) => row(v.expectedLabel)),
    );
    expect(result).toEqual({
      passed: true,
      vectors: 30,
      accuracy: 1,
      recall: [
        { label: 'high', recall: 1 },
        { label: 'low', recall: 1 },
      ],
      failures: [],
    });
  });

  it('refuses an under-triaging model on the high-acuity recall floor', () => {
    // Two of twenty high-risk patients sent to medium: 90% recall, 93.3% accuracy.
    const predictions = vectors.map((v, i) =>
      row(v.expectedLabel === 'high' && i < 2 ? 'medium' : v.expectedLabel),
    );
    const result = scoreAcceptance(acceptance, labels, vectors, predictions);
    expect(result.passed).toBe(false);
    expect(result.failures).toEqual(["recall of 'high' is 90.0% (18 of 20), below the floor of 95.0%"]);
  });

  it('says when a floor cannot be checked, and checks accuracy and latency', () => {
    const strict = {
      ...acceptance,
      minRecall: [{ label: 'medium', min: 0.5 }],
      minAccuracy: 0.99,
      maxLatencyMs: { p50: 1, p99: 5 },
    };
    const predictions = vectors.map((v, i) => row(i === 0 ? 'low' : v.expectedLabel));
    const result = scoreAcceptance(strict, labels, vectors, predictions, { p50Ms: 2, p99Ms: 4 });
    expect(result.failures).toEqual([
      "no golden vector expects 'medium', so its recall floor cannot be checked: add vectors",
      'accuracy is 96.7%, below the minimum of 99.0%',
      'median latency is 2.00 ms, above the limit of 1 ms',
    ]);
  });
});
