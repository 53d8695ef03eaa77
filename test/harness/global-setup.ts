import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { ensureControlPlaneBinaries } from '../../hack/local-cluster/binaries.ts';
import { startControlPlane } from '../../hack/local-cluster/control-plane.ts';
import { installAuroraCrds } from '../../hack/local-cluster/crds.ts';
import { ensureServices } from '../../hack/local-cluster/services.ts';
import { createKubeClient } from '../../operator/kube/client.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfigPath: string;
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
  const controlPlane = await startControlPlane({ log });
  await installAuroraCrds(createKubeClient(controlPlane.access()));
  log('  Aurora CRDs installed');
  project.provide('kubeconfigPath', controlPlane.kubeconfigPath);
  project.provide('postgresUrl', services.postgresUrl);
  project.provide('redisUrl', services.redisUrl);
  // The control plane's own pid directory: the next run reaps what a crashed run left in it.
  project.provide('workloadPidDir', join(controlPlane.runDir, 'pids'));
  return async () => {
    await controlPlane.stop();
  };
}
