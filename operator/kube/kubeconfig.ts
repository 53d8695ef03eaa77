import { KubeConfig } from '@kubernetes/client-node';
import { ConfigError } from '../config.ts';

/** The cluster to talk to: --kubeconfig, else the pod's service account, else the user's default. */
export function loadKubeConfig(kubeconfig: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (kubeconfig) kc.loadFromFile(kubeconfig);
    else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
    else kc.loadFromDefault();
  } catch (err) {
    throw new ConfigError(`--kubeconfig (KUBECONFIG): cannot load ${kubeconfig}: ${(err as Error).message}`);
  }
  if (!kc.getCurrentCluster()) {
    throw new ConfigError(
      '--kubeconfig (KUBECONFIG): no cluster to talk to: the kubeconfig has no current context',
    );
  }
  return kc;
}
