// The escalation ladder and its guardrails: a pure function of the policy, what the detectors and the
// diagnosis found, the audit trail's rows (the durable memory: another replica carries on from them) and
// the time. It returns the rows to record and the actions to take, in order; the reconciler writes each
// intent before it acts.
import type { HealingPolicySpec } from '../../crds/healingpolicy.ts';
import type { AuditRow, AuditTarget } from '../../state/audit.ts';
import type { Verdict } from './detect.ts';
import type { Action, Diagnosis } from './diagnose.ts';

/** Why a failing target is not acted on now. */
export type HoldReason =
  | 'Paused'
  | 'MetricUnknown'
  | 'AuditUnavailable'
  | 'ClusterUnhealthy'
  | 'StormActive'
  | 'StormCoolingDown'
  | 'BudgetExhausted'
  | 'TargetLimitReached'
  | 'CoolingDown'
  | 'AwaitingApproval'
  | 'WaitingForRecovery'
  | 'Escalated'
  | 'IntentUnresolved'
  | 'ConfirmingRecovery';

/** One target's remediation episode, as the trail tells it. */
export interface Episode {
  target?: AuditTarget;
  detectedAtMs: number;
  detector?: string;
  cause?: string;
  /** The step in effect or next to run. */
  step: number;
  /**
   * When the step was first tried: its timeout runs from then, whatever came of it, so a step that is
   * refused again and again (a disruption budget, nothing to restart) still gives way to the next.
   */
  stepStartedAtMs?: number;
  /** When the step's action was last applied (Done or DryRun). */
  stepAppliedAtMs?: number;
  awaitingApproval: boolean;
  escalated: boolean;
  /** An intent with no outcome yet (the replica that wrote it stopped): resolved before anything else. */
  openIntent?: AuditRow;
}

export interface TrailState {
  episodes: Map<string, Episode>;
  /** Intents that acted (or would have, in DryRun) or may have: by time, target uid and mode. */
  attempts: Array<{ atMs: number; targetUid: string; mode: string; counts: boolean }>;
  storm: { active: boolean; endedAtMs?: number };
}

/** Outcomes that did nothing: they use no budget. A failure may have done part of its work, so it counts. */
const notCounted = new Set(['Refused', 'Cancelled', 'AwaitingApproval']);

/** Replays the policy's rows, oldest first, into the state the ladder needs. */
export function trailState(rows: readonly AuditRow[], mode?: 'Enforce' | 'DryRun'): TrailState {
  const episodes = new Map<string, Episode>();
  const attempts: TrailState['attempts'] = [];
  const attemptBySeq = new Map<number, TrailState['attempts'][number]>();
  const storm: TrailState['storm'] = { active: false };
  for (const r of rows) {
    const uid = r.target?.uid ?? '';
    // A ladder climbed in DryRun is not the one to climb in Enforce, nor the other way round: episodes
    // follow the policy's present mode (budgets count attempts by mode below).
    if (mode && r.mode && r.mode !== mode && r.type !== 'Intent' && r.type !== 'Outcome') continue;
    if (mode && r.mode && r.mode !== mode) {
      if (r.type === 'Intent') attempts.push({ atMs: r.atMs, targetUid: uid, mode: r.mode, counts: true });
      continue;
    }
    const episode = episodes.get(uid);
    switch (r.type) {
      case 'Detected':
        episodes.set(uid, {
          ...(r.target ? { target: r.target } : {}),
          detectedAtMs: r.atMs,
          ...(r.detector ? { detector: r.detector } : {}),
          ...(r.cause ? { cause: r.cause } : {}),
          step: 0,
          awaitingApproval: false,
          escalated: false,
        });
        break;
      case 'Skipped':
        if (episode && r.step !== undefined) {
          episode.step = r.step + 1;
          delete episode.stepStartedAtMs;
          delete episode.stepAppliedAtMs;
          episode.awaitingApproval = false;
        }
        break;
      case 'AwaitingApproval':
        if (episode && r.step !== undefined) {
          if (episode.step !== r.step) {
            delete episode.stepStartedAtMs;
            delete episode.stepAppliedAtMs;
          }
          episode.step = r.step;
          episode.awaitingApproval = true;
        }
        break;
      case 'Intent': {
        const attempt = { atMs: r.atMs, targetUid: uid, mode: r.mode ?? 'Enforce', counts: true };
        attempts.push(attempt);
        attemptBySeq.set(r.seq, attempt);
        if (episode && r.step !== undefined) {
          if (episode.step !== r.step || episode.stepStartedAtMs === undefined) {
            episode.stepStartedAtMs = r.atMs;
            delete episode.stepAppliedAtMs;
          }
          episode.step = r.step;
          episode.awaitingApproval = false;
          episode.openIntent = r;
        }
        break;
      }
      case 'Outcome': {
        const attempt = r.intent !== undefined ? attemptBySeq.get(r.intent) : undefined;
        if (attempt && notCounted.has(r.outcome ?? '')) attempt.counts = false;
        if (episode?.openIntent && episode.openIntent.seq === r.intent) {
          delete episode.openIntent;
          if (r.outcome === 'Done' || r.outcome === 'DryRun') episode.stepAppliedAtMs = r.atMs;
        }
        break;
      }
      case 'Escalated':
        if (episode) episode.escalated = true;
        break;
      case 'Recovered':
        episodes.delete(uid);
        break;
      case 'StormStarted':
        storm.active = true;
        delete storm.endedAtMs;
        break;
      case 'StormEnded':
        storm.active = false;
        storm.endedAtMs = r.atMs;
        break;
    }
  }
  return { episodes, attempts, storm };
}

export interface TargetInput {
  target: AuditTarget;
  verdict: Verdict;
  /** Present when the verdict is Failing. */
  diagnosis?: Diagnosis;
  /** Actions a person approved with aurora.health/approve on the target. */
  approvals: ReadonlySet<Action>;
  /** Since when the target has been healthy without a break (undefined while it fails). */
  healthySinceMs?: number;
  /** The revision its newest pods run, recorded with a failure so it is never a rollback target. */
  revision?: string;
}

/** A row to record that takes no action: the reconciler fills in policy, operator and time. */
export interface PlannedRecord {
  type:
    | 'Detected'
    | 'Skipped'
    | 'AwaitingApproval'
    | 'Escalated'
    | 'Recovered'
    | 'StormStarted'
    | 'StormEnded';
  target?: AuditTarget;
  step?: number;
  action?: Action;
  detector?: string;
  cause?: string;
  reason?: string;
  message?: string;
  details?: Record<string, string>;
  /** The mode the policy ran in: episodes are replayed per mode. */
  mode?: 'Enforce' | 'DryRun';
}

export interface PlannedAction {
  target: AuditTarget;
  step: number;
  action: Action;
  scaleOutBy?: number;
  diagnosis: Diagnosis;
}

export interface TargetView {
  target: AuditTarget;
  state: 'Healthy' | 'Failing' | 'Unknown';
  detector?: string;
  cause?: string;
  message?: string;
  step: number;
  sinceMs?: number;
  hold?: HoldReason;
  holdMessage?: string;
  escalated: boolean;
}

export interface Plan {
  /** In order: records, and actions after the records of their target. */
  steps: Array<{ record: PlannedRecord } | { action: PlannedAction }>;
  targets: TargetView[];
  storm: { active: boolean; coolingDownUntilMs?: number; failing: number; watched: number };
  budgetRemaining: number;
}

/**
 * Whether failing targets make a storm: more of the watched than the policy allows, and two at least
 * (one failing target is what healing is for).
 */
export const isStorm = (failing: number, watched: number, maxUnhealthyPercent: number) =>
  failing >= 2 && failing * 100 > maxUnhealthyPercent * watched;

export function planHealing(options: {
  spec: HealingPolicySpec;
  nowMs: number;
  targets: readonly TargetInput[];
  trail: TrailState;
  auditAvailable: boolean;
  cluster: { healthy: boolean; reason?: string };
  /** How long a target nothing was done to must stay healthy before its episode ends. */
  settleMs?: number;
}): Plan {
  const { spec, nowMs, trail } = options;
  const settleMs = options.settleMs ?? 10_000;
  const g = spec.guardrails;
  const mode = spec.mode;
  const steps: Plan['steps'] = [];
  const record = (r: PlannedRecord) => steps.push({ record: { ...r, mode } });

  // Storm: more of the watched targets failing than the policy allows (two at least: one failing target
  // is what healing is for).
  const failing = options.targets.filter((t) => t.verdict.state === 'Failing').length;
  const watched = options.targets.length;
  const stormNow = isStorm(failing, watched, g.maxUnhealthyPercent);
  let stormActive = trail.storm.active;
  let stormEndedAtMs = trail.storm.endedAtMs;
  if (stormNow && !stormActive && options.auditAvailable) {
    record({
      type: 'StormStarted',
      reason: 'MaxUnhealthyExceeded',
      message: `${failing} of ${watched} watched targets are failing, more than ${g.maxUnhealthyPercent}%: acting on none`,
    });
    stormActive = true;
  } else if (!stormNow && stormActive && options.auditAvailable) {
    record({
      type: 'StormEnded',
      reason: 'BelowMaxUnhealthy',
      message: `${failing} of ${watched} watched targets are failing; waiting ${g.stormCooldownSeconds}s before acting`,
    });
    stormActive = false;
    stormEndedAtMs = nowMs;
  }
  const coolingDownUntilMs =
    !stormActive && !stormNow && stormEndedAtMs !== undefined
      ? stormEndedAtMs + g.stormCooldownSeconds * 1000
      : undefined;
  const stormCooling = coolingDownUntilMs !== undefined && nowMs < coolingDownUntilMs;

  // Budgets count the intents of the policy's mode that acted (or would have) within their windows.
  const counted = trail.attempts.filter((a) => a.counts && a.mode === mode);
  let budgetUsed = counted.filter((a) => a.atMs >= nowMs - g.budget.windowSeconds * 1000).length;
  const perTarget = (uid: string) =>
    counted.filter((a) => a.targetUid === uid && a.atMs >= nowMs - g.perTargetLimit.windowSeconds * 1000)
      .length;
  const lastAttempt = (uid: string) =>
    Math.max(
      Number.NEGATIVE_INFINITY,
      ...trail.attempts.filter((a) => a.targetUid === uid && a.mode === mode).map((a) => a.atMs),
    );

  const views: TargetView[] = [];
  for (const t of options.targets) {
    const uid = t.target.uid;
    let episode = trail.episodes.get(uid);
    const first = t.verdict.findings[0];
    const view: TargetView = {
      target: t.target,
      state: t.verdict.state,
      step: episode?.step ?? 0,
      escalated: episode?.escalated ?? false,
      ...(first ? { detector: first.detector } : {}),
      ...(t.diagnosis ? { cause: t.diagnosis.cause, message: t.diagnosis.message } : {}),
      ...(episode ? { sinceMs: episode.detectedAtMs } : {}),
    };
    views.push(view);
    const hold = (reason: HoldReason, message: string) => {
      view.hold = reason;
      view.holdMessage = message;
    };

    if (t.verdict.state === 'Unknown') {
      hold('MetricUnknown', t.verdict.unknownReason ?? 'the target’s state is unknown');
      continue;
    }
    if (t.verdict.state === 'Healthy') {
      if (!episode || episode.openIntent || !options.auditAvailable) continue;
      // A restarted pod looks healthy until it fails again: recovery counts once the target stayed healthy
      // for the step's timeout after an action, or for a few checks when nothing was done.
      const acted = episode.stepAppliedAtMs !== undefined || episode.step > 0;
      const confirmMs = acted
        ? (spec.escalation[Math.min(episode.step, spec.escalation.length - 1)]?.timeoutSeconds ?? 0) * 1000
        : settleMs;
      const healthyForMs = nowMs - (t.healthySinceMs ?? nowMs);
      if (healthyForMs >= confirmMs) {
        record({
          type: 'Recovered',
          target: t.target,
          step: episode.step,
          reason: 'Healthy',
          message: `no detector has found it failing for ${Math.round(healthyForMs / 1000)}s`,
        });
      } else {
        view.sinceMs = episode.detectedAtMs;
        hold(
          'ConfirmingRecovery',
          `healthy for ${Math.round(healthyForMs / 1000)}s of the ${confirmMs / 1000}s that confirm recovery`,
        );
      }
      continue;
    }
    // Failing.
    const diagnosis = t.diagnosis;
    if (!options.auditAvailable) {
      hold('AuditUnavailable', 'the audit trail cannot be written: no action is taken without it');
      continue;
    }
    if (!episode) {
      record({
        type: 'Detected',
        target: t.target,
        ...(first ? { detector: first.detector } : {}),
        ...(diagnosis ? { cause: diagnosis.cause } : {}),
        reason: first?.detector ?? 'Failing',
        message: [first?.summary, diagnosis?.message].filter(Boolean).join('; '),
        ...(t.revision ? { details: { revision: t.revision } } : {}),
      });
      episode = { detectedAtMs: nowMs, step: 0, awaitingApproval: false, escalated: false };
      view.sinceMs = nowMs;
    }
    if (episode.openIntent) {
      hold('IntentUnresolved', `intent ${episode.openIntent.seq} has no outcome yet`);
      continue;
    }
    if (episode.escalated) {
      hold('Escalated', 'every step was tried or ruled out: left to a person');
      continue;
    }
    if (spec.paused) {
      hold('Paused', 'the policy is paused: detect and report only');
      continue;
    }
    // Nothing moves the ladder (no step skipped, nothing escalated) while the cause may be wider.
    if (options.cluster.healthy === false) {
      hold(
        'ClusterUnhealthy',
        options.cluster.reason ?? 'the cluster looks unhealthy: nothing disruptive is done',
      );
      continue;
    }
    if (stormActive || stormNow) {
      hold('StormActive', `${failing} of ${watched} watched targets are failing: acting on none`);
      continue;
    }
    if (stormCooling) {
      hold(
        'StormCoolingDown',
        `a storm ended; acting again after ${new Date(coolingDownUntilMs ?? nowMs).toISOString()}`,
      );
      continue;
    }
    // A step has its timeout from when it was first tried; once applied, it waits for recovery.
    let step = episode.step;
    const startedAt = episode.stepStartedAtMs;
    if (startedAt !== undefined) {
      const timeoutMs = (spec.escalation[step]?.timeoutSeconds ?? 0) * 1000;
      if (nowMs - startedAt >= timeoutMs) step += 1;
      else if (episode.stepAppliedAtMs !== undefined) {
        view.step = step;
        hold(
          'WaitingForRecovery',
          `${spec.escalation[step]?.action} applied; waiting up to ${timeoutMs / 1000}s for recovery`,
        );
        continue;
      }
    }
    // Steps the diagnosis rules out are passed over, each recorded with its reason.
    while (step < spec.escalation.length) {
      const s = spec.escalation[step];
      const why = s && diagnosis?.ruledOut[s.action];
      if (!s || !why) break;
      record({
        type: 'Skipped',
        target: t.target,
        step,
        action: s.action,
        reason: diagnosis?.cause ?? 'RuledOut',
        message: why,
      });
      step += 1;
    }
    view.step = step;
    const s = spec.escalation[step];
    if (!s || !diagnosis) {
      record({
        type: 'Escalated',
        target: t.target,
        step,
        ...(diagnosis ? { cause: diagnosis.cause } : {}),
        reason: 'LadderExhausted',
        message: `every step of the ladder was tried or ruled out; ${diagnosis?.message ?? 'still failing'}: left to a person`,
      });
      view.escalated = true;
      hold('Escalated', 'every step was tried or ruled out: left to a person');
      continue;
    }
    if (nowMs - lastAttempt(uid) < g.cooldownSeconds * 1000) {
      hold('CoolingDown', `the last action on it was less than ${g.cooldownSeconds}s ago`);
      continue;
    }
    if (perTarget(uid) >= g.perTargetLimit.actions) {
      hold(
        'TargetLimitReached',
        `${g.perTargetLimit.actions} actions on it within ${g.perTargetLimit.windowSeconds}s already`,
      );
      continue;
    }
    if (budgetUsed >= g.budget.actions) {
      hold(
        'BudgetExhausted',
        `the policy took ${g.budget.actions} actions within ${g.budget.windowSeconds}s already`,
      );
      continue;
    }
    // An approval answers a request: one given before this step asked for it is stale, and is taken away
    // when the request is recorded.
    const requested = episode.awaitingApproval && episode.step === step;
    if (spec.approval.requiredFor.includes(s.action) && !(requested && t.approvals.has(s.action))) {
      if (!requested) {
        record({
          type: 'AwaitingApproval',
          target: t.target,
          step,
          action: s.action,
          cause: diagnosis.cause,
          reason: 'ApprovalRequired',
          message: `${s.action} waits for aurora.health/approve=${s.action} on the target`,
        });
      }
      hold('AwaitingApproval', `${s.action} waits for the annotation aurora.health/approve=${s.action}`);
      continue;
    }
    budgetUsed += 1;
    steps.push({
      action: {
        target: t.target,
        step,
        action: s.action,
        ...(s.scaleOutBy !== undefined ? { scaleOutBy: s.scaleOutBy } : {}),
        diagnosis,
      },
    });
  }
  // Episodes of targets no longer watched (deleted, excluded, paused) end, so the trail closes them.
  if (options.auditAvailable) {
    const watchedUids = new Set(options.targets.map((t) => t.target.uid));
    for (const [uid, episode] of trail.episodes) {
      if (watchedUids.has(uid) || episode.openIntent || !episode.target) continue;
      record({
        type: 'Recovered',
        target: episode.target,
        step: episode.step,
        reason: 'NoLongerWatched',
        message: 'the policy no longer watches it (deleted, excluded or paused)',
      });
    }
  }
  return {
    steps,
    targets: views,
    storm: {
      active: stormActive || stormNow,
      ...(stormCooling && coolingDownUntilMs !== undefined ? { coolingDownUntilMs } : {}),
      failing,
      watched,
    },
    budgetRemaining: Math.max(0, g.budget.actions - budgetUsed),
  };
}
