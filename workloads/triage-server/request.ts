import type { TriageModelSpec } from '../../crds/triagemodel.ts';
import { type ElementType, elementRange } from '../../model/tensors.ts';

type Feature = TriageModelSpec['inputs']['features'][number];

/**
 * Turns a classification request, {"features": {"respiration_rate": 18, ...}}, into the model's input
 * row in feature order. A bad request gets one message naming the field and the rule; never its value,
 * which is a patient's.
 */
export function parseClassifyRequest(
  body: unknown,
  features: readonly Feature[],
  elementType: ElementType = 'float32',
): { vector: number[] } | { error: string } {
  const range = elementRange[elementType];
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { error: 'the body must be a JSON object with a features object' };
  }
  const given = (body as { features?: unknown }).features;
  if (typeof given !== 'object' || given === null || Array.isArray(given)) {
    return { error: 'features: required, an object of feature name to number' };
  }
  const values = given as Record<string, unknown>;
  const known = new Set(features.map((f) => f.name));
  const unknown = Object.keys(values).filter((k) => !known.has(k));
  if (unknown.length > 0) {
    return {
      error: `features.${unknown[0]}: not a feature of this model (it takes ${[...known].join(', ')})`,
    };
  }
  const vector: number[] = [];
  for (const f of features) {
    const v = values[f.name];
    if (v === undefined) return { error: `features.${f.name}: required` };
    if (typeof v !== 'number' || !Number.isFinite(v))
      return { error: `features.${f.name}: must be a number` };
    // The model takes this type: a value it cannot hold would be given to it as something else.
    if (Math.abs(v) > range.max)
      return { error: `features.${f.name}: must be within ±${range.max} (the model takes ${elementType})` };
    if (range.integer && !Number.isInteger(v))
      return { error: `features.${f.name}: must be a whole number (the model takes ${elementType})` };
    const unit = f.unit ? ` ${f.unit}` : '';
    if (f.min !== undefined && v < f.min)
      return { error: `features.${f.name}: must be at least ${f.min}${unit}` };
    if (f.max !== undefined && v > f.max)
      return { error: `features.${f.name}: must be at most ${f.max}${unit}` };
    vector.push(v);
  }
  return { vector };
}
