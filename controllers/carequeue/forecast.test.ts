import { describe, expect, it } from 'vitest';
import { type ArrivalBucket, bucketMs, forecastArrivals, forecastWindows, weekMs } from './forecast.ts';

// A Monday 08:00, when the morning peak is coming.
const now = Date.parse('2026-11-30T08:00:00Z');
/** Arrivals per 5-minute bucket on the weeks before: 6 until 08:15, then 60 (the peak). */
const history = (weeks: number, scale = 1): ArrivalBucket[] => {
  const out: ArrivalBucket[] = [];
  for (let w = 1; w <= weeks; w++) {
    for (let b = now - w * weekMs - 3_600_000; b < now - w * weekMs + 3_600_000; b += bucketMs) {
      const peak = b >= now - w * weekMs + 15 * 60_000;
      out.push({ category: 'urgent', startMs: b, arrivals: (peak ? 60 : 6) * scale });
    }
  }
  return out;
};
/** The last hour as it happened. */
const lastHour = (perBucket: number): ArrivalBucket[] =>
  Array.from({ length: 12 }, (_, i) => ({
    category: 'urgent',
    startMs: now - 3_600_000 + i * bucketMs,
    arrivals: perBucket,
  }));

describe('forecastArrivals', () => {
  const base = { nowMs: now, leadTimeSeconds: 1800, historyWeeks: 4, servedPerConsumerPerSecond: 0.05 };

  it('does nothing without history, and says so', () => {
    expect(forecastArrivals({ ...base, buckets: [] })).toEqual({ historyWeeks: 0 });
  });

  it('pre-scales for the peak the same hour of past weeks had, within the lead time', () => {
    const f = forecastArrivals({
      ...base,
      historyStartMs: now - 4 * weekMs - 2 * 3_600_000,
      buckets: [...history(4), ...lastHour(6)],
    });
    // 60 per 5 minutes = 0.2/s; at 0.05/s per consumer and 80 %: 5.
    expect(f).toMatchObject({ historyWeeks: 4, trend: 1, replicas: 5 });
    expect(f.arrivalsPerSecond).toBeCloseTo(0.2);
  });

  it('does not see a peak beyond its lead time', () => {
    const f = forecastArrivals({
      ...base,
      leadTimeSeconds: 600,
      historyStartMs: now - 4 * weekMs - 2 * 3_600_000,
      buckets: [...history(4), ...lastHour(6)],
    });
    expect(f.arrivalsPerSecond).toBeCloseTo(6 / 300);
  });

  it('follows the trend: a busier hour than usual scales the forecast up, within twice', () => {
    const f = forecastArrivals({
      ...base,
      historyStartMs: now - 4 * weekMs - 2 * 3_600_000,
      buckets: [...history(4), ...lastHour(9)],
    });
    expect(f.trend).toBeCloseTo(1.5);
    expect(f.arrivalsPerSecond).toBeCloseTo(0.3);
    const wild = forecastArrivals({
      ...base,
      historyStartMs: now - 4 * weekMs - 2 * 3_600_000,
      buckets: [...history(4), ...lastHour(600)],
    });
    expect(wild.trend).toBe(2);
  });

  it('uses only the weeks it has: one week of history averages one week', () => {
    const f = forecastArrivals({
      ...base,
      historyStartMs: now - weekMs - 2 * 3_600_000,
      buckets: [...history(1, 2), ...lastHour(12)],
    });
    expect(f.historyWeeks).toBeCloseTo(1, 1);
    expect(f.arrivalsPerSecond).toBeCloseTo(0.4);
  });

  it('reads the last hour and the same hours of each past week', () => {
    const windows = forecastWindows(now, 900, 2);
    expect(windows).toEqual([
      { fromMs: now - 3_600_000, toMs: now },
      { fromMs: now - weekMs - 3_600_000, toMs: now - weekMs + 900_000 + bucketMs },
      { fromMs: now - 2 * weekMs - 3_600_000, toMs: now - 2 * weekMs + 900_000 + bucketMs },
    ]);
  });
});
