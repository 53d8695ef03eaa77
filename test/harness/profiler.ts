import { dirname, join } from 'node:path';
import { inject } from 'vitest';
import { kubeconfigWithToken, serviceAccountToken } from '../../hack/local-cluster/chart.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { testAccess, uniqueSuffix } from './cluster.ts';

/**
 * The credentials the chart's node profiler has on a node: a pod of its ServiceAccount bound to the
 * node (as the DaemonSet's pod is) and a token bound to that pod, which names the node the admission
 * policy holds it to. Returns a kubeconfig with that token, and a cleanup that deletes the pod (and so
 * ends the token).
 */
export async function profilerOnNode(
  nodeName: string,
): Promise<{ kubeconfigPath: string; cleanup: () => Promise<void> }> {
  const admin = createKubeClient(testAccess());
  const { releaseNamespace, profilerServiceAccount } = inject('chart');
  if (!profilerServiceAccount) throw new Error('the chart installed no node profiler');
  const name = `node-profiler-${uniqueSuffix()}`;
  const pod = await admin.create<KubeObject>({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: releaseNamespace, labels: { 'aurora.health/test': 'true' } },
    spec: {
      serviceAccountName: profilerServiceAccount,
      nodeName,
      tolerations: [{ operator: 'Exists' }],
      containers: [{ name: 'node-profiler', image: 'aurora:test' }],
    },
  } as KubeObject);
  const token = await serviceAccountToken(admin, releaseNamespace, profilerServiceAccount, {
    expirationSeconds: 3600,
    boundPod: { name, uid: pod.metadata.uid ?? '' },
  });
  const kubeconfigPath = kubeconfigWithToken(
    inject('kubeconfigPath'),
    token,
    `system:serviceaccount:${releaseNamespace}:${profilerServiceAccount}`,
    join(dirname(inject('workloadPidDir')), `${name}.kubeconfig`),
  );
  return {
    kubeconfigPath,
    cleanup: async () => {
      // At once: no kubelet runs on a test node to finish a graceful deletion.
      const info = await admin.resource('v1', 'Pod');
      await admin
        .request('DELETE', admin.path(info, releaseNamespace, name), {
          body: { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0 },
        })
        .catch(() => {});
    },
  };
}
