import type { Vitals } from './news2.ts';

/** mulberry32: a small, fast PRNG; the same seed gives the same patients on every machine. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A normal deviate by Box-Muller (one of the pair), from the given uniform source. */
export function gaussian(random: () => number, mean: number, sd: number): number {
  const u = 1 - random();
  const v = random();
  return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));
const round = (x: number, decimals = 0) => Math.round(x * 10 ** decimals) / 10 ** decimals;

/**
 * How unwell the arriving patients are: most are well, some deteriorating, a few critically ill. Each
 * state shifts every vital sign; NEWS2, not the state, decides the label.
 */
const states = [
  {
    share: 0.5,
    rr: [16, 2],
    spo2: [97, 1.2],
    o2: 0.02,
    bp: [128, 14],
    hr: [76, 10],
    altered: 0.01,
    t: [36.9, 0.4],
  },
  {
    share: 0.25,
    rr: [20, 3],
    spo2: [95, 2],
    o2: 0.15,
    bp: [115, 16],
    hr: [96, 14],
    altered: 0.05,
    t: [37.8, 0.7],
  },
  {
    share: 0.15,
    rr: [24, 4],
    spo2: [93, 2.5],
    o2: 0.4,
    bp: [104, 16],
    hr: [110, 16],
    altered: 0.15,
    t: [38.4, 0.9],
  },
  {
    share: 0.1,
    rr: [29, 5],
    spo2: [89, 3.5],
    o2: 0.7,
    bp: [92, 18],
    hr: [126, 18],
    altered: 0.4,
    t: [38.9, 1.2],
  },
] as const;

export function syntheticPatient(random: () => number): Vitals {
  let remaining = random();
  const state =
    states.find((s) => {
      remaining -= s.share;
      return remaining < 0;
    }) ?? states[0];
  const draw = ([mean, sd]: readonly [number, number]) => gaussian(random, mean, sd);
  return {
    respirationRatePerMin: clamp(round(draw(state.rr)), 4, 60),
    spo2Percent: clamp(round(draw(state.spo2)), 70, 100),
    supplementalOxygen: random() < state.o2,
    systolicBpMmHg: clamp(round(draw(state.bp)), 50, 250),
    pulsePerMin: clamp(round(draw(state.hr)), 30, 200),
    alteredConsciousness: random() < state.altered,
    temperatureCelsius: clamp(round(draw(state.t), 1), 33, 42),
  };
}

/** The whole clinical range of each vital, as the example manifest's features allow it to be sent. */
export const clinicalRange = {
  respirationRatePerMin: [4, 60],
  spo2Percent: [70, 100],
  systolicBpMmHg: [50, 250],
  pulsePerMin: [30, 200],
  temperatureCelsius: [33, 42],
} as const;

const uniform = (random: () => number, [lo, hi]: readonly [number, number], decimals = 0) =>
  round(lo + random() * (hi - lo), decimals);

/** A patient with every vital drawn evenly across its clinical range: no ward is this mixed, which is the point. */
export function clinicalRangePatient(random: () => number): Vitals {
  return {
    respirationRatePerMin: uniform(random, clinicalRange.respirationRatePerMin),
    spo2Percent: uniform(random, clinicalRange.spo2Percent),
    supplementalOxygen: random() < 0.5,
    systolicBpMmHg: uniform(random, clinicalRange.systolicBpMmHg),
    pulsePerMin: uniform(random, clinicalRange.pulsePerMin),
    alteredConsciousness: random() < 0.25,
    temperatureCelsius: uniform(random, clinicalRange.temperatureCelsius, 1),
  };
}

const vitalKeys = [
  'respirationRatePerMin',
  'spo2Percent',
  'supplementalOxygen',
  'systolicBpMmHg',
  'pulsePerMin',
  'alteredConsciousness',
  'temperatureCelsius',
] as const;

/**
 * Patients on each side of every chart boundary: perValue of them with that vital at exactly that
 * value, and the others drawn by base (a ward's patients, or the whole clinical range).
 */
export function boundaryPatients(
  random: () => number,
  boundaries: ReadonlyArray<{ vital: number; below: number; above: number }>,
  perValue: number,
  base: (random: () => number) => Vitals = syntheticPatient,
): Vitals[] {
  const patients: Vitals[] = [];
  for (const b of boundaries) {
    for (const value of [b.below, b.above]) {
      for (let i = 0; i < perValue; i++) {
        const p = base(random) as unknown as Record<string, number | boolean>;
        const key = vitalKeys[b.vital] as (typeof vitalKeys)[number];
        p[key] = typeof p[key] === 'boolean' ? value === 1 : value;
        patients.push(p as unknown as Vitals);
      }
    }
  }
  return patients;
}
