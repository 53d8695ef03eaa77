import type { KubeClient } from './client.ts';
import type { KubeObject } from './types.ts';

/** The text of a Secret key: where a URL that carries credentials is kept (trimmed: one written with echo ends in a newline). */
export async function readSecretKey(
  client: KubeClient,
  namespace: string,
  ref: { name: string; key: string },
): Promise<{ ok: true; value: string } | { ok: false; message: string }> {
  const secret = await client.get<KubeObject & { data?: Record<string, string> }>({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: ref.name, namespace },
  });
  if (!secret) return { ok: false, message: `Secret ${namespace}/${ref.name} does not exist` };
  const value = secret.data?.[ref.key];
  if (value === undefined)
    return { ok: false, message: `Secret ${namespace}/${ref.name} has no key '${ref.key}'` };
  return { ok: true, value: Buffer.from(value, 'base64').toString('utf8').trim() };
}

type SecretKeyRead = Awaited<ReturnType<typeof readSecretKey>>;

/** Secret keys read through one cache, so many objects naming one Secret cost one read between them. */
export interface SecretKeyCache {
  /** The key's text, read again once older than the cache's time to live; concurrent reads share one. */
  read(namespace: string, ref: { name: string; key: string }, nowMs: number): Promise<SecretKeyRead>;
  /** Reads the key again next time (what it held was refused: a password changed). */
  forget(namespace: string, ref: { name: string; key: string }): void;
}

/**
 * A cache of the Secret keys objects name (never a watch of every Secret: only the keys asked for are
 * kept). A key that is missing is not remembered, so it is seen at the next look once created.
 */
export function createSecretKeyCache(client: KubeClient, ttlMs: number): SecretKeyCache {
  const values = new Map<string, { value: string; readAtMs: number }>();
  const reading = new Map<string, Promise<SecretKeyRead>>();
  let sweptAtMs = 0;
  // Expired keys go now and then (they would be read again anyway), so the credentials of objects
  // since deleted are not kept.
  const sweep = (nowMs: number) => {
    if (nowMs - sweptAtMs < ttlMs) return;
    sweptAtMs = nowMs;
    for (const [key, known] of values) if (nowMs - known.readAtMs >= ttlMs) values.delete(key);
  };
  const id = (namespace: string, ref: { name: string; key: string }) =>
    `${namespace}\u0000${ref.name}\u0000${ref.key}`;
  return {
    async read(namespace, ref, nowMs) {
      sweep(nowMs);
      const key = id(namespace, ref);
      const known = values.get(key);
      if (known && nowMs - known.readAtMs < ttlMs) return { ok: true, value: known.value };
      let pending = reading.get(key);
      if (!pending) {
        pending = readSecretKey(client, namespace, ref).finally(() => reading.delete(key));
        reading.set(key, pending);
      }
      const read = await pending;
      if (read.ok) values.set(key, { value: read.value, readAtMs: nowMs });
      else values.delete(key);
      return read;
    },
    forget(namespace, ref) {
      values.delete(id(namespace, ref));
    },
  };
}
