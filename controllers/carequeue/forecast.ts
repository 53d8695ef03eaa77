import { plannedUtilisation } from './decide.ts';

/** Arrivals are kept per category in buckets of this length. */
export const bucketMs = 5 * 60_000;
export const weekMs = 7 * 24 * 3_600_000;
/** The recent trend is judged over this long. */
export const trendMs = 3_600_000;

export interface ArrivalBucket {
  category: string;
  startMs: number;
  arrivals: number;
}

export interface ForecastInput {
  nowMs: number;
  leadTimeSeconds: number;
  historyWeeks: number;
  /** When the first bucket of this queue was recorded; undefined: no history. */
  historyStartMs?: number;
  /** Buckets of the windows forecastWindows names (others are ignored). */
  buckets: readonly ArrivalBucket[];
  servedPerConsumerPerSecond: number;
}

export interface Forecast {
  /** Weeks of history the seasonal average could use (0 when none). */
  historyWeeks: number;
  /** Arrivals a second expected at the busiest bucket within the lead time, all categories. */
  arrivalsPerSecond?: number;
  /** Actual arrivals of the last hour over what the same hour had before, clamped to 0.5–2. */
  trend?: number;
  replicas?: number;
}

const bucketOf = (ms: number) => Math.floor(ms / bucketMs) * bucketMs;

/** The time ranges whose buckets the forecast reads: the same hour of each past week, and the last hour. */
export function forecastWindows(nowMs: number, leadTimeSeconds: number, historyWeeks: number) {
  const current = bucketOf(nowMs);
  const windows = [{ fromMs: current - trendMs, toMs: current }];
  for (let w = 1; w <= historyWeeks; w++) {
    windows.push({
      fromMs: current - w * weekMs - trendMs,
      toMs: current - w * weekMs + leadTimeSeconds * 1000 + bucketMs,
    });
  }
  return windows;
}

/**
 * A seasonal forecast: for each bucket within the lead time, the mean of the same bucket in the weeks on
 * record (same hour of the week), scaled by the recent trend (the last hour against what the same hour
 * had in those weeks). The busiest bucket sets the replicas, at the planned utilisation. No history:
 * no forecast, and the queue is scaled on what it sees alone.
 */
export function forecastArrivals(input: ForecastInput): Forecast {
  const { nowMs, historyStartMs } = input;
  if (historyStartMs === undefined) return { historyWeeks: 0 };
  const current = bucketOf(nowMs);
  const totals = new Map<number, number>();
  for (const b of input.buckets) totals.set(b.startMs, (totals.get(b.startMs) ?? 0) + b.arrivals);
  // A week counts when the whole window it lends (its last hour and the lead time) was being recorded.
  const weeks: number[] = [];
  for (let w = 1; w <= input.historyWeeks; w++) {
    if (current - w * weekMs - trendMs >= historyStartMs) weeks.push(w);
  }
  const historyWeeks = Math.min(input.historyWeeks, Math.max(0, (nowMs - historyStartMs) / weekMs));
  if (weeks.length === 0) return { historyWeeks };
  const seasonal = (startMs: number) =>
    weeks.reduce((sum, w) => sum + (totals.get(startMs - w * weekMs) ?? 0), 0) / weeks.length;

  let recentActual = 0;
  let recentExpected = 0;
  for (let b = current - trendMs; b < current; b += bucketMs) {
    recentActual += totals.get(b) ?? 0;
    recentExpected += seasonal(b);
  }
  const trend = recentExpected > 0 ? Math.min(2, Math.max(0.5, recentActual / recentExpected)) : 1;
  let peakPerBucket = 0;
  for (let b = current; b <= nowMs + input.leadTimeSeconds * 1000; b += bucketMs) {
    peakPerBucket = Math.max(peakPerBucket, seasonal(b));
  }
  const arrivalsPerSecond = (peakPerBucket * trend) / (bucketMs / 1000);
  const replicas =
    arrivalsPerSecond > 0
      ? Math.ceil(arrivalsPerSecond / (input.servedPerConsumerPerSecond * plannedUtilisation))
      : 0;
  return { historyWeeks, arrivalsPerSecond, trend, replicas };
}
