// A cache that needs to know of changes, not data, never downloads the data: measured on the wire.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { createInformer } from '../../operator/informer.ts';
import { withServer } from '../../operator/kube/access.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { createTestNamespace, testAccess } from '../harness/cluster.ts';
import { type PausableProxy, startPausableProxy } from '../harness/proxy.ts';

const client = createKubeClient(testAccess());
let namespace: string;
let cleanup: () => Promise<void>;
const proxies: PausableProxy[] = [];

/** A client whose every byte from the API server passes a counting proxy. */
async function countedClient() {
  const access = testAccess();
  const proxy = await startPausableProxy(Number(new URL(access.server).port));
  proxies.push(proxy);
  const viaProxy = withServer(access, `https://127.0.0.1:${proxy.port}`);
  return { client: createKubeClient(viaProxy), proxy };
}

beforeAll(async () => {
  ({ name: namespace, cleanup } = await createTestNamespace('metadata'));
  for (let i = 0; i < 4; i++) {
    await client.create({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: `big-${i}`, namespace },
      // Random, so no compression on the wire makes it small.
      data: { 'model.bin': randomBytes(384 * 1024).toString('base64') },
    });
  }
});

afterAll(async () => {
  for (const proxy of proxies) await proxy.close();
  await cleanup?.();
});

describe('a metadata-only informer', () => {
  it('lists and watches ConfigMaps without downloading their data', async () => {
    const full = await countedClient();
    const meta = await countedClient();
    const informers = [
      createInformer<KubeObject>({ client: full.client, apiVersion: 'v1', kind: 'ConfigMap', namespace }),
      createInformer<KubeObject>({
        client: meta.client,
        apiVersion: 'v1',
        kind: 'ConfigMap',
        namespace,
        metadataOnly: true,
      }),
    ];
    for (const informer of informers) informer.start();
    await Promise.all(informers.map((i) => i.synced()));
    // A change arrives through the watch, as metadata, with the new resourceVersion.
    const changed = await client.patch(
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big-0', namespace } },
      {
        metadata: { labels: { touched: 'yes' } },
        data: { 'model.bin': randomBytes(384 * 1024).toString('base64') },
      },
      { type: 'merge' },
    );
    await waitFor('the change through both watches', async () =>
      informers.every(
        (i) => i.get(`${namespace}/big-0`)?.metadata.resourceVersion === changed.metadata.resourceVersion,
      )
        ? true
        : undefined,
    );
    const cached = informers[1]?.get(`${namespace}/big-0`) as KubeObject & { data?: unknown };
    expect(cached.metadata.labels).toEqual({ touched: 'yes' });
    expect(cached.data).toBeUndefined();
    for (const informer of informers) await informer.stop();
    // Five files of 384 KiB of entropy came down for the full cache; the metadata cache saw a few KiB.
    expect(full.proxy.bytesToClients()).toBeGreaterThan(5 * 384 * 1024);
    expect(meta.proxy.bytesToClients()).toBeLessThan(64 * 1024);
  });
});
