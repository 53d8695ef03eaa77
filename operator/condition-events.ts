import { type Condition, findCondition } from './conditions.ts';
import type { EventType } from './events.ts';

/** How one condition type's changes become Events. */
export interface ConditionEventRule {
  type: string;
  /**
   * The status all is well in ('True' for Ready, 'False' for Degraded): any other is a Warning. Omitted
   * for conditions whose status is no verdict (Progressing), whose Warnings come from warningReasons.
   */
  healthyStatus?: 'True' | 'False';
  /**
   * Which changes of status or reason are told: all of them; only faults (a change that leaves the
   * condition unhealthy); or faults and recoveries (a change out of an unhealthy status too). The last
   * two need healthyStatus.
   */
  announce: 'changes' | 'faults' | 'faultsAndRecoveries';
  /** When set, only changes to these reasons are told. */
  onlyReasons?: readonly string[];
  /** Reasons that are Warnings even in the healthy status (a rejected version while the old serves). */
  warningReasons?: readonly string[];
  /** The Event's action; the condition type when omitted. */
  action?: string;
}

/** A kind's rules, in the order its Events are written. */
export type ConditionEventPolicy = readonly ConditionEventRule[];

export interface ConditionEvent {
  type: EventType;
  reason: string;
  action: string;
  note: string;
}

/**
 * The Events a status change is worth: for each rule, the condition's move from before to after, if
 * the rule tells it. An unchanged status and reason is never told again, so a steady object is quiet.
 */
export function conditionEvents(
  before: readonly Condition[] | undefined,
  after: readonly Condition[] | undefined,
  policy: ConditionEventPolicy,
): ConditionEvent[] {
  const events: ConditionEvent[] = [];
  for (const rule of policy) {
    const now = findCondition(after, rule.type);
    if (!now) continue;
    const was = findCondition(before, rule.type);
    if (was && was.status === now.status && was.reason === now.reason) continue;
    if (rule.onlyReasons && !rule.onlyReasons.includes(now.reason)) continue;
    const healthy = (c: Condition) => rule.healthyStatus === undefined || c.status === rule.healthyStatus;
    const unhealthy = !healthy(now);
    const recovered = was !== undefined && !healthy(was) && !unhealthy;
    if (rule.announce === 'faults' && !unhealthy) continue;
    if (rule.announce === 'faultsAndRecoveries' && !unhealthy && !recovered) continue;
    const warning = unhealthy || (rule.warningReasons?.includes(now.reason) ?? false);
    events.push({
      type: warning ? 'Warning' : 'Normal',
      reason: now.reason,
      action: rule.action ?? rule.type,
      note: now.message,
    });
  }
  return events;
}
