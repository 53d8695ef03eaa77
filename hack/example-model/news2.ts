/**
 * The National Early Warning Score 2 (Royal College of Physicians, 2017: each vital sign scores 0-3, the
 * total maps to low, low-medium, medium or high clinical risk), used to label the synthetic
 * patients the example model learns from. Aurora is not a medical device: this exists to make
 * realistic test data, not to score real patients.
 */
export interface Vitals {
  respirationRatePerMin: number;
  spo2Percent: number;
  supplementalOxygen: boolean;
  systolicBpMmHg: number;
  pulsePerMin: number;
  /** New confusion, or responding only to voice or pain, or unresponsive. */
  alteredConsciousness: boolean;
  temperatureCelsius: number;
}

export const riskLabels = ['high', 'medium', 'low-medium', 'low'] as const;
export type RiskLabel = (typeof riskLabels)[number];

export function news2Scores(v: Vitals): number[] {
  const rr = v.respirationRatePerMin;
  const spo2 = v.spo2Percent;
  const bp = v.systolicBpMmHg;
  const hr = v.pulsePerMin;
  const t = v.temperatureCelsius;
  return [
    rr <= 8 ? 3 : rr <= 11 ? 1 : rr <= 20 ? 0 : rr <= 24 ? 2 : 3,
    spo2 <= 91 ? 3 : spo2 <= 93 ? 2 : spo2 <= 95 ? 1 : 0,
    v.supplementalOxygen ? 2 : 0,
    bp <= 90 ? 3 : bp <= 100 ? 2 : bp <= 110 ? 1 : bp <= 219 ? 0 : 3,
    hr <= 40 ? 3 : hr <= 50 ? 1 : hr <= 90 ? 0 : hr <= 110 ? 1 : hr <= 130 ? 2 : 3,
    v.alteredConsciousness ? 3 : 0,
    t <= 35.0 ? 3 : t <= 36.0 ? 1 : t <= 38.0 ? 0 : t <= 39.0 ? 1 : 2,
  ];
}

/** Aggregate 7+: high; 5-6: medium; a 3 in any one parameter: low-medium; otherwise low. */
export function news2Risk(v: Vitals): { score: number; risk: RiskLabel } {
  const scores = news2Scores(v);
  const score = scores.reduce((a, b) => a + b, 0);
  const risk: RiskLabel =
    score >= 7 ? 'high' : score >= 5 ? 'medium' : scores.includes(3) ? 'low-medium' : 'low';
  return { score, risk };
}

/** The model's input vector, in the order of the example manifest's features. */
export function featureVector(v: Vitals): number[] {
  return [
    v.respirationRatePerMin,
    v.spo2Percent,
    v.supplementalOxygen ? 1 : 0,
    v.systolicBpMmHg,
    v.pulsePerMin,
    v.alteredConsciousness ? 1 : 0,
    v.temperatureCelsius,
  ];
}

/**
 * Where the chart changes score, per vital, in the order of featureVector: each pair of neighbouring
 * values on either side of a threshold (rr 8 | 9 is 8.5). Whole-number vitals step over one unit,
 * temperature over a tenth of a degree.
 */
export const news2Boundaries: ReadonlyArray<{ vital: number; below: number; above: number }> = [
  ...[
    [8, 9],
    [11, 12],
    [20, 21],
    [24, 25],
  ].map(([below, above]) => ({ vital: 0, below: below as number, above: above as number })),
  ...[
    [91, 92],
    [93, 94],
    [95, 96],
  ].map(([below, above]) => ({ vital: 1, below: below as number, above: above as number })),
  { vital: 2, below: 0, above: 1 },
  ...[
    [90, 91],
    [100, 101],
    [110, 111],
    [219, 220],
  ].map(([below, above]) => ({ vital: 3, below: below as number, above: above as number })),
  ...[
    [40, 41],
    [50, 51],
    [90, 91],
    [110, 111],
    [130, 131],
  ].map(([below, above]) => ({ vital: 4, below: below as number, above: above as number })),
  { vital: 5, below: 0, above: 1 },
  ...[
    [35.0, 35.1],
    [36.0, 36.1],
    [38.0, 38.1],
    [39.0, 39.1],
  ].map(([below, above]) => ({ vital: 6, below: below as number, above: above as number })),
];
