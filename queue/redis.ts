// Connections to the Redis that holds care queues: one per URL (and TLS settings), shared by every
// queue and consumer that uses it. The URL carries credentials, so it is never logged or shown: callers
// name it by where it came from (its Secret).
import { Redis, type RedisOptions } from 'ioredis';

export interface RedisTarget {
  url: string;
  tls?: { enabled: boolean; ca?: string };
}

/** Why Redis could not be used, in words safe for a condition: never the URL, never a reply's text. */
export type RedisFault =
  | 'RedisUnreachable'
  | 'RedisAuthenticationFailed'
  | 'RedisPermissionDenied'
  | 'RedisBusy'
  | 'RedisError';

export const redisFaultMessages: Record<RedisFault, string> = {
  RedisUnreachable: 'Redis does not answer',
  RedisAuthenticationFailed: 'Redis refused the credentials in the URL',
  RedisPermissionDenied:
    'the Redis user may not run the commands the queue needs (EVALSHA and, inside its scripts, TIME, EXISTS, TYPE, XINFO, XRANGE, XPENDING)',
  RedisBusy: 'Redis is busy (loading, or running a long script)',
  RedisError: 'Redis answered with an error',
};

/** What kind of failure err is: replies are matched by their code only, so no text reaches status. */
export function redisFault(err: unknown): RedisFault {
  const text = err instanceof Error ? err.message : String(err);
  const code = text.split(' ', 1)[0] ?? '';
  if (code === 'WRONGPASS' || code === 'NOAUTH' || /invalid password|AUTH failed/i.test(text))
    return 'RedisAuthenticationFailed';
  // A script whose commands the user may not run fails with ERR and these words, not NOPERM.
  if (code === 'NOPERM' || /can't run this command|no permissions to/i.test(text))
    return 'RedisPermissionDenied';
  if (code === 'LOADING' || code === 'BUSY' || code === 'MASTERDOWN') return 'RedisBusy';
  if (/^[A-Z]+$/.test(code) && err instanceof Error && err.name === 'ReplyError') return 'RedisError';
  return 'RedisUnreachable';
}

/**
 * Options for a connection that fails fast instead of queueing: a command sent while Redis is down
 * rejects at once, so a reconcile sees the outage, while the client reconnects in the background.
 */
export function redisOptions(target: RedisTarget, extra: RedisOptions = {}): RedisOptions {
  const useTls = target.tls?.enabled || target.url.startsWith('rediss://');
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2_000,
    commandTimeout: 5_000,
    // Reconnect soon after an outage ends, without a storm while it lasts.
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 5), 2_000),
    ...(useTls ? { tls: target.tls?.ca ? { ca: target.tls.ca } : {} } : {}),
    ...extra,
  };
}

export interface SharedRedis {
  client: Redis;
  /** The last connection failure, for a reason when a command fails only with "not writeable". */
  lastFault(): RedisFault | undefined;
  release(): void;
}

/** Connections shared by target, counted, closed when the last user lets go. */
export function createRedisPool(options: { connectionName?: string } = {}) {
  const entries = new Map<string, { client: Redis; users: number; fault?: RedisFault }>();
  const keyOf = (t: RedisTarget) => JSON.stringify([t.url, t.tls?.enabled ?? false, t.tls?.ca ?? '']);
  return {
    acquire(target: RedisTarget): SharedRedis {
      const key = keyOf(target);
      let entry = entries.get(key);
      if (!entry) {
        const client = new Redis(
          target.url,
          redisOptions(target, options.connectionName ? { connectionName: options.connectionName } : {}),
        );
        const created: { client: Redis; users: number; fault?: RedisFault } = { client, users: 0 };
        client.on('error', (err) => {
          created.fault = redisFault(err);
        });
        client.on('ready', () => {
          delete created.fault;
        });
        client.connect().catch(() => {});
        entry = created;
        entries.set(key, entry);
      }
      entry.users++;
      const held = entry;
      let released = false;
      return {
        client: held.client,
        lastFault: () => held.fault,
        release() {
          if (released) return;
          released = true;
          held.users--;
          if (held.users === 0) {
            entries.delete(key);
            held.client.disconnect();
          }
        },
      };
    },
    size: () => entries.size,
    close() {
      for (const entry of entries.values()) entry.client.disconnect();
      entries.clear();
    },
  };
}

export type RedisPool = ReturnType<typeof createRedisPool>;
