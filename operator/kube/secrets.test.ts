import { describe, expect, it } from 'vitest';
import { createFakeClient } from '../fake-client.ts';
import type { KubeClient } from './client.ts';
import { createSecretKeyCache } from './secrets.ts';

const secret = (url: string) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'redis', namespace: 'ward' },
  data: { url: Buffer.from(`${url}\n`).toString('base64') },
});
const ref = { name: 'redis', key: 'url' };
/** The fake client, counting the reads that reach it. */
function countingClient() {
  const fake = createFakeClient();
  let reads = 0;
  const client: KubeClient = {
    ...fake,
    get: (ref) => {
      reads++;
      return fake.get(ref);
    },
  };
  return { fake, client, reads: () => reads };
}

describe('createSecretKeyCache', () => {
  it('reads a key once for every object naming it within the time to live, then again', async () => {
    const { fake, client, reads } = countingClient();
    await fake.create(secret('redis://a:6379'));
    const cache = createSecretKeyCache(client, 30_000);
    const first = await Promise.all([0, 1, 2].map(() => cache.read('ward', ref, 1_000)));
    expect(first).toEqual([0, 1, 2].map(() => ({ ok: true, value: 'redis://a:6379' })));
    expect(await cache.read('ward', ref, 30_999)).toEqual({ ok: true, value: 'redis://a:6379' });
    expect(reads()).toBe(1);
    await fake.patch(secret('redis://b:6379'), { data: secret('redis://b:6379').data }, { type: 'merge' });
    expect(await cache.read('ward', ref, 31_000)).toEqual({ ok: true, value: 'redis://b:6379' });
    expect(reads()).toBe(2);
  });

  it('reads again at once after forget, and never remembers a missing key', async () => {
    const { fake, client, reads } = countingClient();
    const cache = createSecretKeyCache(client, 30_000);
    expect(await cache.read('ward', ref, 0)).toEqual({
      ok: false,
      message: 'Secret ward/redis does not exist',
    });
    await fake.create(secret('redis://a:6379'));
    expect(await cache.read('ward', ref, 1)).toEqual({ ok: true, value: 'redis://a:6379' });
    cache.forget('ward', ref);
    await cache.read('ward', ref, 2);
    expect(reads()).toBe(3);
  });
});
