import { type Clock, systemClock } from './clock.ts';
import { isConflict, type KubeClient } from './kube/client.ts';
import type { KubeObject } from './kube/types.ts';
import {
  decideLease,
  defaultLeaderTiming,
  type LeaderTiming,
  type LeaseRecord,
  leadershipLost,
  type ObservedLease,
  observe,
} from './leader-state.ts';
import { type Logger, silentLogger } from './log.ts';

export interface LeaderElectionOptions {
  client: KubeClient;
  namespace: string;
  name: string;
  identity: string;
  timing?: LeaderTiming;
  clock?: Clock;
  log?: Logger;
  onStartedLeading: () => void;
  /** Called once when leadership is lost; the operator exits, as controller-runtime does. */
  onStoppedLeading: () => void;
  onLeaderChange?: (holder: string) => void;
}

export interface LeaderElector {
  isLeader(): boolean;
  /** Stops campaigning; a leader releases the lease so a standby takes over at once. */
  stop(): Promise<void>;
}

type Lease = KubeObject & { spec?: LeaseRecord };

/**
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics: try every retry
 * period, write with optimistic locking, give up leadership when renewals have failed for the renew
 * deadline.
 */
export function startLeaderElection(options: LeaderElectionOptions): LeaderElector {
  const { client, namespace, name, identity } = options;
  const timing = options.timing ?? defaultLeaderTiming;
  const clock = options.clock ?? systemClock;
  const log = (options.log ?? silentLogger).child({ lease: `${namespace}/${name}`, identity });
  const ref = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace } };
  let observed: ObservedLease | undefined;
  let leading = false;
  let lastRenewMs = 0;
  let lastHolder = '';
  let stopped = false;
  let timer: unknown;
  let running: Promise<void> = Promise.resolve();

  /** When to try again while another holds the lease: its expiry if that comes before the next poll. */
  let nextTryMs = timing.retryPeriodMs;

  const tryAcquireOrRenew = async (): Promise<boolean> => {
    nextTryMs = timing.retryPeriodMs;
    const current = await client.get<Lease>(ref);
    const now = clock.now();
    if (current?.spec) observed = observe(observed, current.spec, now);
    const decision = decideLease(current?.spec, observed, identity, now, timing);
    if (decision.action === 'wait') {
      nextTryMs = Math.min(timing.retryPeriodMs, decision.expiresInMs + 10);
      if (decision.holder !== lastHolder) {
        lastHolder = decision.holder;
        options.onLeaderChange?.(decision.holder);
        log.info({ holder: decision.holder }, 'another instance leads');
      }
      return false;
    }
    const body: Lease = { ...ref, metadata: { ...ref.metadata }, spec: decision.record };
    const written =
      decision.action === 'create'
        ? await client.create<Lease>(body)
        : await client.update<Lease>({
            ...body,
            metadata: { ...body.metadata, resourceVersion: current?.metadata.resourceVersion },
          });
    if (written.spec) observed = observe(observed, written.spec, now);
    if (lastHolder !== identity) {
      lastHolder = identity;
      options.onLeaderChange?.(identity);
    }
    return true;
  };

  const loseLeadership = (why: string) => {
    if (!leading) return;
    leading = false;
    stopped = true;
    if (timer !== undefined) clock.clearTimeout(timer);
    log.error({ sinceRenewMs: clock.now() - lastRenewMs }, `leadership lost: ${why}`);
    options.onStoppedLeading();
  };

  // Fires at the renew deadline unless a renewal re-arms it first, however long a request hangs: a
  // leader must stop before a standby, which counts from the renewTime it read, can take over.
  let watchdog: unknown;
  const armWatchdog = () => {
    if (watchdog !== undefined) clock.clearTimeout(watchdog);
    watchdog = clock.setTimeout(
      () => loseLeadership('no renewal within the renew deadline'),
      Math.max(0, lastRenewMs + timing.renewDeadlineMs - clock.now()),
    );
  };

  const tick = async () => {
    if (stopped) return;
    // The renewTime written is the time of the attempt; the deadline counts from it, not from the reply.
    const attemptAt = clock.now();
    let renewed = false;
    try {
      renewed = await tryAcquireOrRenew();
    } catch (err) {
      if (!isConflict(err)) log.warn({ err: (err as Error).message }, 'lease read or write failed');
    }
    if (stopped) return;
    const now = clock.now();
    if (renewed) {
      lastRenewMs = attemptAt;
      if (!leading) {
        leading = true;
        log.info('became leader');
        options.onStartedLeading();
      }
      armWatchdog();
    } else if (leading && leadershipLost(lastRenewMs, now, timing)) {
      loseLeadership('could not renew the lease in time');
      return;
    } else if (leading) {
      // A failed renewal is tried again four times as often: an API server back within the renew
      // deadline keeps this leader, rather than costing a restart and a takeover.
      nextTryMs = Math.max(100, Math.floor(timing.retryPeriodMs / 4));
    }
    timer = clock.setTimeout(() => {
      running = tick();
    }, nextTryMs);
  };

  running = tick();

  return {
    isLeader: () => leading,
    async stop() {
      stopped = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      if (watchdog !== undefined) clock.clearTimeout(watchdog);
      await running;
      if (!leading) return;
      leading = false;
      try {
        const current = await client.get<Lease>(ref);
        if (current?.spec?.holderIdentity === identity) {
          await client.update<Lease>({
            ...current,
            spec: { ...current.spec, holderIdentity: '', leaseDurationSeconds: 1 },
          });
          log.info('released the lease');
        }
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not release the lease');
      }
    },
  };
}
