import { describe, expect, it } from 'vitest';
import { parseClassifyRequest } from './request.ts';

const features = [
  { name: 'respiration_rate', unit: '/min', min: 0, max: 80 },
  { name: 'spo2', unit: '%', min: 50, max: 100 },
];

describe('parseClassifyRequest', () => {
  it('orders the values as the model expects', () => {
    expect(parseClassifyRequest({ features: { spo2: 97, respiration_rate: 16 } }, features)).toEqual({
      vector: [16, 97],
    });
  });

  it.each([
    ['not an object', [1, 2], 'the body must be a JSON object with a features object'],
    ['no features', {}, 'features: required, an object of feature name to number'],
    ['features as a list', { features: [16, 97] }, 'features: required, an object of feature name to number'],
    ['a missing feature', { features: { spo2: 97 } }, 'features.respiration_rate: required'],
    [
      'a string value',
      { features: { respiration_rate: '16', spo2: 97 } },
      'features.respiration_rate: must be a number',
    ],
    ['below range', { features: { respiration_rate: 16, spo2: 12 } }, 'features.spo2: must be at least 50 %'],
    [
      'above range',
      { features: { respiration_rate: 95, spo2: 97 } },
      'features.respiration_rate: must be at most 80 /min',
    ],
    [
      'an unknown feature',
      { features: { respiration_rate: 16, spo2: 97, heart: 80 } },
      'features.heart: not a feature of this model (it takes respiration_rate, spo2)',
    ],
  ])('refuses %s, naming the field and not the value', (_name, body, error) => {
    expect(parseClassifyRequest(body, features)).toEqual({ error });
  });

  const open = [{ name: 'lactate' }, { name: 'count' }];
  it.each([
    [
      'beyond float32',
      'float32',
      { lactate: 4e38, count: 1 },
      'features.lactate: must be within ±3.4028234663852886e+38 (the model takes float32)',
    ],
    [
      'a fraction for int64',
      'int64',
      { lactate: 2, count: 1.5 },
      'features.count: must be a whole number (the model takes int64)',
    ],
    [
      'beyond int32',
      'int32',
      { lactate: 3e9, count: 1 },
      'features.lactate: must be within ±2147483647 (the model takes int32)',
    ],
    [
      'beyond exact int64',
      'int64',
      { lactate: 2 ** 60, count: 1 },
      'features.lactate: must be within ±9007199254740991 (the model takes int64)',
    ],
  ] as const)('refuses a value %s, naming the feature', (_name, type, values, error) => {
    expect(parseClassifyRequest({ features: values }, open, type)).toEqual({ error });
  });

  it.each([
    ['float64', { lactate: 4e38, count: 1 }],
    ['int64', { lactate: -12, count: 2 ** 40 }],
  ] as const)('lets %s take what it holds', (type, values) => {
    expect(parseClassifyRequest({ features: values }, open, type)).toEqual({
      vector: [values.lactate, values.count],
    });
  });
});
