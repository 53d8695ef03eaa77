/** The part of a coordination.k8s.io/v1 Lease spec that leader election reads and writes. */
export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface LeaderTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/**
 * A 12 s lease, 8 s renew deadline and 2 s retry (controller-runtime's are 15, 10 and 2): a standby takes
 * over within about 12 s of a crash. The leader stops 4 s before its lease runs out; a standby that
 * distrusts the holder's clock (trustedRenewMs) may count from up to 3 s earlier, which still leaves 1 s.
 */
export const defaultLeaderTiming: LeaderTiming = {
  leaseDurationMs: 12_000,
  renewDeadlineMs: 8_000,
  retryPeriodMs: 2_000,
};

/**
 * What this candidate has seen of the lease, and when: the local observation time bounds how far the
 * holder's own renewTime is trusted (see trustedRenewMs).
 */
export interface ObservedLease {
  record: LeaseRecord;
  /** A fingerprint of the record as last seen, to notice renewals. */
  fingerprint: string;
  observedAtMs: number;
}

export type LeaseDecision =
  | { action: 'create'; record: LeaseRecord }
  | { action: 'update'; record: LeaseRecord; takeover: boolean }
  /** expiresInMs: when the holder's lease runs out unless it renews, so a standby can try right then. */
  | { action: 'wait'; holder: string; expiresInMs: number };

/** How much later than a renewal a standby polling every retry period may see it (request latency included). */
const observationSlackMs = 1_000;

/**
 * When the holder last renewed, as far as this candidate can trust it: the holder's renewTime, clamped to
 * the window in which a standby polling every retry period must have seen that renewal. A holder clock
 * that is off by any amount moves a takeover by at most retryPeriod + slack, which the margin between
 * lease duration and renew deadline absorbs; a correct clock lets the standby take over the moment the
 * lease runs out instead of a poll later.
 */
export function trustedRenewMs(record: LeaseRecord, observedAtMs: number, timing: LeaderTiming): number {
  const claimed = record.renewTime ? Date.parse(record.renewTime) : Number.NaN;
  const earliest = observedAtMs - timing.retryPeriodMs - observationSlackMs;
  if (!Number.isFinite(claimed)) return observedAtMs;
  return Math.min(observedAtMs, Math.max(earliest, claimed));
}

export function fingerprint(record: LeaseRecord): string {
  return JSON.stringify([record.holderIdentity ?? '', record.renewTime ?? '', record.leaseTransitions ?? 0]);
}

/** Updates what we have seen of the lease: the observation time moves only when the record changed. */
export function observe(
  previous: ObservedLease | undefined,
  record: LeaseRecord,
  nowMs: number,
): ObservedLease {
  const fp = fingerprint(record);
  if (previous && previous.fingerprint === fp) return previous;
  return { record, fingerprint: fp, observedAtMs: nowMs };
}

/** Decides, from the lease as it is now (undefined: none exists), whether to create, take, renew or wait. */
export function decideLease(
  current: LeaseRecord | undefined,
  observed: ObservedLease | undefined,
  identity: string,
  nowMs: number,
  timing: LeaderTiming = defaultLeaderTiming,
): LeaseDecision {
  const now = microTime(nowMs);
  const leaseDurationSeconds = Math.ceil(timing.leaseDurationMs / 1000);
  if (!current) {
    return {
      action: 'create',
      record: {
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 0,
      },
    };
  }
  const holder = current.holderIdentity ?? '';
  if (holder === identity) {
    return {
      action: 'update',
      takeover: false,
      record: { ...current, leaseDurationSeconds, renewTime: now },
    };
  }
  const durationMs = (current.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
  const seenAt = observed?.fingerprint === fingerprint(current) ? observed.observedAtMs : nowMs;
  const expiresAt = trustedRenewMs(current, seenAt, timing) + durationMs;
  if (holder !== '' && expiresAt > nowMs) return { action: 'wait', holder, expiresInMs: expiresAt - nowMs };
  return {
    action: 'update',
    takeover: true,
    record: {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: (current.leaseTransitions ?? 0) + (holder === '' ? 0 : 1),
    },
  };
}

/** A leader that has not renewed for renewDeadline must stop: another may already have taken over. */
export function leadershipLost(
  lastRenewMs: number,
  nowMs: number,
  timing: LeaderTiming = defaultLeaderTiming,
): boolean {
  return nowMs - lastRenewMs >= timing.renewDeadlineMs;
}

/** metav1.MicroTime: RFC 3339 with microseconds. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}
