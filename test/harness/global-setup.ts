import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureControlPlaneBinaries } from '../../hack/local-cluster/binaries.ts';
import { type ChartIdentity, installChartForOperator } from '../../hack/local-cluster/chart.ts';
import { startControlPlane } from '../../hack/local-cluster/control-plane.ts';
import { ensureServices } from '../../hack/local-cluster/services.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import { auditSummary } from './audit-log.ts';

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
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string) => console.log(line);
  await ensureControlPlaneBinaries();
  log('Starting the control plane and the simulated fleet for integration tests');
  const services = await ensureServices(undefined, log);
  const releaseNamespace = 'aurora-system';
  let identity: ChartIdentity;
  const controlPlane = await startControlPlane({ log });
  try {
    // Aurora is installed from its chart (rendered by helm with default values), and the operator under
    // test runs as the chart's ServiceAccount: a permission the chart lacks fails the test that needs it.
    const admin = createKubeClient(controlPlane.access());
    const operatorKubeconfigPath = join(controlPlane.runDir, 'operator.kubeconfig');
    ({ identity } = await installChartForOperator(admin, {
      release: 'aurora',
      namespace: releaseNamespace,
      adminKubeconfigPath: controlPlane.kubeconfigPath,
      operatorKubeconfigPath,
    }));
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
  } catch (err) {
    // Nothing would stop the control plane the run started.
    await controlPlane.stop();
    throw err;
  }
  return async () => {
    // Read before stopping: stopping removes the run's directory, audit log and all.
    const summary = await auditSummary(
      controlPlane.runDir,
      releaseNamespace,
      identity.operatorServiceAccount,
    ).finally(() => controlPlane.stop());
    if (summary.unused.length > 0)
      log(
        `Declared operator permissions no request of this run used (a full run should use all): ${summary.unused.join(', ')}`,
      );
    // A refusal a controller retried past would pass its test: the audit log tells on it.
    if (summary.refused.length > 0)
      throw new Error(
        `the chart's RBAC refused Aurora's service accounts ${summary.refused.length} kind(s) of request:\n${summary.refused.join('\n')}`,
      );
  };
}
