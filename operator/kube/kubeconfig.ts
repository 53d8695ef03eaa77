import { ConfigError } from '../config.ts';
import { type ClusterAccess, loadClusterAccess } from './access.ts';

/** The cluster to talk to: --kubeconfig, else the pod's service account, else the user's default. */
export function loadKubeAccess(kubeconfig: string | undefined): ClusterAccess {
  try {
    return loadClusterAccess(kubeconfig);
  } catch (err) {
    throw new ConfigError(
      `--kubeconfig (KUBECONFIG): cannot load ${kubeconfig ?? 'the cluster settings'}: ${(err as Error).message}`,
    );
  }
}
