import { describe, expect, it } from 'vitest';
import type { CategoryStream } from '../../queue/contract.ts';
import type { StreamState } from '../../queue/observe.ts';
import { emptyMemory, type QueueMemory, viewQueue } from './observe.ts';

const t0 = Date.parse('2026-11-28T10:00:00Z');
const streams: CategoryStream[] = [
  { category: 'immediate', streamKey: 'q:red', maxWaitSeconds: 0 },
  { category: 'standard', streamKey: 'q:green', maxWaitSeconds: 7200 },
];
const id = (ms: number, seq = 0) => `${ms}-${seq}`;

/** A stream with a group, as Redis 7 reports it. */
const stream = (
  atMs: number,
  o: {
    added: number;
    read: number;
    pending?: number;
    depth?: number;
    firstUndeliveredMs?: number;
    oldestPendingMs?: number;
    inFlight?: [string, number][];
    firstAddedMs?: number;
    active?: string[];
  },
): StreamState => ({
  exists: true,
  serverTimeMs: atMs,
  length: o.added,
  lastGeneratedId: id(atMs - 1, o.added),
  entriesAdded: o.added,
  ...(o.firstAddedMs !== undefined ? { firstAddedSinceId: id(o.firstAddedMs) } : {}),
  group: {
    pending: o.pending ?? 0,
    lastDeliveredId: id(atMs - 2),
    entriesRead: o.read,
    depth: o.depth ?? 0,
    depthCapped: false,
    ...(o.firstUndeliveredMs !== undefined ? { firstUndeliveredId: id(o.firstUndeliveredMs) } : {}),
    ...(o.oldestPendingMs !== undefined ? { oldestPendingId: id(o.oldestPendingMs) } : {}),
    inFlight: new Map(o.inFlight ?? []),
    activeConsumers: o.active ?? [],
  },
});
const missing = (atMs: number): StreamState => ({ exists: false, serverTimeMs: atMs });

describe('viewQueue', () => {
  it('ages the oldest entry not yet acknowledged on the server clock, undelivered or pending', () => {
    const view = viewQueue(
      streams,
      [
        stream(t0, {
          added: 10,
          read: 6,
          pending: 2,
          depth: 4,
          firstUndeliveredMs: t0 - 3_000,
          oldestPendingMs: t0 - 8_000,
          inFlight: [['pod-a', 2]],
        }),
        stream(t0, { added: 3, read: 3, pending: 1, oldestPendingMs: t0 - 60_000, inFlight: [['pod-a', 1]] }),
      ],
      emptyMemory(),
      2,
    );
    expect(view.categories.map((c) => [c.name, c.depth, c.pending, c.oldestWaitSeconds])).toEqual([
      ['immediate', 4, 2, 8],
      ['standard', 0, 1, 60],
    ]);
    expect([...view.inFlight]).toEqual([['pod-a', 3]]);
    expect(view.observation?.categories).toHaveLength(2);
    expect(view.fault).toBeUndefined();
  });

  it('takes a stream that does not exist as an empty category', () => {
    const view = viewQueue(streams, [missing(t0), missing(t0)], emptyMemory(), 1);
    expect(view.observation?.categories.every((c) => c.depth === 0 && c.oldestWaitSeconds === 0)).toBe(true);
  });

  it('cannot judge entries in a stream without the group, and says a consumer must start', () => {
    const noGroup: StreamState = { exists: true, serverTimeMs: t0, length: 1, lastGeneratedId: id(t0 - 5) };
    const view = viewQueue(streams, [noGroup, missing(t0)], emptyMemory(), 0);
    expect(view.observation).toBeUndefined();
    expect(view.fault).toEqual({ reason: 'GroupMissing', category: 'immediate' });
    expect(view.waitingWithoutGroup).toBe(true);
    const empty: StreamState = { exists: true, serverTimeMs: t0, length: 0, lastGeneratedId: '0-0' };
    expect(viewQueue(streams, [empty, missing(t0)], emptyMemory(), 0).fault).toBeUndefined();
  });

  it('refuses a key of another type', () => {
    const view = viewQueue(
      streams,
      [missing(t0), { exists: true, notAStream: true, serverTimeMs: t0 }],
      emptyMemory(),
      1,
    );
    expect(view.fault).toEqual({ reason: 'NotAStream', category: 'standard' });
  });

  it('measures arrivals and service over the window, and a consumer only while it had a backlog', () => {
    let memory: QueueMemory = emptyMemory();
    const look = (atMs: number, red: Parameters<typeof stream>[1], consumers = 2) => {
      const view = viewQueue(streams, [stream(atMs, red), missing(atMs)], memory, consumers);
      memory = view.memory;
      return view;
    };
    look(t0, { added: 100, read: 100, depth: 0 });
    // Idle consumers: 10 arrivals in 10 s, all served at once. Says nothing of their speed.
    const idle = look(t0 + 10_000, { added: 110, read: 110, depth: 0 });
    expect(idle.categories[0]?.arrivalsPerSecond).toBeCloseTo(10 / 15);
    const steady = look(t0 + 15_000, { added: 115, read: 115, depth: 0 });
    expect(steady.categories[0]?.arrivalsPerSecond).toBeCloseTo(1);
    expect(idle.observation?.servedPerConsumerPerSecond).toBeUndefined();
    // A burst: entries wait at every look while 2 consumers serve 40 in 10 s.
    look(t0 + 20_000, { added: 310, read: 150, depth: 160, firstUndeliveredMs: t0 + 12_000 });
    const busy = look(t0 + 30_000, { added: 310, read: 190, depth: 120, firstUndeliveredMs: t0 + 13_000 });
    expect(busy.observation?.servedPerConsumerPerSecond).toBeCloseTo(2);
    // 210 arrived and 90 served between the looks 30 s and 0 s ago... over the window that began at t0.
    expect(busy.categories[0]?.arrivalsPerSecond).toBeCloseTo(210 / 30);
    expect(busy.categories[0]?.servedPerSecond).toBeCloseTo(90 / 30);
  });

  it('divides the service among the consumers that serve, not the pods still starting', () => {
    let memory: QueueMemory = emptyMemory();
    const look = (atMs: number, o: Parameters<typeof stream>[1], replicas: number) => {
      const view = viewQueue(streams, [stream(atMs, o), missing(atMs)], memory, replicas);
      memory = view.memory;
      return view;
    };
    // Six replicas, but only a and b have read lately (c holds an entry, so it serves too).
    const since = t0 - 5_000;
    look(
      t0,
      {
        added: 300,
        read: 100,
        depth: 200,
        firstUndeliveredMs: since,
        active: ['a', 'b'],
        inFlight: [['c', 1]],
      },
      6,
    );
    const view = look(
      t0 + 10_000,
      {
        added: 300,
        read: 160,
        depth: 140,
        firstUndeliveredMs: since,
        active: ['a', 'b'],
        inFlight: [['c', 1]],
      },
      6,
    );
    expect(view.activeConsumers).toBe(3);
    expect(view.observation?.servedPerConsumerPerSecond).toBeCloseTo(60 / 10 / 3);
    // Consumers that read lately but whose pods are gone count no more than the replicas.
    const fewer = viewQueue(
      streams,
      [stream(t0 + 11_000, { added: 300, read: 166, depth: 134, active: ['a', 'b', 'c', 'd'] }), missing(t0)],
      memory,
      2,
    );
    expect(fewer.activeConsumers).toBe(2);
  });

  it('learns no consumer speed from an arrival seen before an idle consumer took it', () => {
    let memory: QueueMemory = emptyMemory();
    // Each look is woken by an arrival, undelivered for 20 ms: the consumers were idle, not slow.
    for (let k = 0; k < 5; k++) {
      const atMs = t0 + k * 2_000;
      const view = viewQueue(
        streams,
        [
          stream(atMs, { added: 10 + k, read: 9 + k, depth: 1, firstUndeliveredMs: atMs - 20 }),
          missing(atMs),
        ],
        memory,
        4,
      );
      memory = view.memory;
      expect(view.observation?.servedPerConsumerPerSecond).toBeUndefined();
    }
  });

  it('counts arrivals and deliveries itself where Redis keeps no counters', () => {
    const legacy = (atMs: number, addedSince: number, deliveredSince: number): StreamState => ({
      exists: true,
      serverTimeMs: atMs,
      length: 50,
      lastGeneratedId: id(atMs),
      addedSince,
      group: {
        pending: 0,
        lastDeliveredId: id(atMs),
        deliveredSince,
        depth: 0,
        depthCapped: false,
        inFlight: new Map(),
        activeConsumers: [],
      },
    });
    const first = viewQueue(streams, [legacy(t0, 0, 0), missing(t0)], emptyMemory(), 1);
    const second = viewQueue(streams, [legacy(t0 + 5_000, 20, 20), missing(t0 + 5_000)], first.memory, 1);
    // Five seconds of watching is spread over the shortest span a rate is trusted over.
    expect(second.categories[0]?.arrivalsPerSecond).toBeCloseTo(20 / 15);
    expect(second.categories[0]?.servedPerSecond).toBeCloseTo(20 / 15);
    expect(second.memory.counted[0]).toEqual({ added: 20, delivered: 20 });
  });

  it('says when the first entry since the last look arrived', () => {
    const view = viewQueue(
      streams,
      [stream(t0, { added: 1, read: 0, depth: 1, firstAddedMs: t0 - 400 }), missing(t0)],
      emptyMemory(),
      1,
    );
    expect(view.categories[0]?.firstArrivalMs).toBe(t0 - 400);
  });
});
