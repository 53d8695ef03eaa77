/** metav1.Condition as every Aurora kind reports it. */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  /** CamelCase, machine-readable. */
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/** Longest condition message kept; longer ones (a server's error, many pods' problems) are cut with '…'. */
export const maxConditionMessageLength = 1024;

const capped = (message: string) =>
  message.length <= maxConditionMessageLength
    ? message
    : `${message.slice(0, maxConditionMessageLength - 1)}…`;

/**
 * Returns conditions with `next` set: lastTransitionTime moves only when the status flips,
 * observedGeneration is always the generation the decision was made from, and the message is capped at
 * maxConditionMessageLength. The input is not changed.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  next: ConditionInput,
  observedGeneration: number | undefined,
  now: Date,
): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === next.type);
  const previous = index >= 0 ? list[index] : undefined;
  const lastTransitionTime =
    previous && previous.status === next.status ? previous.lastTransitionTime : rfc3339Seconds(now);
  const merged: Condition = { ...next, message: capped(next.message), lastTransitionTime };
  if (observedGeneration !== undefined) merged.observedGeneration = observedGeneration;
  if (index >= 0) list[index] = merged;
  else list.push(merged);
  return list;
}

/** Sets several conditions at once, in order. */
export function setConditions(
  conditions: readonly Condition[] | undefined,
  next: readonly ConditionInput[],
  observedGeneration: number | undefined,
  now: Date,
): Condition[] {
  return next.reduce<Condition[]>(
    (acc, c) => setCondition(acc, c, observedGeneration, now),
    [...(conditions ?? [])],
  );
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === 'True';
}

/** Kubernetes serialises metav1.Time at second precision; matching it keeps status writes idempotent. */
export function rfc3339Seconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}
