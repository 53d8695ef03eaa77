import { describe, expect, it } from 'vitest';
import { healingPolicySpec } from '../../crds/healingpolicy.ts';
import type { AuditRow } from '../../state/audit.ts';
import type { Plan, TargetView } from './ladder.ts';
import { healingPolicyStatus, recentActions } from './status.ts';

const spec = healingPolicySpec.parse({
  selector: {},
  detectors: { crashLoop: {} },
  escalation: [{ action: 'RestartPod' }],
  approval: { requiredFor: [] },
  mode: 'Enforce',
  audit: { databaseSecretRef: { name: 'db', key: 'url' } },
});
const now = new Date('2026-11-28T11:00:00Z');
const target = (name: string, over: Partial<TargetView> = {}): TargetView => ({
  target: { kind: 'Deployment', namespace: 'er', name, uid: name },
  state: 'Failing',
  detector: 'crashLoop',
  cause: 'CrashLoop',
  step: 0,
  sinceMs: now.getTime() - 60_000,
  escalated: false,
  ...over,
});
const plan = (targets: TargetView[], over: Partial<Plan> = {}): Plan => ({
  steps: [],
  targets,
  storm: { active: false, failing: 0, watched: targets.length },
  budgetRemaining: 7,
  ...over,
});
const conditions = (s: ReturnType<typeof healingPolicyStatus>) =>
  Object.fromEntries((s.conditions ?? []).map((c) => [c.type, `${c.status}/${c.reason}`]));

describe('healingPolicyStatus', () => {
  it.each<[string, Parameters<typeof healingPolicyStatus>[0], Record<string, string>]>([
    [
      'all healthy',
      { spec, now, plan: plan([target('a', { state: 'Healthy' })]), rows: [] },
      {
        Ready: 'True/Watching',
        Healing: 'False/Idle',
        StormActive: 'False/NoStorm',
        Escalated: 'False/NoneEscalated',
        AuditUnavailable: 'False/AuditWritable',
      },
    ],
    [
      'one waiting for approval',
      { spec, now, plan: plan([target('a', { hold: 'AwaitingApproval' })]), rows: [] },
      { Healing: 'True/AwaitingApproval' },
    ],
    [
      'a storm',
      {
        spec,
        now,
        plan: plan([target('a'), target('b')], { storm: { active: true, failing: 2, watched: 2 } }),
        rows: [],
      },
      { StormActive: 'True/MaxUnhealthyExceeded' },
    ],
    [
      'a storm cooling down',
      {
        spec,
        now,
        plan: plan([target('a')], {
          storm: { active: false, coolingDownUntilMs: now.getTime() + 1000, failing: 1, watched: 3 },
        }),
        rows: [],
      },
      { StormActive: 'True/StormCoolingDown' },
    ],
    [
      'escalated',
      { spec, now, plan: plan([target('a', { escalated: true, hold: 'Escalated' })]), rows: [] },
      { Escalated: 'True/LadderExhausted', Healing: 'False/Idle' },
    ],
    [
      'no audit trail',
      {
        spec,
        now,
        plan: plan([target('a')]),
        rows: [],
        auditFault: { reason: 'PostgreSQLUnavailable', message: 'down' },
      },
      { Ready: 'False/PostgreSQLUnavailable', AuditUnavailable: 'True/PostgreSQLUnavailable' },
    ],
  ])('%s', (_n, input, expected) => {
    expect(conditions(healingPolicyStatus({ ...input, generation: 3 }))).toMatchObject(expected);
  });

  it('lists the unhealthy targets with their step, cause and what they wait for', () => {
    const s = healingPolicyStatus({
      spec,
      now,
      generation: 2,
      plan: plan([
        target('a', { hold: 'CoolingDown', holdMessage: 'wait', step: 1 }),
        target('b', { state: 'Healthy' }),
      ]),
      rows: [],
    });
    expect(s).toMatchObject({
      observedGeneration: 2,
      watchedTargets: 2,
      unhealthyCount: 1,
      budgetRemaining: 7,
    });
    expect(s.unhealthyTargets).toEqual([
      {
        kind: 'Deployment',
        name: 'a',
        namespace: 'er',
        state: 'Failing',
        detector: 'crashLoop',
        cause: 'CrashLoop',
        step: 1,
        since: '2026-11-28T10:59:00.000Z',
        waitingFor: 'CoolingDown',
        waitingMessage: 'wait',
      },
    ]);
  });
});

describe('recentActions', () => {
  const row = (seq: number, over: Partial<AuditRow>): AuditRow =>
    ({
      seq,
      atMs: now.getTime() + seq * 1000,
      hash: '',
      prevHash: '',
      operator: 'o',
      policy: { namespace: 'er', name: 'p', uid: 'p' },
      target: { kind: 'Deployment', namespace: 'er', name: 'svc', uid: 'svc' },
      ...over,
    }) as AuditRow;
  it('gives the newest first, each intent with its outcome', () => {
    const rows = [
      row(1, { type: 'Detected' }),
      row(2, { type: 'Intent', action: 'RestartPod', step: 0 }),
      row(3, {
        type: 'Outcome',
        action: 'RestartPod',
        intent: 2,
        outcome: 'Refused',
        reason: 'DisruptionBudget',
      }),
      row(4, { type: 'AwaitingApproval', action: 'Rollback', step: 1 }),
      row(5, { type: 'Intent', action: 'Rollback', step: 1 }),
    ];
    expect(recentActions(rows).map((a) => [a.auditId, a.action, a.outcome, a.reason])).toEqual([
      [5, 'Rollback', 'Pending', undefined],
      [4, 'Rollback', 'AwaitingApproval', undefined],
      [2, 'RestartPod', 'Refused', 'DisruptionBudget'],
    ]);
  });
});
