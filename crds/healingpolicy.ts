import { z } from 'zod';
import {
  cel,
  conditions,
  labelSelector,
  observedGeneration,
  secretKeySelector,
  timestamp,
} from './common.ts';

export const remediationActions = [
  'RestartPod',
  'RestartRollout',
  'Rollback',
  'ScaleOut',
  'CordonNode',
] as const;

const window = (what: string, defaultSeconds: number) =>
  z.number().int().min(10).max(86_400).default(defaultSeconds).describe(`${what}, in seconds.`);

const tolerance = z
  .number()
  .int()
  .min(1)
  .max(100)
  .default(1)
  .describe('Consecutive checks that must find the failure before it counts.');

const detectors = z
  .object({
    crashLoop: z
      .object({
        restarts: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(3)
          .describe('Restarts within the window that count as a crash loop.'),
        windowSeconds: window('Window', 600),
        tolerance,
      })
      .optional()
      .describe('A container restarting repeatedly (CrashLoopBackOff).'),
    readinessFailing: z
      .object({ forSeconds: window('How long a pod must be unready', 120), tolerance })
      .optional()
      .describe('A running pod failing its readiness probe for a duration.'),
    oomKilled: z
      .object({
        count: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(1)
          .describe('OOM kills within the window that count.'),
        windowSeconds: window('Window', 900),
        tolerance,
      })
      .optional()
      .describe('Containers killed for running out of memory.'),
    restartsPerWindow: z
      .object({
        restarts: z.number().int().min(1).max(10_000).describe('Restarts within the window that count.'),
        windowSeconds: window('Window', 3600),
        tolerance,
      })
      .optional()
      .describe('More restarts than this within the window, for any reason.'),
    prometheus: z
      .object({
        url: z
          .string()
          .max(2048)
          .regex(/^https?:\/\/[^\s]+$/, 'must be an http:// or https:// URL')
          .describe('Prometheus base URL.'),
        query: z
          .string()
          .min(1)
          .max(4096)
          .describe('PromQL returning one value per target (label pod or deployment).'),
        operator: z.enum(['>', '>=', '<', '<=']).describe('How the value compares with the threshold.'),
        threshold: z.number().describe('The threshold.'),
        forSeconds: window('How long the comparison must hold', 300),
        onEmpty: z
          .enum(['Healthy', 'Unknown'])
          .default('Unknown')
          .describe('An empty result never counts as failing: Unknown holds any action.'),
        tolerance,
      })
      .optional()
      .describe('A PromQL threshold.'),
  })
  .describe('What counts as failing; at least one detector.')
  .meta(
    cel({
      rule: 'has(self.crashLoop) || has(self.readinessFailing) || has(self.oomKilled) || has(self.restartsPerWindow) || has(self.prometheus)',
      message: 'at least one detector must be set',
    }),
  );

const step = z
  .object({
    action: z.enum(remediationActions).describe('What to do.'),
    timeoutSeconds: z
      .number()
      .int()
      .min(10)
      .max(86_400)
      .default(300)
      .describe('How long to wait for the target to recover before the next step.'),
    scaleOutBy: z.number().int().min(1).max(100).optional().describe('For ScaleOut: replicas to add.'),
  })
  .describe('One step of the escalation ladder.')
  .meta(
    cel({
      rule: "self.action == 'ScaleOut' || !has(self.scaleOutBy)",
      message: 'scaleOutBy applies only to the ScaleOut action',
      fieldPath: '.scaleOutBy',
    }),
  );

const budget = z
  .object({
    actions: z.number().int().min(0).max(10_000).describe('Most actions in the window.'),
    windowSeconds: window('Window', 3600),
  })
  .describe('An action budget per window.');

export const healingPolicySpec = z
  .object({
    selector: z
      .object({
        namespaces: z
          .array(
            z
              .string()
              .min(1)
              .max(63)
              .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label'),
          )
          .max(64)
          .optional()
          .describe('Namespaces watched; the policy namespace when omitted.'),
        labelSelector: labelSelector
          .optional()
          .describe('Which workloads; all in the namespaces when omitted.'),
        kinds: z
          .array(z.enum(['Deployment', 'StatefulSet', 'InferencePool']))
          .min(1)
          .max(3)
          .default(['Deployment'])
          .describe('Kinds of workload watched.'),
      })
      .describe('Which services the policy watches.'),
    tier: z
      .enum(['critical', 'high', 'standard'])
      .default('standard')
      .describe('Criticality of the services; approval and budgets can depend on it.'),
    detectors,
    escalation: z
      .array(step)
      .min(1)
      .max(5)
      .describe('Steps in order; each runs when the previous did not bring recovery within its timeout.')
      .meta(
        cel({
          rule: 'self.all(s, self.exists_one(t, t.action == s.action))',
          message: 'each action may appear once in escalation',
        }),
      ),
    guardrails: z
      .object({
        maxUnhealthyPercent: z
          .number()
          .int()
          .min(0)
          .max(100)
          .default(50)
          .describe(
            'When more of the watched targets than this are unhealthy, act on none: the cause is wider.',
          ),
        budget: budget
          .default({ actions: 10, windowSeconds: 3600 })
          .describe('Actions this policy may take per window.'),
        cooldownSeconds: window('Wait after an action on a target before the next', 120),
        stormCooldownSeconds: window('Pause after maxUnhealthyPercent was exceeded', 600),
        perTargetLimit: budget
          .default({ actions: 3, windowSeconds: 3600 })
          .describe('Actions one target may receive per window.'),
        respectDisruptionBudgets: z
          .boolean()
          .default(true)
          .describe('Never restart a pod when its PodDisruptionBudget allows no disruption.'),
        healthyRevisionSeconds: window(
          'How long a revision must have been healthy to be a rollback target',
          600,
        ),
      })
      .default({
        maxUnhealthyPercent: 50,
        budget: { actions: 10, windowSeconds: 3600 },
        cooldownSeconds: 120,
        stormCooldownSeconds: 600,
        perTargetLimit: { actions: 3, windowSeconds: 3600 },
        respectDisruptionBudgets: true,
        healthyRevisionSeconds: 600,
      })
      .describe('Limits that keep healing from doing harm.'),
    mode: z
      .enum(['Enforce', 'DryRun'])
      .default('DryRun')
      .describe('DryRun records what would have been done and does nothing.'),
    approval: z
      .object({
        requiredFor: z
          .array(z.enum(remediationActions))
          .max(5)
          .default(['Rollback', 'CordonNode'])
          .describe(
            'Actions that wait for a person to annotate the target with aurora.health/approve=<action>.',
          ),
      })
      .default({ requiredFor: ['Rollback', 'CordonNode'] })
      .describe('Human approval for disruptive steps.'),
    audit: z
      .object({
        databaseSecretRef: secretKeySelector.describe('Secret key holding the PostgreSQL connection URL.'),
      })
      .describe('Where the audit trail is written, before every action.'),
    paused: z.boolean().default(false).describe('Detect and report, take no action.'),
  })
  .describe('Finds failing services, works out why, and remediates in escalating steps within budgets.')
  .meta(
    cel({
      rule: 'self.approval.requiredFor.all(a, self.escalation.exists(s, s.action == a))',
      message: 'approval.requiredFor may only name actions that appear in escalation',
      fieldPath: '.approval.requiredFor',
    }),
  );

export const healingPolicyStatus = z
  .object({
    observedGeneration,
    conditions,
    watchedTargets: z.number().int().min(0).optional().describe('Workloads the policy watches.'),
    unhealthyTargets: z
      .array(
        z.object({
          kind: z.string().describe('Workload kind.'),
          name: z.string().describe('Workload name.'),
          namespace: z.string().describe('Workload namespace.'),
          state: z
            .enum(['Failing', 'Unknown'])
            .optional()
            .describe('Failing, or Unknown when a detector cannot tell (which holds every action).'),
          detector: z.string().describe('The detector that found it failing.'),
          cause: z.string().optional().describe('The diagnosed cause, e.g. ImagePullError, OOMKilled.'),
          message: z.string().optional().describe('What the diagnosis found, in counts and names.'),
          step: z.number().int().min(0).describe('Index of the escalation step reached.'),
          since: timestamp.describe('When it was first found failing.'),
          waitingFor: z
            .string()
            .optional()
            .describe(
              'Why nothing is done now: AwaitingApproval, CoolingDown, BudgetExhausted, StormActive, ...',
            ),
          waitingMessage: z.string().optional().describe('What it waits for, in words.'),
          escalated: z.boolean().optional().describe('The ladder ran out: left to a person.'),
        }),
      )
      .max(100)
      .optional()
      .describe('Targets found failing, with the step each has reached.'),
    recentActions: z
      .array(
        z.object({
          time: timestamp.describe('When.'),
          target: z.string().describe('kind/namespace/name.'),
          action: z.string().describe('The action.'),
          step: z.number().int().min(0).optional().describe('The escalation step it belongs to.'),
          outcome: z
            .enum(['Done', 'DryRun', 'Refused', 'AwaitingApproval', 'Failed', 'Cancelled', 'Pending'])
            .describe('What happened.'),
          reason: z.string().optional().describe('Why, in one word.'),
          auditId: z.number().int().optional().describe('The audit trail row (seq) of its intent.'),
        }),
      )
      .max(20)
      .optional()
      .describe('The last actions, newest first.'),
    unhealthyCount: z.number().int().min(0).optional().describe('Targets found failing now.'),
    budgetRemaining: z.number().int().min(0).optional().describe('Actions left in the current window.'),
  })
  .describe('What the policy sees and what it did.');

export type HealingPolicySpec = z.infer<typeof healingPolicySpec>;
export type HealingPolicyStatus = z.infer<typeof healingPolicyStatus>;
