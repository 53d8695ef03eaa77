import { isDeepStrictEqual } from 'node:util';
import type { CareQueueSpec, CareQueueStatus } from '../../crds/carequeue.ts';
import type { ConditionEventPolicy } from '../../operator/condition-events.ts';
import { type ConditionInput, setConditions } from '../../operator/conditions.ts';
import { type Decision, isBreaching } from './decide.ts';
import type { Forecast } from './forecast.ts';
import type { QueueView } from './observe.ts';

/** Why the queue cannot be seen or acted on; a reason and a message with no URL and no entry. */
export interface QueueFault {
  reason: string;
  message: string;
  /** Ready goes False: nothing Aurora can do for the queue until it is mended (a missing target). */
  blocksReady?: boolean;
}

export interface StatusInput {
  spec: CareQueueSpec;
  generation?: number;
  previous?: CareQueueStatus;
  now: Date;
  view?: QueueView;
  decision?: Decision;
  /** The target's replicas now (after any change made in this look). */
  currentReplicas?: number;
  faults: readonly QueueFault[];
  forecast?: Forecast & { bucketCount: number };
  lastScale?: CareQueueStatus['lastDecision'];
  wake?: 'notifications' | 'poll';
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/** The worst breaches first, in seconds past each category's maximum wait. */
export function breachMessage(spec: CareQueueSpec, view: QueueView): string | undefined {
  const breaches = view.categories
    .map((c, i) => ({ c, max: spec.categories[i]?.maxWaitSeconds ?? 0 }))
    .filter(({ c, max }) => isBreaching(max, c.depth + c.pending > 0, c.oldestWaitSeconds))
    .sort((a, b) => b.c.oldestWaitSeconds - b.max - (a.c.oldestWaitSeconds - a.max));
  if (breaches.length === 0) return undefined;
  return breaches
    .map(
      ({ c, max }) =>
        `${c.name}: oldest entry waited ${Math.round(c.oldestWaitSeconds)} s (maximum ${max} s), ${Math.round(c.oldestWaitSeconds - max)} s over`,
    )
    .join('; ');
}

/** The CareQueue's status from one look: the queue per category, the decision, and the conditions. */
export function careQueueStatus(input: StatusInput): CareQueueStatus {
  const { spec, view, decision, faults } = input;
  const previous = input.previous ?? {};
  const blocking = faults.find((f) => f.blocksReady);
  const visible = view?.observation !== undefined;
  const conditions: ConditionInput[] = [];
  if (blocking) {
    conditions.push({ type: 'Ready', status: 'False', reason: blocking.reason, message: blocking.message });
  } else if (faults[0]) {
    conditions.push({
      type: 'Ready',
      status: 'False',
      reason: faults[0].reason,
      message: `${faults[0].message}; consumers are not removed until it is mended`,
    });
  } else {
    conditions.push({
      type: 'Ready',
      status: 'True',
      reason: spec.paused ? 'Paused' : 'Scaling',
      message: spec.paused
        ? `paused: ${spec.scaleTargetRef.kind} ${spec.scaleTargetRef.name} keeps its replicas`
        : `scaling ${spec.scaleTargetRef.kind} ${spec.scaleTargetRef.name} between ${spec.minReplicas} and ${spec.maxReplicas} replicas`,
    });
  }
  const breach = view && visible ? breachMessage(spec, view) : undefined;
  conditions.push(
    !view || !visible
      ? {
          type: 'SLOMet',
          status: 'Unknown',
          reason: 'QueueUnknown',
          message: 'the queue cannot be judged, so neither can its waits',
        }
      : breach
        ? { type: 'SLOMet', status: 'False', reason: 'WaitBreached', message: breach }
        : {
            type: 'SLOMet',
            status: 'True',
            reason: 'WithinWaits',
            message: 'every category is within its maximum wait',
          },
  );
  const degraded = faults.find((f) => !f.blocksReady) ?? blocking;
  conditions.push(
    degraded
      ? { type: 'Degraded', status: 'True', reason: degraded.reason, message: degraded.message }
      : { type: 'Degraded', status: 'False', reason: 'AsExpected', message: 'the queue is seen and scaled' },
  );

  const status: CareQueueStatus = {
    ...previous,
    observedGeneration: input.generation,
    conditions: setConditions(previous.conditions, conditions, input.generation, input.now),
  };
  if (view) {
    status.categories = view.categories.map((c, i) => {
      const max = spec.categories[i]?.maxWaitSeconds ?? 0;
      const breaching = isBreaching(max, c.depth + c.pending > 0, c.oldestWaitSeconds);
      const term = decision?.terms[i];
      return {
        name: c.name,
        depth: c.depth,
        inFlight: c.pending,
        oldestWaitSeconds: Math.round(c.oldestWaitSeconds),
        maxWaitSeconds: max,
        breaching,
        ...(breaching ? { overBySeconds: Math.round(c.oldestWaitSeconds - max) } : {}),
        arrivalsPerMinute: round(c.arrivalsPerSecond * 60),
        servedPerMinute: round(c.servedPerSecond * 60),
        ...(term ? { replicasNeeded: term.replicas } : {}),
      };
    });
    status.waitingEntries = view.categories.reduce((sum, c) => sum + c.depth + c.pending, 0);
    status.consumers = [...view.inFlight]
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, 100)
      .map(([name, inFlight]) => ({ name, inFlight }));
  }
  if (decision?.servedRateMeasured && decision.servedPerConsumerPerSecond !== undefined)
    status.servedPerConsumerPerMinute = round(decision.servedPerConsumerPerSecond * 60);
  if (decision) status.desiredReplicas = decision.desiredReplicas;
  if (input.currentReplicas !== undefined) status.currentReplicas = input.currentReplicas;
  if (input.lastScale) {
    status.lastDecision = input.lastScale;
    status.lastScaleTime = input.lastScale.time;
  }
  if (input.forecast) {
    status.forecast = {
      historyBuckets: input.forecast.bucketCount,
      historyWeeks: round(input.forecast.historyWeeks, 1),
      ...(input.forecast.arrivalsPerSecond !== undefined
        ? { arrivalsPerMinute: round(input.forecast.arrivalsPerSecond * 60) }
        : {}),
      ...(input.forecast.replicas !== undefined ? { replicas: input.forecast.replicas } : {}),
      contributing:
        decision !== undefined &&
        input.forecast.replicas !== undefined &&
        input.forecast.replicas > 0 &&
        input.forecast.replicas === decision.recommendation &&
        decision.terms.every((t) => t.replicas < decision.recommendation),
    };
  } else {
    delete status.forecast;
  }
  if (input.wake) status.wake = input.wake;
  return status;
}

/** Fields that change with every look: written at most every refreshMs unless something else changed. */
const volatileFields = [
  'categories',
  'waitingEntries',
  'consumers',
  'servedPerConsumerPerMinute',
  'forecast',
] as const;
export const statusRefreshMs = 10_000;
/**
 * All queues together refresh their running figures at most this often a second: each refresh is a
 * write to the API server, whose request budget every controller shares (500 queues refreshing every
 * 10 s would be 50 writes a second, the operator's whole budget). Metrics carry the live figures.
 */
export const maxFigureRefreshesPerSecond = 10;

/** How old a queue's running figures in status may grow, when `queues` queues share the budget. */
export function figureRefreshMs(queues: number): number {
  return Math.max(statusRefreshMs, Math.ceil((queues / maxFigureRefreshesPerSecond) * 1000));
}

/**
 * What to write: the new status when anything but the running figures changed (a condition, the
 * replicas, a decision), or when the figures are older than refreshMs; else the status as it is, so a
 * busy queue does not write its status at every look.
 */
export function statusToWrite(
  written: CareQueueStatus | undefined,
  next: CareQueueStatus,
  lastWriteMs: number | undefined,
  nowMs: number,
  refreshMs: number = statusRefreshMs,
): CareQueueStatus {
  if (!written || lastWriteMs === undefined || nowMs - lastWriteMs >= refreshMs) return next;
  // Compared as values, not as text: what the API server returns has its keys in another order than
  // what was built here, and absent fields are dropped the way a write drops them.
  const steady = (s: CareQueueStatus) => {
    const copy: Record<string, unknown> = { ...s };
    for (const f of volatileFields) delete copy[f];
    copy.conditions = s.conditions?.map((c) => ({ ...c, message: c.type === 'SLOMet' ? '' : c.message }));
    return JSON.parse(JSON.stringify(copy)) as unknown;
  };
  return isDeepStrictEqual(steady(written), steady(next)) ? written : next;
}

export const careQueueEvents: ConditionEventPolicy = [
  { type: 'Ready', healthyStatus: 'True', announce: 'faultsAndRecoveries' },
  { type: 'SLOMet', healthyStatus: 'True', announce: 'faultsAndRecoveries' },
  { type: 'Degraded', healthyStatus: 'False', announce: 'faultsAndRecoveries' },
];
