// The queue contract every producer and consumer of a CareQueue follows. Aurora's operator reads only
// counts, IDs and ages from these streams (server-side, see observe.ts); entries' fields stay in Redis.
import type { CareQueueSpec } from '../crds/carequeue.ts';

/** One category's stream, highest acuity first in a queue's list. */
export interface CategoryStream {
  category: string;
  streamKey: string;
  maxWaitSeconds: number;
}

/** The stream of each category: its own key, or aurora:<namespace>:<queue>:<category>. */
export function categoryStreams(
  namespace: string,
  queue: string,
  spec: Pick<CareQueueSpec, 'categories'>,
): CategoryStream[] {
  return spec.categories.map((c) => ({
    category: c.name,
    streamKey: c.streamKey ?? `aurora:${namespace}:${queue}:${c.name}`,
    maxWaitSeconds: c.maxWaitSeconds,
  }));
}

/** The stream consumers write results to. */
export function resultStreamKey(namespace: string, queue: string, spec: Pick<CareQueueSpec, 'results'>) {
  return spec.results.streamKey ?? `aurora:${namespace}:${queue}:results`;
}

/**
 * Fields of an entry a producer adds: `features`, a JSON object of feature name to number (the body of
 * POST /v1/classify without its wrapper), and optionally `ref`, the producer's own reference, copied
 * into the result so it can match them up.
 */
export const entryFields = { features: 'features', ref: 'ref' } as const;

/**
 * Fields of a result: the entry's ID and category, the producer's ref, then either label, probabilities
 * (JSON, label to probability), modelVersion and modelDigest, or error (which field was wrong, and why).
 */
export const resultFields = {
  entry: 'entry',
  category: 'category',
  ref: 'ref',
  label: 'label',
  probabilities: 'probabilities',
  modelVersion: 'modelVersion',
  modelDigest: 'modelDigest',
  error: 'error',
} as const;

/** When an entry arrived: the milliseconds part of its ID (producers let Redis choose the ID). */
export function entryTimeMs(id: string): number {
  const dash = id.indexOf('-');
  return Number(dash === -1 ? id : id.slice(0, dash));
}

/** The ID right after id, for an exclusive range on any Redis version. */
export function nextEntryId(id: string): string {
  const [ms = '0', seq = '0'] = id.split('-');
  return `${ms}-${BigInt(seq) + 1n}`;
}

/** Where a consumer pod finds the Redis CA bundle, when the queue names one. */
export const redisCaMountPath = '/etc/aurora/redis-ca';

/** The queue a pool's triage servers consume, as the pool's controller finds it. */
export interface ConsumedQueue {
  namespace: string;
  name: string;
  spec: Pick<CareQueueSpec, 'categories' | 'redis' | 'consumerGroup' | 'results' | 'claimIdleSeconds'>;
}

/**
 * The environment that turns a triage server into the queue's consumer (workloads/triage-server reads
 * these names): the URL from the queue's Secret (the pod reads it; it never passes through Aurora's
 * status or the Deployment), the streams highest acuity first, and the pod's own name as the consumer.
 */
export function consumerEnv(queue: ConsumedQueue): Record<string, unknown>[] {
  const { spec } = queue;
  return [
    { name: 'AURORA_QUEUE_REDIS_URL', valueFrom: { secretKeyRef: spec.redis.urlSecretRef } },
    { name: 'AURORA_QUEUE_REDIS_TLS', value: String(spec.redis.tls?.enabled ?? false) },
    ...(spec.redis.tls?.caSecretRef
      ? [{ name: 'AURORA_QUEUE_REDIS_CA_FILE', value: `${redisCaMountPath}/ca.crt` }]
      : []),
    {
      name: 'AURORA_QUEUE_STREAMS',
      value: JSON.stringify(
        categoryStreams(queue.namespace, queue.name, spec).map((s) => ({
          category: s.category,
          streamKey: s.streamKey,
        })),
      ),
    },
    { name: 'AURORA_QUEUE_GROUP', value: spec.consumerGroup },
    { name: 'AURORA_QUEUE_RESULT_STREAM', value: resultStreamKey(queue.namespace, queue.name, spec) },
    { name: 'AURORA_QUEUE_RESULT_MAX_LENGTH', value: String(spec.results.maxLength) },
    { name: 'AURORA_QUEUE_CLAIM_IDLE_SECONDS', value: String(spec.claimIdleSeconds) },
    { name: 'AURORA_QUEUE_CONSUMER', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  ];
}

/** The CA bundle's volume and mount, when the queue's Redis is reached over TLS with its own CA. */
export function consumerVolumes(queue: ConsumedQueue) {
  const ca = queue.spec.redis.tls?.caSecretRef;
  if (!ca) return { volumes: [], mounts: [] };
  return {
    volumes: [
      { name: 'redis-ca', secret: { secretName: ca.name, items: [{ key: ca.key, path: 'ca.crt' }] } },
    ],
    mounts: [{ name: 'redis-ca', mountPath: redisCaMountPath, readOnly: true }],
  };
}
