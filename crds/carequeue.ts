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
      .describe('Redis stream holding the category; defaults to aurora:<namespace>:<queue>:<category>.'),
    maxWaitSeconds: z
      .number()
      .int()
      .min(0)
      .max(86_400)
      .describe('Longest a patient of this category may wait to be seen; 0 means at once.'),
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
      .describe('Redis consumer group the consumers read through.'),
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
          depth: z.number().int().min(0).describe('Entries waiting.'),
          oldestWaitSeconds: z.number().min(0).describe('How long the oldest waiting entry has waited.'),
          breaching: z.boolean().describe('Whether the oldest entry has waited past the maximum.'),
          arrivalsPerMinute: z.number().min(0).optional().describe('Recent arrival rate.'),
          servedPerMinute: z.number().min(0).optional().describe('Recent service rate.'),
        }),
      )
      .max(16)
      .optional()
      .describe('The queue per category; counts only, never entries.'),
    desiredReplicas: z.number().int().min(0).optional().describe('Consumers Aurora wants.'),
    currentReplicas: z.number().int().min(0).optional().describe('Consumers there are.'),
    lastScaleTime: timestamp.optional().describe('When Aurora last changed the replicas.'),
  })
  .describe('The queue as Aurora last saw it, and the scaling decision.');

export type CareQueueSpec = z.infer<typeof careQueueSpec>;
export type CareQueueStatus = z.infer<typeof careQueueStatus>;
