// The HealingPolicy's status from one check: what it watches, what fails and why, what it did (from the
// audit trail), the budget left, and its conditions. Pure.
import type { HealingPolicySpec, HealingPolicyStatus } from '../../crds/healingpolicy.ts';
import type { ConditionEventPolicy } from '../../operator/condition-events.ts';
import { type ConditionInput, setConditions } from '../../operator/conditions.ts';
import type { AuditRow } from '../../state/audit.ts';
import type { Plan } from './ladder.ts';

/** Why the audit trail cannot be written, when it cannot. */
export interface AuditFault {
  reason: 'AuditSecretNotFound' | 'PostgreSQLUnavailable' | 'AuditSchemaNotReady';
  message: string;
}

export const healingPolicyEvents: ConditionEventPolicy = [
  { type: 'Ready', healthyStatus: 'True', announce: 'faultsAndRecoveries' },
  { type: 'AuditUnavailable', healthyStatus: 'False', announce: 'faultsAndRecoveries' },
  { type: 'StormActive', healthyStatus: 'False', announce: 'faultsAndRecoveries' },
  { type: 'Escalated', healthyStatus: 'False', announce: 'faults' },
];

const iso = (ms: number) => new Date(ms).toISOString();
const targetName = (t: { kind: string; namespace: string; name: string }) =>
  `${t.kind}/${t.namespace}/${t.name}`;

/** The newest actions (intents and approvals waited for), newest first, each with its outcome. */
export function recentActions(
  rows: readonly AuditRow[],
  limit = 20,
): NonNullable<HealingPolicyStatus['recentActions']> {
  const outcomes = new Map(rows.filter((r) => r.type === 'Outcome').map((r) => [r.intent, r]));
  const out: NonNullable<HealingPolicyStatus['recentActions']> = [];
  for (let i = rows.length - 1; i >= 0 && out.length < limit; i--) {
    const r = rows[i];
    if (!r?.target || !r.action || (r.type !== 'Intent' && r.type !== 'AwaitingApproval')) continue;
    const outcome = r.type === 'AwaitingApproval' ? r : outcomes.get(r.seq);
    out.push({
      time: iso(r.atMs),
      target: targetName(r.target),
      action: r.action,
      ...(r.step !== undefined ? { step: r.step } : {}),
      outcome:
        r.type === 'AwaitingApproval'
          ? 'AwaitingApproval'
          : ((outcome?.outcome as NonNullable<HealingPolicyStatus['recentActions']>[number]['outcome']) ??
            'Pending'),
      ...(outcome?.reason ? { reason: outcome.reason } : {}),
      auditId: r.seq,
    });
  }
  return out;
}

export function healingPolicyStatus(input: {
  spec: HealingPolicySpec;
  generation?: number;
  previous?: HealingPolicyStatus;
  now: Date;
  plan: Plan;
  rows: readonly AuditRow[];
  auditFault?: AuditFault;
  /** Why the cluster looks unhealthy, when it does. */
  clusterFault?: string;
  /** Older policies that heal targets this one selects too. */
  yielded?: readonly string[];
}): HealingPolicyStatus {
  const { spec, plan } = input;
  const unhealthy = plan.targets.filter((t) => t.state !== 'Healthy');
  const escalated = unhealthy.filter((t) => t.escalated);
  const conditions: ConditionInput[] = [];
  const audit = input.auditFault;
  conditions.push(
    audit
      ? {
          type: 'Ready',
          status: 'False',
          reason: audit.reason,
          message: `${audit.message}; failures are found and reported, but nothing is done without the audit trail`,
        }
      : {
          type: 'Ready',
          status: 'True',
          reason: spec.paused ? 'Paused' : spec.mode === 'DryRun' ? 'DryRun' : 'Watching',
          message: `watching ${plan.targets.length} target(s)${spec.paused ? '; paused: detect and report only' : ''}${spec.mode === 'DryRun' ? '; DryRun: actions are recorded, not taken' : ''}${input.yielded?.length ? `; targets it also selects are healed by the older ${input.yielded.join(', ')}` : ''}${input.clusterFault ? `; ${input.clusterFault}` : ''}`,
        },
  );
  const acting = unhealthy.filter((t) => !t.escalated);
  const holds = [...new Set(acting.map((t) => t.hold).filter(Boolean))];
  conditions.push(
    acting.length === 0
      ? { type: 'Healing', status: 'False', reason: 'Idle', message: 'no target is being remediated' }
      : {
          type: 'Healing',
          status: 'True',
          reason: holds.length === 1 && holds[0] ? holds[0] : 'Remediating',
          message: acting
            .slice(0, 5)
            .map(
              (t) =>
                `${targetName(t.target)}: ${t.cause ?? t.state} at step ${t.step}${t.hold ? ` (${t.hold})` : ''}`,
            )
            .join('; '),
        },
  );
  conditions.push(
    plan.storm.active
      ? {
          type: 'StormActive',
          status: 'True',
          reason: 'MaxUnhealthyExceeded',
          message: `${plan.storm.failing} of ${plan.storm.watched} watched targets are failing, more than ${spec.guardrails.maxUnhealthyPercent}%: acting on none`,
        }
      : plan.storm.coolingDownUntilMs !== undefined
        ? {
            type: 'StormActive',
            status: 'True',
            reason: 'StormCoolingDown',
            message: `a storm ended; no action until ${iso(plan.storm.coolingDownUntilMs)}`,
          }
        : { type: 'StormActive', status: 'False', reason: 'NoStorm', message: 'no storm' },
  );
  conditions.push(
    escalated.length > 0
      ? {
          type: 'Escalated',
          status: 'True',
          reason: 'LadderExhausted',
          message: `left to a person: ${escalated
            .slice(0, 5)
            .map((t) => `${targetName(t.target)} (${t.cause ?? 'failing'})`)
            .join(', ')}`,
        }
      : {
          type: 'Escalated',
          status: 'False',
          reason: 'NoneEscalated',
          message: 'no target is left to a person',
        },
  );
  conditions.push(
    audit
      ? { type: 'AuditUnavailable', status: 'True', reason: audit.reason, message: audit.message }
      : {
          type: 'AuditUnavailable',
          status: 'False',
          reason: 'AuditWritable',
          message: 'the audit trail is written',
        },
  );
  return {
    observedGeneration: input.generation,
    conditions: setConditions(input.previous?.conditions, conditions, input.generation, input.now),
    watchedTargets: plan.targets.length,
    unhealthyCount: unhealthy.length,
    unhealthyTargets: unhealthy.slice(0, 100).map((t) => ({
      kind: t.target.kind,
      name: t.target.name,
      namespace: t.target.namespace,
      state: t.state === 'Unknown' ? 'Unknown' : 'Failing',
      detector: t.detector ?? 'unknown',
      ...(t.cause ? { cause: t.cause } : {}),
      ...(t.message ? { message: t.message } : {}),
      step: t.step,
      since: iso(t.sinceMs ?? input.now.getTime()),
      ...(t.hold ? { waitingFor: t.hold } : {}),
      ...(t.holdMessage ? { waitingMessage: t.holdMessage } : {}),
      ...(t.escalated ? { escalated: true } : {}),
    })),
    recentActions: recentActions(input.rows),
    budgetRemaining: plan.budgetRemaining,
  } as HealingPolicyStatus;
}
