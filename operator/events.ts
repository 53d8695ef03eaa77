import { randomBytes } from 'node:crypto';
import { type Clock, systemClock } from './clock.ts';
import type { KubeClient } from './kube/client.ts';
import type { KubeObject } from './kube/types.ts';
import { microTime } from './leader-state.ts';
import { type Logger, silentLogger } from './log.ts';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  /**
   * Records an event about obj. `note` must not carry patient data: it is shown by kubectl describe to
   * anyone who can read Events. Repeats within the dedup window become a series on one Event.
   */
  record(obj: KubeObject, type: EventType, reason: string, action: string, note: string): void;
  /** Waits for writes in flight (tests and shutdown). */
  flush(): Promise<void>;
}

interface SeriesState {
  name: string;
  namespace: string;
  count: number;
  firstSeenMs: number;
  lastPatchedMs: number;
  /** Set while a series update is scheduled. */
  timer?: unknown;
}

const maxTracked = 4096;
const dedupWindowMs = 10 * 60_000;

/**
 * Events through events.k8s.io/v1, deduplicated like client-go's new events library: the first
 * occurrence creates an Event; repeats of the same (object, type, reason, action, note) within the
 * window update its series count instead of creating more objects.
 */
export function createEventRecorder(options: {
  client: KubeClient;
  controller: string;
  instance: string;
  clock?: Clock;
  log?: Logger;
  /** A repeating event updates its series at most this often, so a hot loop cannot flood the API server. */
  seriesPatchIntervalMs?: number;
}): EventRecorder {
  const clock = options.clock ?? systemClock;
  const seriesPatchIntervalMs = options.seriesPatchIntervalMs ?? 30_000;
  const log = options.log ?? silentLogger;
  const seen = new Map<string, SeriesState>();
  const inFlight = new Set<Promise<unknown>>();

  const track = (p: Promise<unknown>) => {
    const q = p
      .catch((err) => log.warn({ err: (err as Error).message }, 'could not write an Event'))
      .finally(() => {
        inFlight.delete(q);
      });
    inFlight.add(q);
  };

  const patchSeries = (state: SeriesState) => {
    state.timer = undefined;
    state.lastPatchedMs = clock.now();
    track(
      options.client.patch(
        {
          apiVersion: 'events.k8s.io/v1',
          kind: 'Event',
          metadata: { name: state.name, namespace: state.namespace },
        },
        { series: { count: state.count, lastObservedTime: microTime(clock.now()) } },
        { type: 'merge' },
      ),
    );
  };

  return {
    record(obj, type, reason, action, note) {
      const namespace = obj.metadata.namespace ?? 'default';
      const key = [obj.metadata.uid ?? obj.metadata.name, type, reason, action, note].join('\u0000');
      const now = clock.now();
      const state = seen.get(key);
      if (state && now - state.firstSeenMs < dedupWindowMs) {
        state.count++;
        // Repeats coalesce into one series update per interval; the count is read when it is sent.
        state.timer ??= clock.setTimeout(
          () => patchSeries(state),
          Math.max(0, state.lastPatchedMs + seriesPatchIntervalMs - now),
        );
        return;
      }
      if (seen.size >= maxTracked) {
        const oldest = seen.keys().next().value;
        if (oldest !== undefined) seen.delete(oldest);
      }
      // The random suffix survives the 253-character limit whatever the object's name is.
      const base = obj.metadata.name.slice(0, 253 - 17).replace(/[-.]+$/, '');
      const name = `${base}.${randomBytes(8).toString('hex')}`;
      seen.delete(key);
      if (state?.timer !== undefined) clock.clearTimeout(state.timer);
      seen.set(key, { name, namespace, count: 1, firstSeenMs: now, lastPatchedMs: now });
      track(
        options.client.create({
          apiVersion: 'events.k8s.io/v1',
          kind: 'Event',
          metadata: { name, namespace },
          eventTime: microTime(now),
          reportingController: options.controller,
          reportingInstance: options.instance,
          action,
          reason,
          note: note.slice(0, 1024),
          type,
          regarding: {
            apiVersion: obj.apiVersion,
            kind: obj.kind,
            name: obj.metadata.name,
            namespace: obj.metadata.namespace,
            uid: obj.metadata.uid,
            resourceVersion: obj.metadata.resourceVersion,
          },
        }),
      );
    },
    async flush() {
      await Promise.all([...inFlight]);
    },
  };
}
