// Waking on a new entry within a second without reading it: Redis keyspace notifications when the server
// sends them (an xadd event names only the key), else a light poll of each stream's last ID, run inside
// Redis like the observation so no entry crosses the connection.
import type { Redis } from 'ioredis';

// One command inside Redis per look: a missing key or one of another type is an error pcall keeps.
const lastIdScript = `
local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
if type(info) ~= 'table' or info.err then return '' end
for i = 1, #info, 2 do if info[i] == 'last-generated-id' then return info[i + 1] end end
return ''
`;
const commandName = 'auroraStreamLastId';

/**
 * Stream looks a second one waker makes at most: past 250 streams (50 queues) the poll slows instead of
 * growing, so 500 queues cost Redis 1,000 light script calls a second, not 10,000, and a new entry
 * wakes its queue within 2.5 s rather than 250 ms. Keyspace notifications cost nothing per stream.
 */
export const maxStreamLooksPerSecond = 1_000;

/** How long between polls of `keys` streams: pollMs, or longer to keep within the budget. */
export function pollIntervalMs(
  keys: number,
  pollMs: number,
  maxLooksPerSecond = maxStreamLooksPerSecond,
): number {
  return Math.max(pollMs, Math.ceil((keys / maxLooksPerSecond) * 1000));
}

export type WakeMode = 'notifications' | 'poll';

/** Whether a notify-keyspace-events setting sends xadd events: keyevent (E) or keyspace (K) with t or A. */
export function notificationClasses(setting: string): 'keyevent' | 'keyspace' | undefined {
  const streams = setting.includes('t') || setting.includes('A');
  if (!streams) return undefined;
  if (setting.includes('E')) return 'keyevent';
  if (setting.includes('K')) return 'keyspace';
  return undefined;
}

export interface StreamWaker {
  /** Wake `owner` when any of keys gets an entry; replaces what owner watched before. */
  watch(owner: string, keys: readonly string[]): void;
  unwatch(owner: string): void;
  mode(): WakeMode;
  close(): void;
}

/**
 * Watches stream keys on one Redis. `client` is the shared command connection; notifications need a
 * connection of their own, which this duplicates from it.
 */
export function createStreamWaker(
  client: Redis,
  onWake: (owner: string) => void,
  options: { pollMs?: number } = {},
): StreamWaker {
  const pollMs = options.pollMs ?? 250;
  const owners = new Map<string, Set<string>>();
  const byKey = new Map<string, Set<string>>();
  const lastIds = new Map<string, string>();
  let mode: WakeMode = 'poll';
  let classes: 'keyevent' | 'keyspace' | undefined;
  let subscriber: Redis | undefined;
  let closed = false;
  const db = Number(client.options.db ?? 0);

  const drop = (owner: string, key: string) => {
    const watchers = byKey.get(key);
    watchers?.delete(owner);
    if (watchers?.size === 0) {
      byKey.delete(key);
      lastIds.delete(key);
      // Nobody watches it any more: its keyspace channel goes too.
      if (mode === 'notifications' && classes === 'keyspace' && subscriber)
        void subscriber.unsubscribe(`__keyspace@${db}__:${key}`).catch(() => {});
    }
  };

  const wakeKey = (key: string) => {
    for (const owner of byKey.get(key) ?? []) onWake(owner);
  };

  const startNotifications = async () => {
    const setting = (await client.config('GET', 'notify-keyspace-events').catch(() => undefined)) as
      | string[]
      | undefined;
    classes = notificationClasses(setting?.[1] ?? '');
    if (!classes || closed) {
      mode = 'poll';
      return;
    }
    subscriber ??= client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null });
    subscriber.on('error', () => {});
    const sub = subscriber;
    if (classes === 'keyevent') {
      sub.removeAllListeners('message');
      sub.on('message', (_channel: string, key: string) => wakeKey(key));
      await sub.subscribe(`__keyevent@${db}__:xadd`);
    } else {
      const prefix = `__keyspace@${db}__:`;
      sub.removeAllListeners('message');
      sub.on('message', (channel: string, event: string) => {
        if (event === 'xadd') wakeKey(channel.slice(prefix.length));
      });
      const keys = [...byKey.keys()];
      if (keys.length > 0) await sub.subscribe(...keys.map((k) => prefix + k));
    }
    mode = 'notifications';
  };

  const poll = async () => {
    const keys = [...byKey.keys()];
    if (keys.length === 0 || client.status !== 'ready') return;
    if (!(commandName in client)) client.defineCommand(commandName, { numberOfKeys: 1, lua: lastIdScript });
    const pipeline = client.pipeline() as unknown as Record<string, (key: string) => void> & {
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    for (const key of keys) pipeline[commandName]?.(key);
    const results = await pipeline.exec().catch(() => null);
    results?.forEach(([err, id], i) => {
      const key = keys[i];
      if (err || key === undefined || typeof id !== 'string') return;
      const before = lastIds.get(key);
      lastIds.set(key, id);
      if (before !== undefined && before !== id) wakeKey(key);
    });
  };

  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (closed) return;
    timer = setTimeout(
      () => {
        if (mode !== 'poll') {
          schedule();
          return;
        }
        void poll().finally(schedule);
      },
      pollIntervalMs(byKey.size, pollMs),
    );
    timer.unref();
  };
  schedule();
  // Whether notifications are on is asked again after each reconnect: the server may have changed.
  const onReady = () =>
    void startNotifications().catch(() => {
      mode = 'poll';
    });
  client.on('ready', onReady);
  if (client.status === 'ready') onReady();

  return {
    watch(owner, keys) {
      const wanted = new Set(keys);
      const before = owners.get(owner) ?? new Set<string>();
      // Only what changed: a key watched before keeps its last ID, so the next change still wakes.
      for (const key of before) if (!wanted.has(key)) drop(owner, key);
      owners.set(owner, wanted);
      const added: string[] = [];
      for (const key of wanted) {
        let watchers = byKey.get(key);
        if (!watchers) {
          watchers = new Set();
          byKey.set(key, watchers);
          added.push(key);
        }
        watchers.add(owner);
      }
      // Only keyspace notifications need a channel per key; the keyevent channel covers every key.
      if (mode === 'notifications' && classes === 'keyspace' && subscriber && added.length > 0) {
        void subscriber.subscribe(...added.map((k) => `__keyspace@${db}__:${k}`)).catch(() => {});
      }
    },
    unwatch(owner) {
      for (const key of owners.get(owner) ?? []) drop(owner, key);
      owners.delete(owner);
    },
    mode: () => mode,
    close() {
      closed = true;
      clearTimeout(timer);
      client.off('ready', onReady);
      subscriber?.disconnect();
    },
  };
}
