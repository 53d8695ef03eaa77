// What a care queue leaves in PostgreSQL: a record of each scaling decision (counts, rates and the
// formula's terms, never an entry) and arrivals per category in 5-minute buckets for the forecast.
import type { StateStore } from './postgres.ts';

export interface DecisionRecord {
  decidedAt: Date;
  namespace: string;
  queue: string;
  queueUid: string;
  generation: number;
  fromReplicas: number;
  toReplicas: number;
  recommendation: number;
  limitedBy: string;
  summary: string;
  queueSeen: boolean;
  servedPerConsumerPerSecond?: number;
  servedRateMeasured: boolean;
  forecastReplicas?: number;
  /** Per category: counts, ages, rates and the replicas its term asked for. */
  terms: Record<string, unknown>[];
}

export async function recordDecision(store: StateStore, d: DecisionRecord): Promise<void> {
  await store.pool.query(
    `insert into ${store.schema}.carequeue_decisions
       (decided_at, namespace, queue, queue_uid, generation, from_replicas, to_replicas, recommendation,
        limited_by, summary, queue_seen, served_per_consumer_per_second, served_rate_measured,
        forecast_replicas, terms)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
    [
      d.decidedAt,
      d.namespace,
      d.queue,
      d.queueUid,
      d.generation,
      d.fromReplicas,
      d.toReplicas,
      d.recommendation,
      d.limitedBy,
      d.summary,
      d.queueSeen,
      d.servedPerConsumerPerSecond ?? null,
      d.servedRateMeasured,
      d.forecastReplicas ?? null,
      JSON.stringify(d.terms),
    ],
  );
}

export interface ArrivalCount {
  namespace: string;
  queue: string;
  category: string;
  bucketStartMs: number;
  arrivals: number;
}

/** Adds arrivals to their buckets (a bucket written twice sums). */
export async function addArrivals(store: StateStore, counts: readonly ArrivalCount[]): Promise<void> {
  if (counts.length === 0) return;
  const values: unknown[] = [];
  const rows = counts.map((c, i) => {
    values.push(c.namespace, c.queue, c.category, new Date(c.bucketStartMs), c.arrivals);
    const o = i * 5;
    return `($${o + 1}, $${o + 2}, $${o + 3}, $${o + 4}, $${o + 5})`;
  });
  await store.pool.query(
    `insert into ${store.schema}.carequeue_arrivals (namespace, queue, category, bucket_start, arrivals)
     values ${rows.join(', ')}
     on conflict (namespace, queue, bucket_start, category)
     do update set arrivals = ${store.schema}.carequeue_arrivals.arrivals + excluded.arrivals`,
    values,
  );
}

/** The queue's buckets within the windows, when its history began, and how many buckets it has. */
export async function readArrivals(
  store: StateStore,
  namespace: string,
  queue: string,
  windows: readonly { fromMs: number; toMs: number }[],
): Promise<{
  buckets: { category: string; startMs: number; arrivals: number }[];
  historyStartMs?: number;
  bucketCount: number;
}> {
  const values: unknown[] = [namespace, queue];
  const ranges = windows.map((w) => {
    values.push(new Date(w.fromMs), new Date(w.toMs));
    return `(bucket_start >= $${values.length - 1} and bucket_start < $${values.length})`;
  });
  const [buckets, summary] = await Promise.all([
    store.pool.query<{ category: string; bucket_start: Date; arrivals: number }>(
      `select category, bucket_start, arrivals from ${store.schema}.carequeue_arrivals
       where namespace = $1 and queue = $2 and (${ranges.join(' or ') || 'false'})`,
      values,
    ),
    store.pool.query<{ first: Date | null; buckets: string }>(
      `select min(bucket_start) as first, count(distinct bucket_start) as buckets
       from ${store.schema}.carequeue_arrivals where namespace = $1 and queue = $2`,
      [namespace, queue],
    ),
  ]);
  const first = summary.rows[0]?.first;
  return {
    buckets: buckets.rows.map((r) => ({
      category: r.category,
      startMs: r.bucket_start.getTime(),
      arrivals: r.arrivals,
    })),
    ...(first ? { historyStartMs: first.getTime() } : {}),
    bucketCount: Number(summary.rows[0]?.buckets ?? 0),
  };
}

/** Drops what no forecast or reader needs any more: arrivals and decisions older than the given times. */
export async function pruneHistory(
  store: StateStore,
  options: { arrivalsBefore: Date; decisionsBefore: Date },
): Promise<void> {
  await store.pool.query(`delete from ${store.schema}.carequeue_arrivals where bucket_start < $1`, [
    options.arrivalsBefore,
  ]);
  await store.pool.query(`delete from ${store.schema}.carequeue_decisions where decided_at < $1`, [
    options.decisionsBefore,
  ]);
}
