import { z } from 'zod';
import { cel, conditions, dnsSubdomain, observedGeneration, secretKeySelector, timestamp } from './common.ts';

/**
 * Manchester Triage System defaults: each category's name, colour and the longest a patient may wait to
 * be seen by a clinician (0, 10, 60, 120 and 240 minutes). Sites set their own targets; these are the
 * published MTS ones.
 */
export const manchesterDefaults = [
  { name: 'immediate', colour: 'red', maxWaitSeconds: 0 },
  { name: 'very-urgent', colour: 'orange', maxWaitSeconds: 600 },
  { name: 'urgent', colour: 'yellow', maxWaitSeconds: 3600 },
  { name: 'standard', colour: 'green', maxWaitSeconds: 7200 },
  { name: 'non-urgent', colour: 'blue', maxWaitSeconds: 14_400 },
] as const;

const category = z
  .object({
    name: z
      .string()
      .min(1)
      .max(63)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label')
      .describe('Category name, e.g. very-urgent or esi-2.'),
    colour: z
      .enum(['red', 'orange', 'yellow', 'green', 'blue', 'none'])
      .default('none')
      .describe('Triage colour, for display.'),
    streamKey: z
      .string()
      .min(1)
      .max(256)
      .optional()
      .describe(
        'Redis stream holding the category; defaults to aurora:<namespace>:<queue>:<category>. Producers add each patient with XADD and an automatic ID (its arrival time); consumers read it through the consumer group.',
      ),
    maxWaitSeconds: z
      .number()
      .int()
      .min(0)
      .max(86_400)
      .describe(
        'Longest a patient of this category may wait to be seen; 0 means at once (a consumer is always ready, and a wait over 2 s, the moment reading and classifying takes, is a breach).',
      ),
    reservedReplicas: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(0)
      .describe('Consumers kept for this category whatever the load of the others.'),
  })
  .describe('A triage category: one Redis stream and its maximum wait.');

const scalingPolicy = z
  .object({
    stabilizationWindowSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .describe('Recommendations in this window are combined (max when scaling in) before acting.'),
    maxChangePerMinute: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .optional()
      .describe('Most replicas added or removed per minute.'),
  })
  .describe('Pace of scaling in one direction.');

export const careQueueSpec = z
  .object({
    redis: z
      .object({
        urlSecretRef: secretKeySelector.describe('Secret key holding the Redis URL (redis:// or rediss://).'),
        tls: z
          .object({
            enabled: z.boolean().default(false).describe('Connect with TLS.'),
            caSecretRef: secretKeySelector
              .optional()
              .describe('CA bundle that signs the Redis server certificate.'),
          })
          .optional()
          .describe('TLS settings.'),
      })
      .describe('The Redis holding the queue streams.'),
    categories: z
      .array(category)
      .min(1)
      .max(16)
      .default(manchesterDefaults.map((c) => ({ ...c, reservedReplicas: 0 })))
      .describe('Categories from highest acuity down. Defaults to the five Manchester categories.')
      .meta(
        cel({
          rule: 'self.all(c, self.exists_one(d, d.name == c.name))',
          message: 'category names must be unique',
        }),
      ),
    consumerGroup: z
      .string()
      .min(1)
      .max(128)
      .default('triage')
      .describe(
        'Redis consumer group the consumers read through, highest acuity first, each under its pod name; an entry is acknowledged (XACK) once served. Consumers create the group at the start of each stream.',
      ),
    results: z
      .object({
        streamKey: z
          .string()
          .min(1)
          .max(256)
          .optional()
          .describe(
            'Stream consumers write each result to (fields entry, category, ref, label, probabilities, modelVersion, modelDigest); defaults to aurora:<namespace>:<queue>:results.',
          ),
        maxLength: z
          .number()
          .int()
          .min(100)
          .max(10_000_000)
          .default(100_000)
          .describe('Results kept: the stream is trimmed to about this many (XADD MAXLEN ~).'),
      })
      .default({ maxLength: 100_000 })
      .describe('Where consumers write what they classified.'),
    claimIdleSeconds: z
      .number()
      .int()
      .min(5)
      .max(3600)
      .default(30)
      .describe(
        'An entry delivered to a consumer that has not acknowledged it for this long (its pod died) is claimed by another consumer.',
      ),
    scaleTargetRef: z
      .object({
        kind: z.enum(['InferencePool', 'Deployment']).describe('Kind of the consumers.'),
        name: dnsSubdomain.describe('Name of the consumers, in the same namespace.'),
      })
      .describe('The consumers Aurora scales.'),
    minReplicas: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(1)
      .describe('Fewest consumers; never 0 while a category has a maximum wait of 0.'),
    maxReplicas: z.number().int().min(1).max(1000).default(10).describe('Most consumers.'),
    assumedServedPerConsumerPerSecond: z
      .number()
      .min(0.001)
      .max(1_000_000)
      .default(1)
      .describe(
        'Entries one consumer serves a second, assumed until Aurora has measured it (it measures while entries wait undelivered). Low is safe: it adds consumers sooner.',
      ),
    targetEntriesPerReplica: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .optional()
      .describe('Also keep at most this many waiting entries per consumer.'),
    behavior: z
      .object({
        scaleUp: scalingPolicy.default({ stabilizationWindowSeconds: 0 }),
        scaleDown: scalingPolicy.default({ stabilizationWindowSeconds: 300 }),
      })
      .default({ scaleUp: { stabilizationWindowSeconds: 0 }, scaleDown: { stabilizationWindowSeconds: 300 } })
      .describe('Stabilisation and pace per direction, as in autoscaling/v2.'),
    forecast: z
      .object({
        leadTimeSeconds: z
          .number()
          .int()
          .min(60)
          .max(21_600)
          .default(900)
          .describe('How far ahead consumers are added for the arrivals the forecast expects.'),
        historyWeeks: z
          .number()
          .int()
          .min(1)
          .max(12)
          .default(4)
          .describe('Weeks of arrivals the seasonal forecast averages, same hour of the week.'),
      })
      .optional()
      .describe(
        'Pre-scale ahead of known peaks: arrivals per category are kept in 5-minute buckets in PostgreSQL, and replicas are the larger of what the queue needs now and what the forecast arrivals will need. Without history it does nothing.',
      ),
    paused: z.boolean().default(false).describe('Stop scaling; replicas stay where they are.'),
    surge: z
      .object({
        minReplicas: z.number().int().min(1).max(1000).describe('Fewest consumers while the surge lasts.'),
        until: timestamp.describe('When the surge ends (RFC 3339).'),
        reason: z.string().max(256).optional().describe('Why, for the audit trail (no patient data).'),
      })
      .optional()
      .describe('A temporary floor, e.g. for a major incident.'),
  })
  .describe('A patient queue in Redis, one stream per triage category, and how its consumers scale.')
  .meta(
    cel(
      {
        rule: 'self.minReplicas <= self.maxReplicas',
        message: 'minReplicas must not be greater than maxReplicas',
        fieldPath: '.minReplicas',
      },
      {
        rule: 'self.minReplicas >= 1 || self.categories.all(c, c.maxWaitSeconds > 0)',
        message:
          'minReplicas must be at least 1 while a category has maxWaitSeconds 0 (it may arrive at any time)',
        fieldPath: '.minReplicas',
      },
      {
        rule: 'self.categories.all(c, !has(c.streamKey) || self.categories.exists_one(d, has(d.streamKey) && d.streamKey == c.streamKey))',
        message: 'each category needs a stream of its own',
        fieldPath: '.categories',
      },
      {
        rule: '!has(self.results.streamKey) || self.categories.all(c, !has(c.streamKey) || c.streamKey != self.results.streamKey)',
        message: 'the results stream must not be a category stream',
        fieldPath: '.results.streamKey',
      },
      {
        rule: '!has(self.surge) || self.surge.minReplicas <= self.maxReplicas',
        message: 'surge.minReplicas must not be greater than maxReplicas',
        fieldPath: '.surge.minReplicas',
      },
      {
        rule: 'self.categories.map(c, c.reservedReplicas).sum() <= self.maxReplicas',
        message: 'the reservedReplicas of all categories must fit within maxReplicas',
        fieldPath: '.categories',
      },
    ),
  );

export const careQueueStatus = z
  .object({
    observedGeneration,
    conditions,
    categories: z
      .array(
        z.object({
          name: z.string().describe('Category name.'),
          depth: z.number().int().min(0).describe('Entries not yet delivered to a consumer.'),
          inFlight: z
            .number()
            .int()
            .min(0)
            .optional()
            .describe('Entries delivered to a consumer and not yet acknowledged.'),
          oldestWaitSeconds: z
            .number()
            .min(0)
            .describe('How long the oldest entry not yet acknowledged has waited.'),
          maxWaitSeconds: z.number().int().min(0).optional().describe("The category's maximum wait."),
          breaching: z.boolean().describe('Whether the oldest entry has waited past the maximum.'),
          overBySeconds: z
            .number()
            .min(0)
            .optional()
            .describe('How far past its maximum wait, when breaching.'),
          arrivalsPerMinute: z.number().min(0).optional().describe('Recent arrival rate.'),
          servedPerMinute: z.number().min(0).optional().describe('Recent service rate (acknowledged).'),
          replicasNeeded: z
            .number()
            .int()
            .min(0)
            .optional()
            .describe('Consumers this category and those above it need to keep its wait.'),
        }),
      )
      .max(16)
      .optional()
      .describe('The queue per category; counts only, never entries.'),
    waitingEntries: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Entries waiting or in flight, all categories.'),
    servedPerConsumerPerMinute: z
      .number()
      .min(0)
      .optional()
      .describe('Entries one consumer serves a minute, measured while the queue had a backlog.'),
    consumers: z
      .array(
        z.object({
          name: z.string().describe('Consumer (pod) name.'),
          inFlight: z.number().int().min(0).describe('Entries it holds unacknowledged.'),
        }),
      )
      .max(100)
      .optional()
      .describe('Consumers holding entries, busiest first: they are removed last on scale-in.'),
    desiredReplicas: z.number().int().min(0).optional().describe('Consumers Aurora wants.'),
    currentReplicas: z.number().int().min(0).optional().describe('Consumers there are.'),
    lastScaleTime: timestamp.optional().describe('When Aurora last changed the replicas.'),
    lastDecision: z
      .object({
        time: timestamp.describe('When it was made.'),
        fromReplicas: z.number().int().min(0).describe('Replicas before.'),
        toReplicas: z.number().int().min(0).describe('Replicas after.'),
        recommendation: z.number().int().min(0).describe('What the queue alone asked for.'),
        limitedBy: z
          .string()
          .describe(
            'What held the number: none, stabilization, rate, min, max, surge, reserved, paused or queue-unknown.',
          ),
        summary: z.string().max(1024).describe('What decided it, in counts and seconds.'),
      })
      .optional()
      .describe('The last decision that changed the replicas.'),
    forecast: z
      .object({
        historyBuckets: z.number().int().min(0).describe('5-minute buckets of arrivals on record.'),
        historyWeeks: z.number().min(0).describe('How much history the forecast has, in weeks.'),
        arrivalsPerMinute: z
          .number()
          .min(0)
          .optional()
          .describe('Arrivals the forecast expects within the lead time.'),
        replicas: z.number().int().min(0).optional().describe('Consumers the forecast asks for.'),
        contributing: z
          .boolean()
          .describe('Whether the forecast, not the queue now, set the recommendation.'),
      })
      .optional()
      .describe('The arrival forecast, when spec.forecast is set.'),
    wake: z
      .enum(['notifications', 'poll'])
      .optional()
      .describe(
        'How new entries wake Aurora: Redis keyspace notifications, or a light poll of the stream IDs.',
      ),
  })
  .describe('The queue as Aurora last saw it, and the scaling decision.');

export type CareQueueSpec = z.infer<typeof careQueueSpec>;
export type CareQueueStatus = z.infer<typeof careQueueStatus>;
