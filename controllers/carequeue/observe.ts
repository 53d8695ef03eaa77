import { type CategoryStream, entryTimeMs } from '../../queue/contract.ts';
import type { StreamCursor, StreamState } from '../../queue/observe.ts';
import type { CategoryObservation, QueueObservation } from './decide.ts';

/** A category's cumulative counters when seen, for rates over a window. */
interface Sample {
  atMs: number;
  added: number;
  served: number;
  waiting: number;
}

/** What Aurora remembers of a queue between looks (in memory; lost with leadership, on purpose). */
export interface QueueMemory {
  cursors: StreamCursor[];
  /** Cumulative counters where Redis keeps none (before 7): added and delivered as counted. */
  counted: { added: number; delivered: number }[];
  samples: Sample[][];
  /**
   * The whole queue at each look in the rate window: served so far, and entries left undelivered long
   * enough that no consumer was free (0 when none were).
   */
  busy?: { atMs: number; served: number; undelivered: number; consumers: number }[];
  servedPerConsumerPerSecond?: number;
}

export const emptyMemory = (): QueueMemory => ({ cursors: [], counted: [], samples: [] });

/** Rates are taken over about this long. */
export const rateWindowMs = 60_000;
/**
 * Rates seen over less than this are spread over this: a queue watched for a second that received a
 * burst has not shown a steady flow, and the burst itself is already counted as backlog.
 */
export const minimumRateSpanMs = 15_000;

/** An entry left undelivered this long means no consumer was free to read it. */
export const saturatedAfterMs = 1_000;
/** A consumer's speed is measured over at least this long a backlog (one batch says little). */
export const minimumServiceSpanMs = 2_000;

export type ObservationFault = 'GroupMissing' | 'NotAStream';

export interface CategoryView extends CategoryObservation {
  /** Acknowledged a second, over the rate window. */
  servedPerSecond: number;
  /** When the first entry since the last look arrived (server clock), if any arrived. */
  firstArrivalMs?: number;
}

export interface QueueView {
  /** Undefined when the queue cannot be judged (a stream of the wrong type, a group gone). */
  observation?: QueueObservation;
  fault?: { reason: ObservationFault; category: string };
  categories: CategoryView[];
  /** Entries each consumer holds unacknowledged, over every category. */
  inFlight: Map<string, number>;
  /** Consumers serving: read lately or holding entries, in any category. */
  activeConsumers: number;
  /** Redis's clock when seen, to turn entry IDs into ages on the same clock. */
  serverTimeMs: number;
  /** Entries sit in a stream that has no group yet: a consumer must start to create it. */
  waitingWithoutGroup: boolean;
  memory: QueueMemory;
}

/**
 * Turns the streams' state into what the decision needs: per category the depth, in flight, the age of
 * the oldest entry not yet acknowledged, arrival and service rates over the last minute, and the rate
 * one consumer serves, measured only while there was a backlog (an idle consumer says nothing of its
 * speed). Pure: the memory in is not changed, the memory out replaces it.
 */
export function viewQueue(
  streams: readonly CategoryStream[],
  states: readonly StreamState[],
  before: QueueMemory,
  consumers: number,
): QueueView {
  const serverTimeMs = Math.max(0, ...states.map((s) => s.serverTimeMs));
  const memory: QueueMemory = { cursors: [], counted: [], samples: [] };
  if (before.servedPerConsumerPerSecond !== undefined)
    memory.servedPerConsumerPerSecond = before.servedPerConsumerPerSecond;
  const inFlight = new Map<string, number>();
  const active = new Set<string>();
  let undeliveredForMs = 0;
  const categories: CategoryView[] = [];
  let fault: QueueView['fault'];
  let waitingWithoutGroup = false;

  streams.forEach((stream, i) => {
    const state = states[i];
    const counted = { ...(before.counted[i] ?? { added: 0, delivered: 0 }) };
    const view: CategoryView = {
      name: stream.category,
      depth: 0,
      pending: 0,
      oldestWaitSeconds: 0,
      arrivalsPerSecond: 0,
      servedPerSecond: 0,
    };
    let sample: Sample | undefined;
    if (state?.exists && state.notAStream) {
      fault ??= { reason: 'NotAStream', category: stream.category };
    } else if (state?.exists) {
      const cursor: StreamCursor = { lastGeneratedId: state.lastGeneratedId };
      if (state.addedSince !== undefined) counted.added += state.addedSince;
      const added = state.entriesAdded ?? counted.added;
      if (state.firstAddedSinceId) view.firstArrivalMs = entryTimeMs(state.firstAddedSinceId);
      const group = state.group;
      if (!group) {
        // No consumer has created the group yet. An empty stream is an empty category; entries
        // without a group cannot be judged (were they served before the group went?).
        view.depth = state.length;
        if (state.length > 0) {
          fault ??= { reason: 'GroupMissing', category: stream.category };
          waitingWithoutGroup = true;
        }
      } else {
        cursor.lastDeliveredId = group.lastDeliveredId;
        if (group.deliveredSince !== undefined) counted.delivered += group.deliveredSince;
        const delivered = group.entriesRead ?? counted.delivered;
        view.depth = group.depth;
        view.pending = group.pending;
        if (group.firstUndeliveredId)
          undeliveredForMs = Math.max(
            undeliveredForMs,
            state.serverTimeMs - entryTimeMs(group.firstUndeliveredId),
          );
        const oldestIds = [group.firstUndeliveredId, group.oldestPendingId].filter(
          (id): id is string => id !== undefined,
        );
        const oldestMs = Math.min(...oldestIds.map(entryTimeMs));
        if (oldestIds.length > 0)
          view.oldestWaitSeconds = Math.max(0, (state.serverTimeMs - oldestMs) / 1000);
        for (const [name, count] of group.inFlight) {
          inFlight.set(name, (inFlight.get(name) ?? 0) + count);
          active.add(name);
        }
        for (const name of group.activeConsumers) active.add(name);
        sample = {
          atMs: state.serverTimeMs,
          added,
          served: Math.max(0, delivered - group.pending),
          waiting: group.depth + group.pending,
        };
      }
      memory.cursors[i] = cursor;
      if (!sample) sample = { atMs: state.serverTimeMs, added, served: 0, waiting: view.depth };
    }
    memory.counted[i] = counted;
    const history = [...(before.samples[i] ?? []), ...(sample ? [sample] : [])].filter(
      (s) => serverTimeMs - s.atMs <= 2 * rateWindowMs,
    );
    memory.samples[i] = history;
    const oldest = history.find((s) => serverTimeMs - s.atMs <= rateWindowMs);
    const newest = history.at(-1);
    if (oldest && newest && newest.atMs > oldest.atMs) {
      const seconds = Math.max(newest.atMs - oldest.atMs, minimumRateSpanMs) / 1000;
      view.arrivalsPerSecond = Math.max(0, (newest.added - oldest.added) / seconds);
      view.servedPerSecond = Math.max(0, (newest.served - oldest.served) / seconds);
    }
    categories.push(view);
  });

  // One consumer's speed, from the latest run of looks at which entries had waited undelivered for a
  // while: consumers that had something to read each time were serving as fast as they can. (A look
  // woken by an arrival sees it undelivered for a moment even when every consumer is idle.) Consumers are
  // those that read lately or hold entries (a pod still starting serves nothing), at most the replicas.
  const serving =
    active.size === 0 ? consumers : consumers > 0 ? Math.min(active.size, consumers) : active.size;
  const undelivered =
    undeliveredForMs >= saturatedAfterMs ? categories.reduce((sum, c) => sum + c.depth, 0) : 0;
  const served = memory.samples.reduce((sum, h) => sum + (h.at(-1)?.served ?? 0), 0);
  memory.busy = [
    ...(before.busy ?? []),
    { atMs: serverTimeMs, served, undelivered, consumers: serving },
  ].filter((s) => serverTimeMs - s.atMs <= rateWindowMs);
  const idleAt = memory.busy.findLastIndex((s) => s.undelivered === 0);
  const run = memory.busy.slice(idleAt + 1);
  const first = run[0];
  const last = run.at(-1);
  // Consumer-seconds over the run, each interval counted at the mean of its two ends: consumers that
  // started during it served part of it.
  let consumerSeconds = 0;
  for (let k = 1; k < run.length; k++) {
    const a = run[k - 1];
    const b = run[k];
    if (a && b) consumerSeconds += ((b.atMs - a.atMs) / 1000) * ((a.consumers + b.consumers) / 2);
  }
  if (
    !fault &&
    consumerSeconds > 0 &&
    first &&
    last &&
    last.atMs - first.atMs >= minimumServiceSpanMs &&
    last.served > first.served
  ) {
    const measured = (last.served - first.served) / consumerSeconds;
    memory.servedPerConsumerPerSecond =
      before.servedPerConsumerPerSecond === undefined
        ? measured
        : 0.5 * before.servedPerConsumerPerSecond + 0.5 * measured;
  }

  const observation: QueueObservation | undefined = fault
    ? undefined
    : {
        categories: categories.map(({ name, depth, pending, oldestWaitSeconds, arrivalsPerSecond }) => ({
          name,
          depth,
          pending,
          oldestWaitSeconds,
          arrivalsPerSecond,
        })),
        ...(memory.servedPerConsumerPerSecond !== undefined
          ? { servedPerConsumerPerSecond: memory.servedPerConsumerPerSecond }
          : {}),
      };
  return {
    ...(observation ? { observation } : {}),
    ...(fault ? { fault } : {}),
    categories,
    inFlight,
    activeConsumers: serving,
    serverTimeMs,
    waitingWithoutGroup,
    memory,
  };
}
