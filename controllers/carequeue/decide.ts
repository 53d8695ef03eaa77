import type { CareQueueSpec } from '../../crds/carequeue.ts';

/** One category's queue as observed: counts and ages only, never an entry's fields. */
export interface CategoryObservation {
  name: string;
  /** Entries not yet delivered to the consumer group. */
  depth: number;
  /** Entries delivered to a consumer and not yet acknowledged. */
  pending: number;
  /** How long the oldest entry not yet acknowledged (undelivered or pending) has waited; 0 when none. */
  oldestWaitSeconds: number;
  arrivalsPerSecond: number;
}

/** The queue as last seen, or undefined when Redis could not be read. */
export interface QueueObservation {
  /** In the spec's order: highest acuity first. */
  categories: CategoryObservation[];
  /** Entries one consumer serves a second, measured; undefined until there is enough to measure. */
  servedPerConsumerPerSecond?: number;
}

/** A recommendation as made, kept for the stabilisation windows. */
export interface Recommendation {
  atMs: number;
  replicas: number;
}

/** A change of replicas as made, kept for the per-minute limits. */
export interface ScaleChange {
  atMs: number;
  from: number;
  to: number;
}

export interface DecisionInput {
  spec: CareQueueSpec;
  /** undefined: the queue could not be seen (Redis down, refused, the group missing). */
  observed: QueueObservation | undefined;
  /** Whether any category was past its maximum wait when last seen. */
  breachingWhenLastSeen: boolean;
  currentReplicas: number;
  /** Recommendations made before this one, newest last. */
  history: readonly Recommendation[];
  /** Changes of replicas made before, newest last. */
  changes: readonly ScaleChange[];
  /** Replicas the arrival forecast asks for ahead of a known peak; undefined without one. */
  forecastReplicas?: number;
  /** Blind, but entries are known to wait (a stream with entries and no group yet): wake a target at 0. */
  knownWaiting?: boolean;
  /** The target's own bounds (an InferencePool's minReplicas and maxReplicas), which its API enforces. */
  targetBounds?: { min: number; max: number };
  nowMs: number;
}

/** What one category needs, and the terms it was worked out from (for status, Events and the audit). */
export interface CategoryTerm {
  category: string;
  /** Entries waiting in this category and every higher one: consumers serve higher acuity first. */
  backlogAhead: number;
  /** Arrivals a second in this category and every higher one. */
  arrivalsAheadPerSecond: number;
  /** Seconds left for the oldest entry of this category before its maximum wait. */
  budgetSeconds: number;
  breaching: boolean;
  replicas: number;
}

export type DecisionLimit =
  | 'none'
  | 'paused'
  | 'queue-unknown'
  | 'min'
  | 'max'
  | 'surge'
  | 'reserved'
  | 'stabilization'
  | 'rate'
  | 'target-min'
  | 'target-max'
  | 'breach';

export interface Decision {
  /** Replicas to set now. */
  desiredReplicas: number;
  /** What the queue alone asks for, before windows, limits and floors. */
  recommendation: number;
  terms: CategoryTerm[];
  /** Replicas the counts alone ask for (targetEntriesPerReplica), and the steady arrival rate. */
  countReplicas: number;
  /** The service rate the terms used: measured, or the spec's assumption until it is. */
  servedPerConsumerPerSecond?: number;
  servedRateMeasured: boolean;
  steadyReplicas: number;
  forecastReplicas?: number;
  limitedBy: DecisionLimit;
  /** One line for people: what decided the number (counts and ages, no patient data). */
  summary: string;
}

/**
 * A patient of a category whose maximum wait is 0 is taken "at once" when a consumer reads them within
 * this: being read and classified takes a moment, and a breach that flickers with every arrival would
 * hold scale-in and ring Events for nothing.
 */
export const atOnceSeconds = 2;

/** Whether a category whose oldest entry has waited oldestWaitSeconds is past its maximum wait. */
export function isBreaching(maxWaitSeconds: number, waiting: boolean, oldestWaitSeconds: number): boolean {
  return waiting && oldestWaitSeconds > (maxWaitSeconds === 0 ? atOnceSeconds : maxWaitSeconds);
}

/** The shortest time a decision plans for: an entry whose wait is due now is served within this. */
export const minimumBudgetSeconds = 5;
/** Consumers are planned at most this busy, so arrivals that come in bursts do not build a backlog. */
export const plannedUtilisation = 0.8;

/**
 * How many consumers each category needs so that its oldest entry is served within its maximum wait.
 * Consumers take higher acuity first, so a category waits behind everything above it: its demand is
 * the backlog of itself and every higher category, plus what arrives in them meanwhile, served within
 * the time its oldest entry has left.
 */
export function categoryTerms(
  spec: CareQueueSpec,
  observed: QueueObservation,
  servedPerConsumerPerSecond: number,
): CategoryTerm[] {
  let backlogAhead = 0;
  let arrivalsAhead = 0;
  return spec.categories.map((category, i) => {
    const seen = observed.categories[i];
    backlogAhead += (seen?.depth ?? 0) + (seen?.pending ?? 0);
    arrivalsAhead += seen?.arrivalsPerSecond ?? 0;
    const waiting = (seen?.depth ?? 0) + (seen?.pending ?? 0) > 0;
    const left = waiting ? category.maxWaitSeconds - (seen?.oldestWaitSeconds ?? 0) : category.maxWaitSeconds;
    const breaching = isBreaching(category.maxWaitSeconds, waiting, seen?.oldestWaitSeconds ?? 0);
    const budgetSeconds = Math.max(minimumBudgetSeconds, left);
    const work = backlogAhead + arrivalsAhead * budgetSeconds;
    const replicas = work === 0 ? 0 : Math.ceil(work / (servedPerConsumerPerSecond * budgetSeconds));
    return {
      category: category.name,
      backlogAhead,
      arrivalsAheadPerSecond: arrivalsAhead,
      budgetSeconds,
      breaching,
      replicas,
    };
  });
}

/**
 * The replicas a CareQueue's consumers should have now: pure, with time and history passed in. The
 * queue's need (every category within its maximum wait, the steady arrival rate, the count target,
 * the forecast) is the recommendation; then autoscaling/v2's stabilisation (scale up to the lowest
 * recommendation of the up window, down to the highest of the down window) and per-minute limits;
 * then the floors (minReplicas, reserved, a surge until its time) and maxReplicas. When the queue
 * cannot be seen, consumers are never removed, and added while a category was breaching.
 */
export function decideReplicas(input: DecisionInput): Decision {
  const { spec, observed, currentReplicas, nowMs } = input;
  const reserved = spec.categories.reduce((sum, c) => sum + c.reservedReplicas, 0);
  const surgeFloor = spec.surge && Date.parse(spec.surge.until) > nowMs ? spec.surge.minReplicas : 0;
  // A category that may not wait at all always has a consumer ready (the CRD also refuses minReplicas 0).
  const immediateFloor = spec.categories.some((c) => c.maxWaitSeconds === 0) ? 1 : 0;
  const floor = Math.max(spec.minReplicas, reserved, surgeFloor, immediateFloor);
  const base = {
    terms: [] as CategoryTerm[],
    countReplicas: 0,
    steadyReplicas: 0,
    servedRateMeasured: false,
    ...(input.forecastReplicas !== undefined ? { forecastReplicas: input.forecastReplicas } : {}),
  };

  if (spec.paused) {
    return {
      ...base,
      desiredReplicas: currentReplicas,
      recommendation: currentReplicas,
      limitedBy: 'paused',
      summary: `paused: replicas stay at ${currentReplicas}`,
    };
  }

  const withinTarget = (replicas: number): [number, DecisionLimit | undefined] => {
    const bounds = input.targetBounds;
    if (bounds && replicas > bounds.max) return [bounds.max, 'target-max'];
    if (bounds && replicas < bounds.min) return [bounds.min, 'target-min'];
    return [replicas, undefined];
  };

  if (!observed) {
    // Blind: never fewer; one more if a category was past its wait when last seen, and one at least
    // when entries are known to wait.
    // One more a minute at most while blind: an outage that lasts does not run the target up to max.
    const addedLately = input.changes.some((c) => nowMs - c.atMs < 60_000 && c.to > c.from);
    let wanted = input.breachingWhenLastSeen && !addedLately ? currentReplicas + 1 : currentReplicas;
    if (input.knownWaiting) wanted = Math.max(wanted, 1);
    const [desired] = withinTarget(Math.min(spec.maxReplicas, Math.max(wanted, floor, currentReplicas)));
    return {
      ...base,
      desiredReplicas: Math.max(
        desired,
        Math.min(currentReplicas, input.targetBounds?.max ?? currentReplicas),
      ),
      recommendation: wanted,
      limitedBy: 'queue-unknown',
      summary:
        desired > currentReplicas
          ? `the queue cannot be judged and ${input.breachingWhenLastSeen ? 'a category was past its wait when last seen' : 'entries wait for a consumer'}: ${currentReplicas} → ${desired}`
          : `the queue cannot be judged: replicas stay at ${currentReplicas}, never fewer`,
    };
  }

  const measured = observed.servedPerConsumerPerSecond;
  const mu = measured !== undefined && measured > 0 ? measured : spec.assumedServedPerConsumerPerSecond;
  const terms = categoryTerms(spec, observed, mu);
  const totalDepth = observed.categories.reduce((sum, c) => sum + c.depth + c.pending, 0);
  const totalArrivals = observed.categories.reduce((sum, c) => sum + c.arrivalsPerSecond, 0);
  const countReplicas = spec.targetEntriesPerReplica
    ? Math.ceil(totalDepth / spec.targetEntriesPerReplica)
    : 0;
  const steadyReplicas = Math.ceil(totalArrivals / (mu * plannedUtilisation));
  const recommendation = Math.max(
    ...terms.map((t) => t.replicas),
    countReplicas,
    steadyReplicas,
    input.forecastReplicas ?? 0,
    totalDepth > 0 || totalArrivals > 0 ? 1 : 0,
  );

  // autoscaling/v2's stabilisation: scale up to the lowest recommendation in the up window, down to
  // the highest in the down window.
  const upWindowMs = spec.behavior.scaleUp.stabilizationWindowSeconds * 1000;
  const downWindowMs = spec.behavior.scaleDown.stabilizationWindowSeconds * 1000;
  let upRecommendation = recommendation;
  let downRecommendation = recommendation;
  for (const r of input.history) {
    // Strictly inside: a window of 0 holds nothing but the recommendation made now.
    if (nowMs - r.atMs < upWindowMs) upRecommendation = Math.min(upRecommendation, r.replicas);
    if (nowMs - r.atMs < downWindowMs) downRecommendation = Math.max(downRecommendation, r.replicas);
  }
  let desired = currentReplicas;
  let limitedBy: DecisionLimit = 'none';
  if (currentReplicas < upRecommendation) desired = upRecommendation;
  else if (currentReplicas > downRecommendation) desired = downRecommendation;
  if (desired !== recommendation) limitedBy = 'stabilization';

  // Per-minute limits, counting the changes already made in the last minute.
  const moved = (up: boolean) =>
    input.changes
      .filter((c) => nowMs - c.atMs < 60_000 && (up ? c.to > c.from : c.to < c.from))
      .reduce((sum, c) => sum + Math.abs(c.to - c.from), 0);
  const upLimit = spec.behavior.scaleUp.maxChangePerMinute;
  const downLimit = spec.behavior.scaleDown.maxChangePerMinute;
  if (desired > currentReplicas && upLimit !== undefined) {
    const allowed = currentReplicas + Math.max(0, upLimit - moved(true));
    if (desired > allowed) {
      desired = allowed;
      limitedBy = 'rate';
    }
  }
  if (desired < currentReplicas && downLimit !== undefined) {
    const allowed = currentReplicas - Math.max(0, downLimit - moved(false));
    if (desired < allowed) {
      desired = allowed;
      limitedBy = 'rate';
    }
  }

  // A category past its maximum wait never loses a consumer, whatever the arithmetic says.
  if (desired < currentReplicas && terms.some((t) => t.breaching)) {
    desired = currentReplicas;
    limitedBy = 'breach';
  }

  if (desired < floor) {
    desired = floor;
    limitedBy =
      floor === surgeFloor && surgeFloor > spec.minReplicas
        ? 'surge'
        : floor === reserved && reserved > spec.minReplicas
          ? 'reserved'
          : 'min';
  }
  if (desired > spec.maxReplicas) {
    desired = spec.maxReplicas;
    limitedBy = 'max';
  }
  const [bounded, targetLimit] = withinTarget(desired);
  if (targetLimit) {
    desired = bounded;
    limitedBy = targetLimit;
  }

  const worst = terms.reduce<CategoryTerm | undefined>(
    (a, t) => (!a || t.replicas > a.replicas ? t : a),
    undefined,
  );
  const why =
    worst && worst.replicas === recommendation && recommendation > 0
      ? `${worst.category} needs ${worst.replicas} (${worst.backlogAhead} waiting at or above it, ${worst.arrivalsAheadPerSecond.toFixed(2)}/s arriving, ${Math.round(worst.budgetSeconds)} s left)`
      : `the queue asks for ${recommendation}`;
  return {
    ...base,
    terms,
    countReplicas,
    steadyReplicas,
    servedPerConsumerPerSecond: mu,
    servedRateMeasured: measured !== undefined && measured > 0,
    desiredReplicas: desired,
    recommendation,
    limitedBy,
    summary: `${why}; ${currentReplicas} → ${desired}${limitedBy === 'none' ? '' : ` (held by ${limitedBy})`}`,
  };
}
