import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeClient } from '../operator/kube/client.ts';
import { fetchModel, sha256 } from './fetch.ts';

const body = Buffer.from('model bytes');
const server = createServer((_req, res) => res.writeHead(200).end(body));
let port = 0;
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => {
  server.close();
});

const noCluster = {} as KubeClient;
const source = (host: string) => ({
  http: { url: `http://${host}:${port}/m.onnx`, sha256: sha256(body), timeoutSeconds: 5, maxSizeMiB: 1 },
});

describe('fetchModel egress rules', () => {
  it('refuses loopback by default, as a literal address', async () => {
    const result = await fetchModel(noCluster, 'er', source('127.0.0.1'));
    expect(result).toMatchObject({ ok: false, reason: 'SourceForbidden' });
    if (!result.ok) expect(result.message).toMatch(/127\.0\.0\.1 is a loopback address/);
  });

  it('refuses loopback by default when a name resolves to it, checked at connect time', async () => {
    const result = await fetchModel(noCluster, 'er', source('localhost'));
    expect(result).toMatchObject({ ok: false, reason: 'SourceForbidden' });
    if (!result.ok) expect(result.message).toMatch(/localhost resolves to a loopback address/);
  });

  it('fetches from loopback when allowed, and checks the digest', async () => {
    const result = await fetchModel(noCluster, 'er', source('localhost'), {
      maxModelMiB: 1,
      allowLoopback: true,
    });
    expect(result).toEqual({ ok: true, bytes: body, digest: sha256(body) });
  });
});
