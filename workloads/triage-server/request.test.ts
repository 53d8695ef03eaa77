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
});
