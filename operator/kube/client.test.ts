import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { clusterAccess } from './access.ts';
import { ApiError, createKubeClient, createRateLimiter, metadataOnly, retryAfterMs } from './client.ts';

let server: Server | undefined;
afterEach(() => {
  server?.closeAllConnections();
  server?.close();
  server = undefined;
});

/** An API server stand-in that answers with `respond`, recording what it was asked. */
async function fakeApiServer(
  respond: (
    n: number,
    accept: string | undefined,
  ) => { status: number; headers?: Record<string, string>; body: unknown },
) {
  const seen: Array<{ at: number; accept: string | undefined }> = [];
  server = createServer((req, res) => {
    seen.push({ at: performance.now(), accept: req.headers.accept });
    const answer = respond(seen.length, req.headers.accept);
    res
      .writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers })
      .end(JSON.stringify(answer.body));
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const kc = clusterAccess({
    server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    token: 't',
  });
  return { kc, seen };
}

const configMap = { kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'a', namespace: 'er' } };

describe('the API client', () => {
  it('waits out a 429 as long as Retry-After says, then succeeds', async () => {
    const { kc, seen } = await fakeApiServer((n) =>
      n === 1
        ? {
            status: 429,
            headers: { 'retry-after': '1' },
            body: { reason: 'TooManyRequests', message: 'slow down' },
          }
        : { status: 200, body: configMap },
    );
    const client = createKubeClient(kc);
    const got = await client.request('GET', '/api/v1/namespaces/er/configmaps/a');
    expect(got).toEqual(configMap);
    expect(seen).toHaveLength(2);
    expect((seen[1]?.at ?? 0) - (seen[0]?.at ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it('gives up after a few 429s in a row and reports the last', async () => {
    const { kc, seen } = await fakeApiServer(() => ({
      status: 429,
      headers: { 'retry-after': '0' },
      body: { reason: 'TooManyRequests', message: 'slow down' },
    }));
    const client = createKubeClient(kc);
    const failed = await client.request('GET', '/api/v1/namespaces').catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(ApiError);
    expect((failed as ApiError).status).toBe(429);
    expect(seen).toHaveLength(6);
  }, 15_000);

  it('sends no faster than its rate limit once the burst is spent', async () => {
    const { kc, seen } = await fakeApiServer(() => ({ status: 200, body: configMap }));
    const client = createKubeClient(kc, { rateLimit: { qps: 20, burst: 5 } });
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 15 }, () => client.request('GET', '/api/v1/namespaces/er/configmaps/a')),
    );
    // Five at once, then ten more at 20 a second.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(450);
    expect(seen).toHaveLength(15);
  });

  it('reports each answer by method and code, and how long each request waited for the limiter', async () => {
    const { kc } = await fakeApiServer((n) =>
      n === 2
        ? { status: 404, body: { reason: 'NotFound', message: 'gone' } }
        : { status: 200, body: configMap },
    );
    const answers: string[] = [];
    const waits: number[] = [];
    const client = createKubeClient(kc, {
      rateLimit: { qps: 2, burst: 1 },
      observer: {
        requested: (method, code) => answers.push(`${method} ${code}`),
        waited: (_method, seconds) => waits.push(seconds),
      },
    });
    const path = '/api/v1/namespaces/er/configmaps/a';
    await client.request('GET', path);
    await client.request('GET', path).catch(() => undefined);
    await client.request('PATCH', path, { body: {}, contentType: 'application/merge-patch+json' });
    expect(answers).toEqual(['GET 200', 'GET 404', 'PATCH 200']);
    // One token, two a second: the first goes at once, each after waits most of 500 ms.
    expect(waits[0]).toBeLessThan(0.05);
    expect(Math.min(...waits.slice(1))).toBeGreaterThan(0.25);
  });

  it('asks for metadata only when a list wants it', async () => {
    const { kc, seen } = await fakeApiServer((_n, accept) =>
      accept?.startsWith('application/json;as=')
        ? {
            status: 200,
            body: { kind: 'PartialObjectMetadataList', metadata: { resourceVersion: '7' }, items: [] },
          }
        : { status: 200, body: { resources: [{ name: 'configmaps', kind: 'ConfigMap', namespaced: true }] } },
    );
    const client = createKubeClient(kc);
    const list = await client.list('v1', 'ConfigMap', { namespace: 'er', metadataOnly: true });
    expect(list.resourceVersion).toBe('7');
    expect(seen.map((s) => s.accept)).toEqual(['application/json', metadataOnly.list]);
  });
});

describe('rate limiter and Retry-After', () => {
  it.each([
    ['3', 3000],
    ['0', 1000],
    ['soon', 1000],
    [null, 1000],
    ['3600', 60_000],
  ])('Retry-After %s → waits %i ms', (header, ms) => {
    expect(retryAfterMs(header)).toBe(ms);
  });

  it('lets a burst through at once and spaces what follows', async () => {
    let t = 0;
    const limiter = createRateLimiter({ qps: 10, burst: 2 }, () => t);
    await limiter.take();
    await limiter.take();
    let third = false;
    const pending = limiter.take().then(() => {
      third = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(third).toBe(false);
    t = 100;
    await pending;
    expect(third).toBe(true);
  });
});
