import { describe, expect, it } from 'vitest';
import { type ConditionEventRule, conditionEvents } from './condition-events.ts';
import type { Condition } from './conditions.ts';

const c = (type: string, status: Condition['status'], reason: string): Condition => ({
  type,
  status,
  reason,
  message: `${type} is ${status} (${reason})`,
  lastTransitionTime: '2026-11-28T10:00:00Z',
});

const ready: ConditionEventRule = { type: 'Ready', healthyStatus: 'True', announce: 'changes' };
const degraded: ConditionEventRule = { type: 'Degraded', healthyStatus: 'False', announce: 'faults' };
const placed: ConditionEventRule = { type: 'Placed', healthyStatus: 'True', announce: 'faultsAndRecoveries' };
const progressing: ConditionEventRule = {
  type: 'Progressing',
  announce: 'changes',
  onlyReasons: ['RollingOut', 'Complete', 'RolloutStalled'],
  warningReasons: ['RolloutStalled'],
  action: 'Rollout',
};

describe('conditionEvents', () => {
  it.each<[string, ConditionEventRule, Condition | undefined, Condition, string | undefined]>([
    ['first verdict, healthy', ready, undefined, c('Ready', 'True', 'Validated'), 'Normal Validated Ready'],
    [
      'first verdict, unhealthy',
      ready,
      undefined,
      c('Ready', 'False', 'AcceptanceFailed'),
      'Warning AcceptanceFailed Ready',
    ],
    [
      'Unknown is not healthy',
      ready,
      c('Ready', 'True', 'Validated'),
      c('Ready', 'Unknown', 'Retrying'),
      'Warning Retrying Ready',
    ],
    [
      'same status and reason: quiet',
      ready,
      c('Ready', 'True', 'Validated'),
      c('Ready', 'True', 'Validated'),
      undefined,
    ],
    [
      'same status, new reason: told',
      ready,
      c('Ready', 'False', 'SourceUnavailable'),
      c('Ready', 'False', 'DigestMismatch'),
      'Warning DigestMismatch Ready',
    ],
    [
      'a fault is told',
      degraded,
      c('Degraded', 'False', 'AsExpected'),
      c('Degraded', 'True', 'CrashLoopBackOff'),
      'Warning CrashLoopBackOff Degraded',
    ],
    [
      'faults only: no recovery',
      degraded,
      c('Degraded', 'True', 'CrashLoopBackOff'),
      c('Degraded', 'False', 'AsExpected'),
      undefined,
    ],
    [
      'faults only: no first healthy look',
      degraded,
      undefined,
      c('Degraded', 'False', 'AsExpected'),
      undefined,
    ],
    [
      'recovery told where asked',
      placed,
      c('Placed', 'False', 'InsufficientUnifiedMemory'),
      c('Placed', 'True', 'AllPlaced'),
      'Normal AllPlaced Placed',
    ],
    ['no first healthy look', placed, undefined, c('Placed', 'True', 'AllPlaced'), undefined],
    [
      'recovery from Unknown',
      placed,
      c('Placed', 'Unknown', 'InvalidSpec'),
      c('Placed', 'True', 'AllPlaced'),
      'Normal AllPlaced Placed',
    ],
    [
      'a reason outside onlyReasons is quiet',
      progressing,
      undefined,
      c('Progressing', 'False', 'AwaitingValidation'),
      undefined,
    ],
    [
      'no verdict in the status: Normal',
      progressing,
      undefined,
      c('Progressing', 'True', 'RollingOut'),
      'Normal RollingOut Rollout',
    ],
    [
      'a warning reason',
      progressing,
      c('Progressing', 'True', 'RollingOut'),
      c('Progressing', 'False', 'RolloutStalled'),
      'Warning RolloutStalled Rollout',
    ],
    [
      'done is told',
      progressing,
      c('Progressing', 'True', 'RollingOut'),
      c('Progressing', 'False', 'Complete'),
      'Normal Complete Rollout',
    ],
  ])('%s', (_name, rule, before, after, expected) => {
    const events = conditionEvents(before ? [before] : [], [after], [rule]);
    expect(events.map((e) => `${e.type} ${e.reason} ${e.action}`)).toEqual(expected ? [expected] : []);
    if (expected) expect(events[0]?.note).toBe(after.message);
  });

  it('tells changes in the order of the policy, and nothing for conditions it does not name', () => {
    const before = [c('Ready', 'True', 'Serving'), c('Degraded', 'False', 'AsExpected')];
    const after = [
      c('Degraded', 'True', 'OOMKilled'),
      c('Ready', 'False', 'PodsNotReady'),
      c('Canary', 'False', 'NotSupported'),
    ];
    expect(conditionEvents(before, after, [ready, degraded]).map((e) => e.reason)).toEqual([
      'PodsNotReady',
      'OOMKilled',
    ]);
  });

  it('tells nothing for a condition the new status lacks', () => {
    expect(conditionEvents([c('Ready', 'True', 'Serving')], [], [ready])).toEqual([]);
  });
});
