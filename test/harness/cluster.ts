import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { bindOperatorNamespace } from '../../hack/local-cluster/chart.ts';
import { accessFromKubeconfig, type ClusterAccess } from '../../operator/kube/access.ts';
import { createKubeClient, type KubeClient } from '../../operator/kube/client.ts';
import { silentLogger } from '../../operator/log.ts';
import { createManager, type Manager, type ManagerOptions } from '../../operator/manager.ts';
import { createMetrics } from '../../operator/metrics.ts';

/** How the operator's client reaches the control plane the global setup started. */
export function testAccess(): ClusterAccess {
  return accessFromKubeconfig(inject('kubeconfigPath'));
}

/** How the operator under test reaches the control plane: as the chart's ServiceAccount, with its RBAC. */
export function operatorAccess(): ClusterAccess {
  return accessFromKubeconfig(inject('operatorKubeconfigPath'));
}

/** A client with the operator's permissions (the chart's), for the managers that run Aurora's controllers. */
export function operatorClient(): KubeClient {
  return createKubeClient(operatorAccess());
}

/** A client configuration for the control plane the global setup started. */
export function testKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfigPath'));
  return kc;
}

/** A short random suffix, so tests running side by side never share a name, key or schema. */
export function uniqueSuffix(): string {
  return randomBytes(4).toString('hex');
}

/**
 * Creates a namespace of the test's own and returns its name with a cleanup that deletes it. Deletion is
 * not awaited to completion: the namespace controller finishes it in the background.
 */
export async function createTestNamespace(
  prefix: string,
): Promise<{ name: string; cleanup: () => Promise<void> }> {
  const core = testKubeConfig().makeApiClient(CoreV1Api);
  const name = `${prefix}-${uniqueSuffix()}`;
  await core.createNamespace({ body: { metadata: { name, labels: { 'aurora.health/test': 'true' } } } });
  // The operator may lead from here, as the chart lets it lead from its own namespace.
  const chart = inject('chart');
  await bindOperatorNamespace(createKubeClient(testAccess()), name, chart, chart.releaseNamespace);
  return { name, cleanup: async () => void (await core.deleteNamespace({ name }).catch(() => {})) };
}

/** A manager for one test namespace: quiet, with metrics of its own so tests never share counters. */
export function createTestManager(
  client: KubeClient,
  namespace: string,
  options: Partial<ManagerOptions> = {},
): Manager {
  return createManager({
    client,
    log: silentLogger,
    namespace,
    metrics: createMetrics({ defaultMetrics: false }),
    ...options,
  });
}
