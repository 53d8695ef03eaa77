import { describe, expect, it } from 'vitest';
import { FakeClock } from './clock.ts';
import { createInformer, type InformerEvent } from './informer.ts';
import type { KubeClient, WatchEvent } from './kube/client.ts';
import type { KubeObject } from './kube/types.ts';

const cm = (name: string, rv: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'er', resourceVersion: rv, managedFields: [{ manager: 'x' }] },
});

type WatchScript = { events: WatchEvent[]; end: 'close' | Error };

/** A client whose lists and watches follow a script; records the resourceVersion each watch starts at. */
function scriptedClient(
  lists: Array<{ items: KubeObject[]; resourceVersion: string }>,
  watches: WatchScript[],
) {
  const watchedFrom: string[] = [];
  let listCalls = 0;
  const client = {
    resource: async () => ({ apiVersion: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true }),
    path: () => '/api/v1/configmaps',
    list: async () => {
      const page = lists[Math.min(listCalls++, lists.length - 1)];
      return { items: structuredClone(page?.items ?? []), resourceVersion: page?.resourceVersion ?? '0' };
    },
    watch: async (
      _path: string,
      query: Record<string, unknown>,
      onEvent: (e: WatchEvent) => void,
      signal: AbortSignal,
    ) => {
      watchedFrom.push(String(query.resourceVersion));
      const script = watches.shift();
      if (!script) {
        // Nothing more scripted: stay connected until stopped.
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
        return;
      }
      for (const e of script.events) onEvent(structuredClone(e));
      if (script.end instanceof Error) throw script.end;
    },
  } as unknown as KubeClient;
  return { client, watchedFrom, listCalls: () => listCalls };
}

async function settle(clock?: FakeClock, ms = 0) {
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setImmediate(r));
    if (clock && ms) clock.advance(ms / 20);
  }
}

describe('informer', () => {
  it('lists, then watches from the list resourceVersion, and resumes after a normal end without listing again', async () => {
    const { client, watchedFrom, listCalls } = scriptedClient(
      [{ items: [cm('a', '10')], resourceVersion: '10' }],
      [
        {
          events: [
            { type: 'ADDED', object: cm('b', '11') },
            { type: 'BOOKMARK', object: cm('', '15') },
          ],
          end: 'close',
        },
        { events: [{ type: 'MODIFIED', object: cm('a', '16') }], end: 'close' },
      ],
    );
    const informer = createInformer({ client, apiVersion: 'v1', kind: 'ConfigMap', clock: new FakeClock() });
    const events: string[] = [];
    informer.addHandler((e: InformerEvent<KubeObject>) => events.push(`${e.type}:${e.object.metadata.name}`));
    informer.start();
    await informer.synced();
    await settle();
    expect(events).toEqual(['added:a', 'added:b', 'updated:a']);
    expect(watchedFrom).toEqual(['10', '15', '16']);
    expect(listCalls()).toBe(1);
    expect(informer.get('er/a')?.metadata.managedFields).toBeUndefined();
    await informer.stop();
  });

  it('lists again on 410 Gone and reports objects that vanished meanwhile as deleted', async () => {
    const { client, listCalls } = scriptedClient(
      [
        { items: [cm('a', '10'), cm('b', '10')], resourceVersion: '10' },
        { items: [cm('b', '30'), cm('c', '31')], resourceVersion: '31' },
      ],
      [
        {
          events: [{ type: 'ERROR', object: { code: 410, message: 'too old' } as unknown as KubeObject }],
          end: 'close',
        },
      ],
    );
    const informer = createInformer({ client, apiVersion: 'v1', kind: 'ConfigMap', clock: new FakeClock() });
    const events: string[] = [];
    informer.addHandler((e) => events.push(`${e.type}:${e.object.metadata.name}`));
    informer.start();
    await settle();
    expect(listCalls()).toBe(2);
    expect(events).toEqual(['added:a', 'added:b', 'updated:b', 'added:c', 'deleted:a']);
    expect(
      informer
        .list()
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['b', 'c']);
    await informer.stop();
  });

  it('backs off with jitter after a transport error and resumes from the last resourceVersion it saw', async () => {
    const clock = new FakeClock();
    const { client, watchedFrom, listCalls } = scriptedClient(
      [{ items: [], resourceVersion: '5' }],
      [
        { events: [{ type: 'ADDED', object: cm('a', '6') }], end: new Error('ECONNRESET') },
        { events: [], end: new Error('ECONNREFUSED') },
      ],
    );
    const informer = createInformer({
      client,
      apiVersion: 'v1',
      kind: 'ConfigMap',
      clock,
      random: () => 0,
      backoff: { initialMs: 800, maxMs: 30_000 },
    });
    informer.start();
    await settle();
    expect(watchedFrom).toEqual(['5']);
    // First failure waits 800 ms × (0.5 + 0.5 × random) = 400 ms with random() = 0.
    clock.advance(399);
    await settle();
    expect(watchedFrom).toEqual(['5']);
    clock.advance(1);
    await settle();
    expect(watchedFrom).toEqual(['5', '6']);
    // Second consecutive failure: 800 ms.
    clock.advance(799);
    await settle();
    expect(watchedFrom).toHaveLength(2);
    clock.advance(1);
    await settle();
    expect(watchedFrom).toEqual(['5', '6', '6']);
    expect(listCalls()).toBe(1);
    expect(informer.stats()).toMatchObject({ errors: 2, lastError: 'ECONNREFUSED' });
    await informer.stop();
  });

  it('keeps indexes in step with the cache and replays the cache to late handlers', async () => {
    const owned = (name: string, owner: string, rv: string): KubeObject => ({
      ...cm(name, rv),
      metadata: {
        ...cm(name, rv).metadata,
        ownerReferences: [{ apiVersion: 'v1', kind: 'X', name: owner, uid: owner }],
      },
    });
    const { client } = scriptedClient(
      [{ items: [owned('a', 'u1', '1'), owned('b', 'u1', '1')], resourceVersion: '1' }],
      [
        {
          events: [
            { type: 'MODIFIED', object: owned('b', 'u2', '2') },
            { type: 'DELETED', object: owned('a', 'u1', '3') },
          ],
          end: 'close',
        },
      ],
    );
    const informer = createInformer({
      client,
      apiVersion: 'v1',
      kind: 'ConfigMap',
      clock: new FakeClock(),
      indexers: { owner: (o) => (o.metadata.ownerReferences ?? []).map((r) => r.uid) },
    });
    informer.start();
    await settle();
    expect(informer.byIndex('owner', 'u1')).toEqual([]);
    expect(informer.byIndex('owner', 'u2').map((o) => o.metadata.name)).toEqual(['b']);
    const late: string[] = [];
    informer.addHandler((e) => late.push(`${e.type}:${e.object.metadata.name}`));
    expect(late).toEqual(['added:b']);
    await informer.stop();
  });

  it('paces relists when every new watch expires at once (a 410 storm)', async () => {
    const clock = new FakeClock();
    const gone = {
      type: 'ERROR' as const,
      object: { code: 410, message: 'too old' } as unknown as KubeObject,
    };
    const { client, listCalls } = scriptedClient(
      [{ items: [cm('a', '10')], resourceVersion: '10' }],
      Array.from({ length: 100 }, () => ({ events: [gone], end: 'close' as const })),
    );
    const informer = createInformer({
      client,
      apiVersion: 'v1',
      kind: 'ConfigMap',
      clock,
      random: () => 0,
      backoff: { initialMs: 800, maxMs: 30_000 },
    });
    informer.start();
    await settle();
    // The first expiry relists at once; the next ones wait 400 ms, 800 ms, 1.6 s, 3.2 s, ...
    expect(listCalls()).toBe(2);
    for (let i = 0; i < 100; i++) {
      clock.advance(100);
      await settle();
    }
    // Ten seconds of a storm: a handful of relists, not a hundred.
    expect(listCalls()).toBeGreaterThanOrEqual(4);
    expect(listCalls()).toBeLessThanOrEqual(7);
    await informer.stop();
  });

  it('reopens a watch that goes silent past its own time-out, from the last resourceVersion seen', async () => {
    const clock = new FakeClock();
    // One watch that sends an event and then nothing, never closing: a half-open connection.
    const { client, watchedFrom, listCalls } = scriptedClient([{ items: [], resourceVersion: '5' }], []);
    const informer = createInformer({ client, apiVersion: 'v1', kind: 'ConfigMap', clock, random: () => 0 });
    informer.start();
    await settle();
    expect(watchedFrom).toEqual(['5']);
    // random() = 0: the watch asks the server to end it after 300 s; 60 s of grace on top.
    clock.advance(359_000);
    await settle();
    expect(watchedFrom).toEqual(['5']);
    clock.advance(1_000);
    await settle();
    clock.advance(1_000);
    await settle();
    expect(watchedFrom).toEqual(['5', '5']);
    expect(listCalls()).toBe(1);
    expect(informer.stats()).toMatchObject({ silentWatches: 1, errors: 1 });
    expect(informer.healthy(15 * 60_000)).toBe(true);
    await informer.stop();
  });

  it('is unhealthy only when its loop stops turning', async () => {
    const clock = new FakeClock();
    const stuck = {
      ...scriptedClient([], []).client,
      // A list that never answers and is never aborted: the loop is wedged.
      list: () => new Promise(() => {}),
    } as unknown as KubeClient;
    const informer = createInformer({ client: stuck, apiVersion: 'v1', kind: 'ConfigMap', clock });
    informer.start();
    clock.advance(14 * 60_000);
    expect(informer.healthy(15 * 60_000)).toBe(true);
    clock.advance(2 * 60_000);
    expect(informer.healthy(15 * 60_000)).toBe(false);
  });

  it('asks for metadata only when told to, for lists and watches alike', async () => {
    const asked: unknown[] = [];
    const base = scriptedClient(
      [{ items: [cm('a', '1')], resourceVersion: '1' }],
      [{ events: [], end: 'close' }],
    );
    const client = {
      ...base.client,
      list: (apiVersion: string, kind: string, options: unknown) => {
        asked.push(options);
        return base.client.list(apiVersion, kind, options as never);
      },
      watch: (path: string, query: never, onEvent: never, signal: AbortSignal, options: unknown) => {
        asked.push(options);
        return base.client.watch(path, query, onEvent, signal);
      },
    } as unknown as KubeClient;
    const informer = createInformer({
      client,
      apiVersion: 'v1',
      kind: 'ConfigMap',
      clock: new FakeClock(),
      metadataOnly: true,
    });
    informer.start();
    await informer.synced();
    await settle();
    await informer.stop();
    expect(asked[0]).toMatchObject({ metadataOnly: true });
    expect(asked[1]).toEqual({ metadataOnly: true });
  });
});
