import { z } from 'zod';
import {
  boundedQuantity,
  cel,
  conditions,
  dnsLabel,
  localObjectReference,
  nodeSelector,
  observedGeneration,
  timestamp,
  toleration,
} from './common.ts';
import { appleChips } from './labels.ts';

const analysis = z
  .object({
    intervalSeconds: z
      .number()
      .int()
      .min(5)
      .max(3600)
      .default(60)
      .describe('How often the canary is measured.'),
    maxErrorRate: z
      .number()
      .min(0)
      .max(1)
      .default(0.01)
      .describe('Largest share of canary requests that may fail.'),
    maxP99LatencyMs: z
      .number()
      .min(1)
      .max(60_000)
      .default(250)
      .describe('Largest acceptable canary p99 latency.'),
    maxDisagreement: z
      .number()
      .min(0)
      .max(1)
      .default(0.05)
      .describe(
        'Largest share of requests on which the canary and the stable model may give different labels.',
      ),
    minRequests: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .default(50)
      .describe('Requests a step needs before it is judged; fewer holds the step rather than passing it.'),
    failureLimit: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(2)
      .describe('Failed measurements, in a row, that roll the canary back.'),
  })
  .describe('What the canary is judged on; every step must pass before the next.');

const canary = z
  .object({
    modelRef: localObjectReference.describe('The TriageModel to move to; it must pass acceptance first.'),
    shadow: z
      .boolean()
      .default(false)
      .describe('Mirror traffic to the canary without serving its answers, before any weighted step.'),
    steps: z
      .array(
        z.object({
          weight: z
            .number()
            .int()
            .min(1)
            .max(100)
            .describe('Percent of requests the canary serves in this step.'),
          pauseSeconds: z
            .number()
            .int()
            .min(0)
            .max(86_400)
            .default(300)
            .describe('How long the step lasts before it is judged and the next begins.'),
        }),
      )
      .min(1)
      .max(10)
      .default([
        { weight: 10, pauseSeconds: 300 },
        { weight: 50, pauseSeconds: 300 },
        { weight: 100, pauseSeconds: 0 },
      ])
      .describe('Weighted steps; weights must increase.')
      .meta(
        cel({
          rule: 'self.map(s, s.weight).isSorted() && self.all(s, self.exists_one(t, t.weight == s.weight))',
          message: 'step weights must increase from one step to the next',
        }),
      ),
    analysis: analysis.default({
      intervalSeconds: 60,
      maxErrorRate: 0.01,
      maxP99LatencyMs: 250,
      maxDisagreement: 0.05,
      minRequests: 50,
      failureLimit: 2,
    }),
  })
  .describe(
    'Reserved for a guarded move to another model (shadow, weighted steps, automatic promotion or rollback). Not acted on yet: the pool reports a Canary condition with reason NotSupported, and a version that passes acceptance replaces the old one by a rolling update.',
  );

const placement = z
  .object({
    appleSilicon: z
      .enum(['Required', 'Preferred'])
      .default('Required')
      .describe(
        'Required: only Apple-silicon nodes, each pod reserving its unified memory. Preferred: Apple first, other nodes when none fits; pods then reserve ordinary memory only, since only profiled Apple nodes offer unified memory.',
      ),
    chips: z
      .array(z.enum(appleChips))
      .max(appleChips.length)
      .optional()
      .describe('Apple chips allowed, e.g. [m4, m4-pro]; any chip when omitted.'),
    minUnifiedMemoryGiB: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .optional()
      .describe('Smallest node unified memory allowed, beyond what the model needs.'),
    spread: z
      .object({
        maxSkew: z
          .number()
          .int()
          .min(1)
          .max(100)
          .default(1)
          .describe('Largest difference in pods between machines.'),
        whenUnsatisfiable: z
          .enum(['DoNotSchedule', 'ScheduleAnyway'])
          .default('ScheduleAnyway')
          .describe('Whether an uneven spread blocks scheduling.'),
      })
      .default({ maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway' })
      .describe('How replicas spread across machines.'),
    nodeSelector: nodeSelector.optional().describe('Further node labels the pods require.'),
    tolerations: z.array(toleration).max(32).optional().describe('Taints the pods tolerate.'),
  })
  .describe('Where the pods may run.');

export const inferencePoolSpec = z
  .object({
    modelRef: localObjectReference.describe(
      'The TriageModel served; only a version that passed acceptance is served.',
    ),
    replicas: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .optional()
      .describe(
        'Desired replicas; set through the scale subresource by a CareQueue or an HPA. Defaults to minReplicas.',
      ),
    minReplicas: z.number().int().min(0).max(1000).default(1).describe('Fewest replicas.'),
    maxReplicas: z.number().int().min(1).max(1000).default(10).describe('Most replicas.'),
    placement: placement.default({
      appleSilicon: 'Required',
      spread: { maxSkew: 1, whenUnsatisfiable: 'ScheduleAnyway' },
    }),
    resources: z
      .object({
        cpu: boundedQuantity('10m', '64', 'cpu')
          .optional()
          .describe('CPU request per pod; defaults to 500m.'),
        memory: boundedQuantity('64Mi', '1Ti', 'memory')
          .optional()
          .describe('Memory request per pod; defaults to the model measured memory plus headroom.'),
        memoryHeadroomPercent: z
          .number()
          .int()
          .min(0)
          .max(400)
          .default(50)
          .describe('Added to the measured model memory to size each pod.'),
      })
      .default({ memoryHeadroomPercent: 50 })
      .describe('Per-pod resources.'),
    server: z
      .object({
        image: z
          .string()
          .min(1)
          .max(512)
          .regex(/^[^\s]+$/, 'must be an image reference without spaces')
          .optional()
          .describe('Triage server image; defaults to the operator version.'),
        port: z
          .number()
          .int()
          .min(1024)
          .max(65_535)
          .default(8080)
          .describe('HTTP port of the triage server.'),
        maxBatchSize: z
          .number()
          .int()
          .min(1)
          .max(1024)
          .default(16)
          .describe('Most requests run as one batch.'),
        batchWindowMs: z
          .number()
          .int()
          .min(0)
          .max(1000)
          .default(0)
          .describe(
            'How long an idle server waits for more requests to join a batch; 0 sends as soon as the requests that arrived together are read. Requests that arrive while the model runs always go together next.',
          ),
        allowedNamespaces: z
          .array(dnsLabel)
          .max(32)
          .default([])
          .describe(
            "Namespaces whose pods may call the triage servers, besides the pool's own (a NetworkPolicy admits no one else; add your monitoring namespace to scrape /metrics).",
          ),
      })
      .default({ port: 8080, maxBatchSize: 16, batchWindowMs: 0, allowedNamespaces: [] })
      .describe('Triage server settings.'),
    canary: canary.optional(),
  })
  .describe('Pods serving a TriageModel on Apple-silicon nodes.')
  .meta(
    cel(
      {
        rule: 'self.minReplicas <= self.maxReplicas',
        message: 'minReplicas must not be greater than maxReplicas',
        fieldPath: '.minReplicas',
      },
      {
        rule: '!has(self.replicas) || (self.replicas >= self.minReplicas && self.replicas <= self.maxReplicas)',
        message: 'replicas must be between minReplicas and maxReplicas',
        fieldPath: '.replicas',
      },
      {
        rule: '!has(self.canary) || self.canary.modelRef.name != self.modelRef.name',
        message: 'canary.modelRef must name a different TriageModel than modelRef',
        fieldPath: '.canary.modelRef.name',
      },
    ),
  );

export const inferencePoolStatus = z
  .object({
    observedGeneration,
    conditions,
    replicas: z.number().int().min(0).optional().describe('Pods of the pool.'),
    desiredReplicas: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        'Replicas the pool asks for: spec.replicas (or minReplicas) within minReplicas and maxReplicas.',
      ),
    readyReplicas: z.number().int().min(0).optional().describe('Pods ready to serve.'),
    selector: z
      .string()
      .max(1024)
      .optional()
      .describe('Label selector of the pods, for the scale subresource.'),
    placement: z
      .array(
        z.object({
          node: z.string().describe('Node name.'),
          chip: z.string().optional().describe('The node Apple chip.'),
          replicas: z.number().int().min(0).describe('Pods of the pool on the node.'),
        }),
      )
      .max(1000)
      .optional()
      .describe('Where the pods run.'),
    servedModel: z
      .object({
        name: z.string().describe('TriageModel name.'),
        version: z.string().describe('Version served.'),
        digest: z.string().describe('sha256 digest of the file served.'),
      })
      .optional()
      .describe('The model version the stable pods serve.'),
    canary: z
      .object({
        phase: z
          .enum(['Shadow', 'Progressing', 'Paused', 'Promoted', 'RolledBack'])
          .describe('Where the canary is.'),
        step: z.number().int().min(0).describe('Index of the current step.'),
        weight: z.number().int().min(0).max(100).describe('Percent of requests the canary serves now.'),
        version: z.string().optional().describe('The canary model version.'),
        message: z.string().max(1024).optional().describe('Why the canary is where it is.'),
        since: timestamp.optional().describe('When the current step began.'),
      })
      .optional()
      .describe('Canary progress (reserved; not reported until canaries are acted on).'),
  })
  .describe('What the pool is serving and where.');

export type InferencePoolSpec = z.infer<typeof inferencePoolSpec>;
export type InferencePoolStatus = z.infer<typeof inferencePoolStatus>;
