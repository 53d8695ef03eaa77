import { describe, expect, it } from 'vitest';
import { decideLease, type LeaseRecord, leadershipLost, microTime, observe } from './leader-state.ts';

const t = 1_700_000_000_000;
const held = (holder: string, transitions = 0): LeaseRecord => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  acquireTime: microTime(t - 60_000),
  renewTime: microTime(t - 1_000),
  leaseTransitions: transitions,
});

describe('decideLease', () => {
  it('creates the lease when none exists', () => {
    const d = decideLease(undefined, undefined, 'a', t);
    expect(d).toEqual({
      action: 'create',
      record: {
        holderIdentity: 'a',
        leaseDurationSeconds: 12,
        acquireTime: microTime(t),
        renewTime: microTime(t),
        leaseTransitions: 0,
      },
    });
  });

  it('renews its own lease, keeping acquireTime and transitions', () => {
    const current = held('a', 3);
    const d = decideLease(current, observe(undefined, current, t - 1_000), 'a', t);
    expect(d).toMatchObject({ action: 'update', takeover: false });
    if (d.action !== 'update') throw new Error('expected update');
    expect(d.record).toMatchObject({
      acquireTime: current.acquireTime,
      leaseTransitions: 3,
      renewTime: microTime(t),
    });
  });

  const waiting = [
    { name: 'first sight, renewed 1 s ago', seenAgoMs: undefined, renewedAgoMs: 1_000, expiresInMs: 14_000 },
    { name: 'seen at the renewal 14.9 s ago', seenAgoMs: 14_900, renewedAgoMs: 14_900, expiresInMs: 100 },
  ];
  it.each(waiting)(
    'waits while another holds an unexpired lease ($name)',
    ({ seenAgoMs, renewedAgoMs, expiresInMs }) => {
      const current = { ...held('b'), renewTime: microTime(t - renewedAgoMs) };
      const observed = seenAgoMs === undefined ? undefined : observe(undefined, current, t - seenAgoMs);
      expect(decideLease(current, observed, 'a', t)).toEqual({ action: 'wait', holder: 'b', expiresInMs });
    },
  );

  it('takes over once the lease duration has passed since the renewal it saw, counting a transition', () => {
    const current = { ...held('b', 2), renewTime: microTime(t - 15_000) };
    const d = decideLease(current, observe(undefined, current, t - 14_500), 'a', t);
    expect(d).toMatchObject({
      action: 'update',
      takeover: true,
      record: { holderIdentity: 'a', acquireTime: microTime(t), leaseTransitions: 3 },
    });
  });

  it('does not take over a live holder whose clock runs 30 s behind: a fresh renewal counts from when it was seen', () => {
    const before = held('b');
    const observed = observe(undefined, before, t - 20_000);
    const renewed = { ...before, renewTime: microTime(t - 30_000) };
    const seenAgain = observe(observed, renewed, t);
    expect(seenAgain.observedAtMs).toBe(t);
    // Trusted no earlier than 3 s (retry period + slack) before it was seen: expiry at t + 12 s.
    expect(decideLease(renewed, seenAgain, 'a', t + 5_000)).toEqual({
      action: 'wait',
      holder: 'b',
      expiresInMs: 7_000,
    });
    expect(decideLease(renewed, seenAgain, 'a', t + 12_000)).toMatchObject({
      action: 'update',
      takeover: true,
    });
  });

  it('does not trust a holder clock that runs ahead: expiry counts from when the renewal was seen', () => {
    const ahead = { ...held('b'), renewTime: microTime(t + 60_000) };
    const seen = observe(undefined, ahead, t);
    expect(decideLease(ahead, seen, 'a', t + 14_000)).toEqual({
      action: 'wait',
      holder: 'b',
      expiresInMs: 1_000,
    });
  });

  it('takes a released lease (empty holder) at once without counting a transition', () => {
    const released = { ...held(''), leaseTransitions: 4 };
    const d = decideLease(released, observe(undefined, released, t), 'a', t);
    expect(d).toMatchObject({
      action: 'update',
      takeover: true,
      record: { holderIdentity: 'a', leaseTransitions: 4 },
    });
  });
});

describe('leadershipLost', () => {
  it.each([
    [0, false],
    [7_999, false],
    [8_000, true],
    [30_000, true],
  ])('%i ms since the last renewal: lost=%s', (sinceMs, lost) => {
    expect(leadershipLost(t - sinceMs, t)).toBe(lost);
  });
});

describe('microTime', () => {
  it('writes microseconds, as metav1.MicroTime expects', () => {
    expect(microTime(Date.UTC(2026, 10, 23, 10, 0, 0, 123))).toBe('2026-11-23T10:00:00.123000Z');
  });
});
