// The chart's admission policy for the node profiler, on the real API server: RBAC lets the profiler
// patch any Node, and the ValidatingAdmissionPolicy holds it to its own node (named in its pod-bound
// token) and to labels under aurora.health/.
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kubeconfigWithToken, serviceAccountToken } from '../../hack/local-cluster/chart.ts';
import { hospitalFleet } from '../../hack/local-cluster/fleet.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { accessFromKubeconfig } from '../../operator/kube/access.ts';
import { createKubeClient, type KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { testAccess } from '../harness/cluster.ts';
import { profilerOnNode } from '../harness/profiler.ts';

const admin = createKubeClient(testAccess());
const [ownNode, otherNode] = hospitalFleet.filter((m) => m.apple).map((m) => m.name);
const nodeRef = (name = ownNode ?? '') => ({ apiVersion: 'v1', kind: 'Node', metadata: { name } });
let profiler: Awaited<ReturnType<typeof profilerOnNode>>;
let asProfiler: KubeClient;

beforeAll(async () => {
  profiler = await profilerOnNode(ownNode ?? '');
  asProfiler = createKubeClient(accessFromKubeconfig(profiler.kubeconfigPath));
  // The API server enforces a policy a moment after it is created (its informer must see the policy
  // and its binding): wait until a forbidden change, tried as a dry run, is refused.
  const info = await asProfiler.resource('v1', 'Node');
  await waitFor('the profiler admission policy to be enforced', async () =>
    asProfiler
      .request('PATCH', asProfiler.path(info, undefined, otherNode ?? ''), {
        query: { dryRun: 'All' },
        contentType: 'application/merge-patch+json',
        body: { metadata: { labels: { 'aurora.health/admission-probe': 'dry-run' } } },
      })
      .then(
        () => undefined,
        (err: Error) => (/may change only the node it runs on/.test(err.message) ? true : undefined),
      ),
  );
});

afterAll(async () => {
  await profiler?.cleanup();
  for (const name of [ownNode, otherNode])
    await admin.patch(
      nodeRef(name),
      { metadata: { labels: { 'aurora.health/admission-probe': null, 'example.org/team': null } } },
      { type: 'merge' },
    );
});

/** The API server's answer to a patch made as the profiler: 'allowed' or the refusal's message. */
async function patchAsProfiler(name: string, patch: unknown, client = asProfiler): Promise<string> {
  try {
    await client.patch(nodeRef(name), patch, { type: 'merge', fieldManager: 'aurora-node-profiler' });
    return 'allowed';
  } catch (err) {
    return (err as Error).message;
  }
}

const labels = async (name: string) => (await admin.get<KubeObject>(nodeRef(name)))?.metadata.labels ?? {};

describe('the node profiler’s admission policy', () => {
  it('lets a profiler set aurora.health/ labels on its own node', async () => {
    expect(
      await patchAsProfiler(ownNode ?? '', {
        metadata: { labels: { 'aurora.health/admission-probe': 'm4' } },
      }),
    ).toBe('allowed');
    expect((await labels(ownNode ?? ''))['aurora.health/admission-probe']).toBe('m4');
  });

  it('refuses a profiler changing another node, even an aurora.health/ label', async () => {
    const answer = await patchAsProfiler(otherNode ?? '', {
      metadata: { labels: { 'aurora.health/admission-probe': 'm4' } },
    });
    expect(answer).toMatch(/may change only the node it runs on/);
    expect(answer).toContain(ownNode);
    expect((await labels(otherNode ?? ''))['aurora.health/admission-probe']).toBeUndefined();
  });

  it('refuses a label outside aurora.health/ on its own node, and the removal of one', async () => {
    expect(
      await patchAsProfiler(ownNode ?? '', { metadata: { labels: { 'example.org/team': 'ops' } } }),
    ).toMatch(/only labels under aurora.health\//);
    expect(
      await patchAsProfiler(ownNode ?? '', { metadata: { labels: { 'topology.kubernetes.io/zone': null } } }),
    ).toMatch(/only labels under aurora.health\//);
    // A look-alike prefix is no aurora.health/ label.
    expect(
      await patchAsProfiler(ownNode ?? '', { metadata: { labels: { 'aurora.healthy/chip': 'm4' } } }),
    ).toMatch(/only labels under aurora.health\//);
    expect(await labels(ownNode ?? '')).not.toHaveProperty('example.org/team');
    expect(await labels(ownNode ?? '')).toHaveProperty('topology.kubernetes.io/zone');
  });

  it('refuses a change to its own node’s spec, annotations, finalizers or owners', async () => {
    const refusal = /spec, annotations, finalizers or owners/;
    const own = ownNode ?? '';
    expect(await patchAsProfiler(own, { spec: { unschedulable: true } })).toMatch(refusal);
    expect(await patchAsProfiler(own, { metadata: { annotations: { 'example.org/note': 'x' } } })).toMatch(
      refusal,
    );
    // A finalizer would keep the Node from being deleted; an owner would have the garbage collector delete it.
    expect(await patchAsProfiler(own, { metadata: { finalizers: ['example.org/hold'] } })).toMatch(refusal);
    const owner = {
      apiVersion: 'v1',
      kind: 'Namespace',
      name: 'gone',
      uid: '00000000-0000-0000-0000-000000000000',
    };
    // Refused by the policy, or before it by OwnerReferencesPermissionEnforcement where that runs (as here):
    // the profiler may not delete Nodes, so it may not own one either.
    expect(await patchAsProfiler(own, { metadata: { ownerReferences: [owner] } })).toMatch(
      /spec, annotations, finalizers or owners|cannot set an ownerRef on a resource you can't delete/,
    );
    const node = await admin.get<KubeObject & { spec?: { unschedulable?: boolean } }>(nodeRef());
    expect(node?.spec?.unschedulable).toBeFalsy();
    expect(node?.metadata.annotations?.['example.org/note']).toBeUndefined();
    expect(node?.metadata.finalizers ?? []).toEqual([]);
    expect(node?.metadata.ownerReferences ?? []).toEqual([]);
  });

  it('refuses the profiler’s account with a token bound to no pod, which names no node', async () => {
    const { releaseNamespace, profilerServiceAccount } = inject('chart');
    const token = await serviceAccountToken(admin, releaseNamespace, profilerServiceAccount ?? '', {
      expirationSeconds: 600,
    });
    const path = kubeconfigWithToken(
      inject('kubeconfigPath'),
      token,
      'unbound-profiler',
      join(dirname(inject('workloadPidDir')), 'unbound-profiler.kubeconfig'),
    );
    const unbound = createKubeClient(accessFromKubeconfig(path));
    expect(
      await patchAsProfiler(
        ownNode ?? '',
        { metadata: { labels: { 'aurora.health/admission-probe': 'x' } } },
        unbound,
      ),
    ).toMatch(/node-bound token of its own pod/);
  });
});
