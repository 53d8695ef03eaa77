import { describe, expect, it } from 'vitest';
import { healingPolicySpec } from '../../crds/healingpolicy.ts';
import type { AuditRow } from '../../state/audit.ts';
import type { Verdict } from './detect.ts';
import type { Action, Diagnosis } from './diagnose.ts';
import { type Plan, planHealing, type TargetInput, trailState } from './ladder.ts';

const t0 = 1_800_000_000_000;
const policy = { namespace: 'er', name: 'heal', uid: 'p' };

const spec = (over: Record<string, unknown> = {}) =>
  healingPolicySpec.parse({
    selector: {},
    detectors: { crashLoop: {} },
    escalation: [
      { action: 'RestartPod', timeoutSeconds: 60 },
      { action: 'RestartRollout', timeoutSeconds: 60 },
      { action: 'Rollback', timeoutSeconds: 60 },
    ],
    approval: { requiredFor: [] },
    mode: 'Enforce',
    audit: { databaseSecretRef: { name: 'db', key: 'url' } },
    ...over,
  });

const failing: Verdict = {
  state: 'Failing',
  findings: [{ detector: 'crashLoop', pods: ['a'], detail: {}, summary: 'looping' }],
  pending: [],
};
const healthy: Verdict = { state: 'Healthy', findings: [], pending: [] };
const crash: Diagnosis = {
  cause: 'CrashLoop',
  message: 'looping',
  ruledOut: { ScaleOut: 'no', CordonNode: 'no' },
};

const target = (
  name: string,
  verdict: Verdict,
  diagnosis?: Diagnosis,
  approvals: Action[] = [],
  healthySinceS?: number,
): TargetInput => ({
  target: { kind: 'Deployment', namespace: 'er', name, uid: name },
  verdict,
  ...(healthySinceS !== undefined ? { healthySinceMs: t0 + healthySinceS * 1000 } : {}),
  ...(verdict.state === 'Failing' ? { diagnosis: diagnosis ?? crash } : {}),
  approvals: new Set(approvals),
});

/** Runs plans at the given times, recording every planned row and acting with the given outcome. */
class Simulation {
  rows: AuditRow[] = [];
  readonly policySpec: ReturnType<typeof spec>;
  readonly outcome: string;
  constructor(policySpec = spec(), outcome = 'Done') {
    this.policySpec = policySpec;
    this.outcome = outcome;
  }
  private add(row: Partial<AuditRow>, atMs: number): AuditRow {
    const full = {
      ...row,
      atMs,
      seq: this.rows.length + 1,
      hash: '',
      prevHash: '',
      operator: 'o',
      policy,
    } as AuditRow;
    this.rows.push(full);
    return full;
  }
  plan(
    atS: number,
    targets: TargetInput[],
    more: { auditAvailable?: boolean; clusterHealthy?: boolean } = {},
  ): Plan {
    const nowMs = t0 + atS * 1000;
    const plan = planHealing({
      spec: this.policySpec,
      nowMs,
      targets,
      trail: trailState(this.rows, this.policySpec.mode),
      auditAvailable: more.auditAvailable ?? true,
      cluster: { healthy: more.clusterHealthy ?? true },
    });
    for (const s of plan.steps) {
      if ('record' in s) this.add(s.record, nowMs);
      else {
        const mode = this.policySpec.mode;
        const intent = this.add(
          { type: 'Intent', target: s.action.target, step: s.action.step, action: s.action.action, mode },
          nowMs,
        );
        this.add(
          {
            type: 'Outcome',
            target: s.action.target,
            intent: intent.seq,
            outcome: mode === 'DryRun' ? 'DryRun' : this.outcome,
          },
          nowMs,
        );
      }
    }
    return plan;
  }
  types = () => this.rows.map((r) => (r.action ? `${r.type}:${r.action}` : r.type));
}

const actions = (p: Plan) => p.steps.flatMap((s) => ('action' in s ? [s.action.action] : []));
const holdOf = (p: Plan, name = 'svc') => p.targets.find((t) => t.target.name === name)?.hold;

describe('the ladder', () => {
  it('acts, waits each step’s timeout, escalates, and ends Escalated', () => {
    const sim = new Simulation();
    const svc = [target('svc', failing), target('other', healthy)];
    expect(actions(sim.plan(0, svc))).toEqual(['RestartPod']);
    expect(holdOf(sim.plan(30, svc))).toBe('WaitingForRecovery');
    // After the timeout (and the cool-down) the next step.
    expect(actions(sim.plan(130, svc))).toEqual(['RestartRollout']);
    expect(actions(sim.plan(260, svc))).toEqual(['Rollback']);
    const last = sim.plan(390, svc);
    expect(actions(last)).toEqual([]);
    expect(last.targets[0]).toMatchObject({ escalated: true, hold: 'Escalated' });
    expect(sim.plan(500, svc).steps).toEqual([]);
    expect(sim.types()).toEqual([
      'Detected',
      'Intent:RestartPod',
      'Outcome',
      'Intent:RestartRollout',
      'Outcome',
      'Intent:Rollback',
      'Outcome',
      'Escalated',
    ]);
    // Recovery ends the episode once it held for the last step's timeout; a new failure starts over.
    const recovering = sim.plan(600, [target('svc', healthy, undefined, [], 560), target('other', healthy)]);
    expect(holdOf(recovering)).toBe('ConfirmingRecovery');
    sim.plan(620, [target('svc', healthy, undefined, [], 560), target('other', healthy)]);
    expect(sim.types().at(-1)).toBe('Recovered');
    expect(actions(sim.plan(4000, svc))).toEqual(['RestartPod']);
  });

  it('passes over the steps the diagnosis rules out, recording why', () => {
    const sim = new Simulation();
    const newRevision: Diagnosis = {
      cause: 'NewRevision',
      message: 'new revision fails',
      ruledOut: { RestartPod: 'restarting will not help', RestartRollout: 'restarting will not help' },
    };
    expect(actions(sim.plan(0, [target('svc', failing, newRevision), target('b', healthy)]))).toEqual([
      'Rollback',
    ]);
    expect(sim.rows.filter((r) => r.type === 'Skipped').map((r) => [r.action, r.message])).toEqual([
      ['RestartPod', 'restarting will not help'],
      ['RestartRollout', 'restarting will not help'],
    ]);
    const nothing: Diagnosis = {
      cause: 'ImagePullError',
      message: 'no',
      ruledOut: { RestartPod: 'x', RestartRollout: 'x', Rollback: 'x' },
    };
    const other = new Simulation();
    const plan = other.plan(0, [target('svc', failing, nothing), target('b', healthy)]);
    expect(actions(plan)).toEqual([]);
    expect(other.types()).toEqual([
      'Detected',
      'Skipped:RestartPod',
      'Skipped:RestartRollout',
      'Skipped:Rollback',
      'Escalated',
    ]);
  });

  it('acts on none during a storm, and waits its cool-down after it', () => {
    const sim = new Simulation(spec({ guardrails: { maxUnhealthyPercent: 30, stormCooldownSeconds: 300 } }));
    const three = [
      target('a', failing),
      target('b', failing),
      target('c', healthy),
      target('d', healthy),
      target('e', healthy),
    ];
    const storm = sim.plan(0, three);
    expect(actions(storm)).toEqual([]);
    expect(storm.storm).toMatchObject({ active: true, failing: 2, watched: 5 });
    expect(holdOf(storm, 'a')).toBe('StormActive');
    const calm = [
      target('a', failing),
      target('b', healthy),
      target('c', healthy),
      target('d', healthy),
      target('e', healthy),
    ];
    const after = sim.plan(60, calm);
    expect(holdOf(after, 'a')).toBe('StormCoolingDown');
    expect(holdOf(sim.plan(359, calm), 'a')).toBe('StormCoolingDown');
    expect(actions(sim.plan(360, calm))).toEqual(['RestartPod']);
    expect(sim.types().filter((t) => t.startsWith('Storm'))).toEqual(['StormStarted', 'StormEnded']);
  });

  it('keeps to the policy budget, the per-target limit and the cool-down', () => {
    const sim = new Simulation(
      spec({
        escalation: [
          { action: 'RestartPod', timeoutSeconds: 10 },
          { action: 'RestartRollout', timeoutSeconds: 10 },
        ],
        guardrails: {
          maxUnhealthyPercent: 100,
          budget: { actions: 3, windowSeconds: 3600 },
          perTargetLimit: { actions: 1, windowSeconds: 3600 },
          cooldownSeconds: 60,
        },
      }),
    );
    const four = ['a', 'b', 'c', 'd'].map((n) => target(n, failing));
    const first = sim.plan(0, four);
    expect(actions(first)).toEqual(['RestartPod', 'RestartPod', 'RestartPod']);
    expect(first.budgetRemaining).toBe(0);
    expect(holdOf(first, 'd')).toBe('BudgetExhausted');
    expect(holdOf(sim.plan(30, four), 'a')).toBe('CoolingDown');
    expect(holdOf(sim.plan(90, four), 'a')).toBe('TargetLimitReached');
    // An hour on, both windows have passed.
    expect(actions(sim.plan(3700, four))).toHaveLength(3);
  });

  it('waits for approval, records the wait once, and acts once approved', () => {
    const sim = new Simulation(spec({ approval: { requiredFor: ['RestartPod'] } }));
    const waiting = sim.plan(0, [target('svc', failing), target('b', healthy)]);
    expect(holdOf(waiting)).toBe('AwaitingApproval');
    sim.plan(10, [target('svc', failing), target('b', healthy)]);
    expect(sim.types()).toEqual(['Detected', 'AwaitingApproval:RestartPod']);
    expect(
      actions(sim.plan(20, [target('svc', failing, crash, ['RestartPod']), target('b', healthy)])),
    ).toEqual(['RestartPod']);
  });

  it('does nothing disruptive without the audit trail, with the cluster unhealthy, paused or when the state is unknown', () => {
    const svc = [target('svc', failing), target('b', healthy)];
    const noAudit = new Simulation().plan(0, svc, { auditAvailable: false });
    expect([noAudit.steps, holdOf(noAudit)]).toEqual([[], 'AuditUnavailable']);
    const cluster = new Simulation();
    expect(holdOf(cluster.plan(0, svc, { clusterHealthy: false }))).toBe('ClusterUnhealthy');
    expect(cluster.types()).toEqual(['Detected']);
    const paused = new Simulation(spec({ paused: true }));
    expect(holdOf(paused.plan(0, svc))).toBe('Paused');
    const unknown = new Simulation().plan(0, [
      target('svc', { state: 'Unknown', findings: failing.findings, pending: [], unknownReason: 'empty' }),
    ]);
    expect([unknown.steps, holdOf(unknown)]).toEqual([[], 'MetricUnknown']);
  });

  it('climbs a ladder of its own once a policy moves from DryRun to Enforce', () => {
    const dry = new Simulation(spec({ mode: 'DryRun' }));
    const svc = [target('svc', failing), target('b', healthy)];
    for (const at of [0, 130, 260, 390]) dry.plan(at, svc);
    expect(dry.types().at(-1)).toBe('Escalated');
    const enforce = new Simulation(spec({ mode: 'Enforce' }));
    enforce.rows = [...dry.rows];
    expect(actions(enforce.plan(400, svc))).toEqual(['RestartPod']);
  });

  it('in DryRun records what it would do, with its own budget', () => {
    const sim = new Simulation(spec({ mode: 'DryRun' }));
    expect(actions(sim.plan(0, [target('svc', failing), target('b', healthy)]))).toEqual(['RestartPod']);
    expect(sim.rows.at(-1)).toMatchObject({ type: 'Outcome', outcome: 'DryRun' });
  });

  it('does not count a refused action against the budget, retries it after the cool-down, and moves on at its timeout', () => {
    const sim = new Simulation(
      spec({
        escalation: [
          { action: 'RestartPod', timeoutSeconds: 300 },
          { action: 'RestartRollout', timeoutSeconds: 60 },
        ],
        guardrails: { budget: { actions: 1, windowSeconds: 3600 }, cooldownSeconds: 60 },
      }),
      'Refused',
    );
    const svc = [target('svc', failing), target('b', healthy)];
    expect(actions(sim.plan(0, svc))).toEqual(['RestartPod']);
    expect(holdOf(sim.plan(30, svc))).toBe('CoolingDown');
    expect(actions(sim.plan(61, svc))).toEqual(['RestartPod']);
    // Refused every time: the step still gives way at its timeout, counted from its first try.
    expect(actions(sim.plan(300, svc))).toEqual(['RestartRollout']);
  });

  it('counts a failed action against the budget: it may have done part of its work', () => {
    const sim = new Simulation(
      spec({ guardrails: { budget: { actions: 1, windowSeconds: 3600 }, cooldownSeconds: 10 } }),
      'Failed',
    );
    const two = [
      target('a', failing),
      target('b', failing),
      target('c', healthy),
      target('d', healthy),
      target('e', healthy),
    ];
    expect(actions(sim.plan(0, two))).toEqual(['RestartPod']);
    expect(holdOf(sim.plan(20, two), 'b')).toBe('BudgetExhausted');
  });

  it('moves no step during a storm or with the cluster unhealthy: nothing skipped, nothing escalated', () => {
    const everywhere: Diagnosis = {
      cause: 'EverywhereAtOnce',
      message: 'all at once',
      ruledOut: { RestartPod: 'x', RestartRollout: 'x', Rollback: 'x' },
    };
    const storm = new Simulation(spec({ guardrails: { maxUnhealthyPercent: 50 } }));
    storm.plan(0, [target('a', failing, everywhere), target('b', failing, everywhere), target('c', healthy)]);
    expect(storm.types()).toEqual(['StormStarted', 'Detected', 'Detected']);
    const sick = new Simulation();
    sick.plan(0, [target('a', failing, everywhere), target('c', healthy)], { clusterHealthy: false });
    expect(sick.types()).toEqual(['Detected']);
  });

  it('ends the episode of a target it no longer watches', () => {
    const sim = new Simulation();
    sim.plan(0, [target('svc', failing), target('b', healthy)]);
    sim.plan(10, [target('b', healthy)]);
    expect(sim.rows.at(-1)).toMatchObject({
      type: 'Recovered',
      reason: 'NoLongerWatched',
      target: { name: 'svc' },
    });
  });

  it('takes an approval only as the answer to a request', () => {
    const sim = new Simulation(spec({ approval: { requiredFor: ['RestartPod'] } }));
    // Approved before anything asked: the request is recorded first.
    const early = sim.plan(0, [target('svc', failing, crash, ['RestartPod']), target('b', healthy)]);
    expect(holdOf(early)).toBe('AwaitingApproval');
    expect(
      actions(sim.plan(10, [target('svc', failing, crash, ['RestartPod']), target('b', healthy)])),
    ).toEqual(['RestartPod']);
  });

  it('holds a target whose intent has no outcome, until it is resolved', () => {
    const sim = new Simulation();
    sim.plan(0, [target('svc', failing), target('b', healthy)]);
    sim.rows.pop(); // the replica stopped between the intent and its outcome
    const plan = sim.plan(5, [target('svc', failing), target('b', healthy)]);
    expect([actions(plan), holdOf(plan)]).toEqual([[], 'IntentUnresolved']);
  });
});
