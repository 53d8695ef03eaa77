import { describe, expect, it } from 'vitest';
import { news2Risk, news2Scores, type Vitals } from './news2.ts';

const normal: Vitals = {
  respirationRatePerMin: 16,
  spo2Percent: 97,
  supplementalOxygen: false,
  systolicBpMmHg: 125,
  pulsePerMin: 72,
  alteredConsciousness: false,
  temperatureCelsius: 37.0,
};

describe('NEWS2 parameter scores (clinical.md table)', () => {
  it.each([
    ['respiration 8', { respirationRatePerMin: 8 }, [3, 0, 0, 0, 0, 0, 0]],
    ['respiration 9', { respirationRatePerMin: 9 }, [1, 0, 0, 0, 0, 0, 0]],
    ['respiration 21', { respirationRatePerMin: 21 }, [2, 0, 0, 0, 0, 0, 0]],
    ['respiration 25', { respirationRatePerMin: 25 }, [3, 0, 0, 0, 0, 0, 0]],
    ['SpO2 91', { spo2Percent: 91 }, [0, 3, 0, 0, 0, 0, 0]],
    ['SpO2 93', { spo2Percent: 93 }, [0, 2, 0, 0, 0, 0, 0]],
    ['SpO2 95', { spo2Percent: 95 }, [0, 1, 0, 0, 0, 0, 0]],
    ['on oxygen', { supplementalOxygen: true }, [0, 0, 2, 0, 0, 0, 0]],
    ['systolic 90', { systolicBpMmHg: 90 }, [0, 0, 0, 3, 0, 0, 0]],
    ['systolic 100', { systolicBpMmHg: 100 }, [0, 0, 0, 2, 0, 0, 0]],
    ['systolic 110', { systolicBpMmHg: 110 }, [0, 0, 0, 1, 0, 0, 0]],
    ['systolic 220', { systolicBpMmHg: 220 }, [0, 0, 0, 3, 0, 0, 0]],
    ['pulse 40', { pulsePerMin: 40 }, [0, 0, 0, 0, 3, 0, 0]],
    ['pulse 50', { pulsePerMin: 50 }, [0, 0, 0, 0, 1, 0, 0]],
    ['pulse 110', { pulsePerMin: 110 }, [0, 0, 0, 0, 1, 0, 0]],
    ['pulse 130', { pulsePerMin: 130 }, [0, 0, 0, 0, 2, 0, 0]],
    ['pulse 131', { pulsePerMin: 131 }, [0, 0, 0, 0, 3, 0, 0]],
    ['new confusion', { alteredConsciousness: true }, [0, 0, 0, 0, 0, 3, 0]],
    ['temperature 35.0', { temperatureCelsius: 35.0 }, [0, 0, 0, 0, 0, 0, 3]],
    ['temperature 36.0', { temperatureCelsius: 36.0 }, [0, 0, 0, 0, 0, 0, 1]],
    ['temperature 38.1', { temperatureCelsius: 38.1 }, [0, 0, 0, 0, 0, 0, 1]],
    ['temperature 39.1', { temperatureCelsius: 39.1 }, [0, 0, 0, 0, 0, 0, 2]],
  ] as const)('%s', (_name, change, expected) => {
    expect(news2Scores({ ...normal, ...change })).toEqual(expected);
  });
});

describe('NEWS2 risk', () => {
  it.each([
    ['all normal', {}, 0, 'low'],
    ['aggregate 4 without a 3', { respirationRatePerMin: 22, supplementalOxygen: true }, 4, 'low'],
    ['a single 3', { alteredConsciousness: true }, 3, 'low-medium'],
    ['aggregate 5', { respirationRatePerMin: 22, supplementalOxygen: true, pulsePerMin: 100 }, 5, 'medium'],
    ['aggregate 6 with a 3', { spo2Percent: 90, supplementalOxygen: true, pulsePerMin: 100 }, 6, 'medium'],
    ['aggregate 7', { respirationRatePerMin: 26, spo2Percent: 90, pulsePerMin: 100 }, 7, 'high'],
  ] as const)('%s', (_name, change, score, risk) => {
    expect(news2Risk({ ...normal, ...change })).toEqual({ score, risk });
  });
});
