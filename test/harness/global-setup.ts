import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureControlPlaneBinaries } from '../../hack/local-cluster/binaries.ts';
import {
  applyRendered,
  chartIdentity,
  kubeconfigWithToken,
  renderChart,
  serviceAccountToken,
} from '../../hack/local-cluster/chart.ts';
import { startControlPlane } from '../../hack/local-cluster/control-plane.ts';
import { ensureServices } from '../../hack/local-cluster/services.ts';
import { createKubeClient } from '../../operator/kube/client.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfigPath: string;
    /** The operator's kubeconfig: the chart's ServiceAccount, so tests run it with the chart's RBAC. */
    operatorKubeconfigPath: string;
    /** Who the chart installed the operator as, in namespace aurora-system. */
    chart: {
      releaseNamespace: string;
      operatorServiceAccount: string;
      namespacedRole: string;
      profilerServiceAccount?: string;
    };
    postgresUrl: string;
    redisUrl: string;
    /** Where tests record the processes they start, so a run that dies leaves none behind for long. */
    workloadPidDir: string;
  }
}

/** Starts one control plane for the whole integration run and makes sure PostgreSQL and Redis answer. */
/** The requests RBAC refused to the chart's service accounts, from the API server's audit log, distinct. */
function refusedByRbac(runDir: string, userPrefix: string): string[] {
  const refused = new Set<string>();
  for (const file of readdirSync(runDir).filter((f) => f.startsWith('audit') && f.endsWith('.log'))) {
    for (const line of readFileSync(join(runDir, file), 'utf8').split('\n')) {
      if (!line.includes('"forbid"')) continue;
      const event = JSON.parse(line) as {
        user?: { username?: string };
        verb?: string;
        objectRef?: { resource?: string; subresource?: string; apiGroup?: string; namespace?: string };
        annotations?: Record<string, string>;
      };
      if (!event.user?.username?.startsWith(userPrefix)) continue;
      if (event.annotations?.['authorization.k8s.io/decision'] !== 'forbid') continue;
      const o = event.objectRef ?? {};
      const resource = `${o.apiGroup ? `${o.apiGroup}/` : ''}${o.resource ?? '?'}${o.subresource ? `/${o.subresource}` : ''}`;
      refused.add(
        `  ${event.user.username}: ${event.verb} ${resource}${o.namespace ? '' : ' (cluster-wide)'}`,
      );
    }
  }
  return [...refused].sort();
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string) => console.log(line);
  await ensureControlPlaneBinaries();
  log('Starting the control plane and the simulated fleet for integration tests');
  const services = await ensureServices(undefined, log);
  const controlPlane = await startControlPlane({ log });
  // Aurora is installed from its chart (rendered by helm with default values), and the operator under
  // test runs as the chart's ServiceAccount: a permission the chart lacks fails the test that needs it.
  const admin = createKubeClient(controlPlane.access());
  const releaseNamespace = 'aurora-system';
  const rendered = await renderChart({ release: 'aurora', namespace: releaseNamespace });
  await applyRendered(admin, rendered, releaseNamespace);
  const identity = chartIdentity(rendered);
  const token = await serviceAccountToken(admin, releaseNamespace, identity.operatorServiceAccount);
  const operatorKubeconfigPath = kubeconfigWithToken(
    controlPlane.kubeconfigPath,
    token,
    `system:serviceaccount:${releaseNamespace}:${identity.operatorServiceAccount}`,
    join(controlPlane.runDir, 'operator.kubeconfig'),
  );
  log(
    `  Aurora installed from charts/aurora; the operator runs as ${releaseNamespace}/${identity.operatorServiceAccount}`,
  );
  project.provide('kubeconfigPath', controlPlane.kubeconfigPath);
  project.provide('operatorKubeconfigPath', operatorKubeconfigPath);
  project.provide('chart', { releaseNamespace, ...identity });
  project.provide('postgresUrl', services.postgresUrl);
  project.provide('redisUrl', services.redisUrl);
  // The control plane's own pid directory: the next run reaps what a crashed run left in it.
  project.provide('workloadPidDir', join(controlPlane.runDir, 'pids'));
  return async () => {
    const refused = refusedByRbac(controlPlane.runDir, `system:serviceaccount:${releaseNamespace}:`);
    await controlPlane.stop();
    // A refusal a controller retried past would pass its test: the audit log tells on it.
    if (refused.length > 0)
      throw new Error(
        `the chart's RBAC refused Aurora's service accounts ${refused.length} kind(s) of request:\n${refused.join('\n')}`,
      );
  };
}
