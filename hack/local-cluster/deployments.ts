import type { KubeObject } from '../../operator/kube/types.ts';

export interface AppDeploymentOptions {
  /** 2 unless given. */
  replicas?: number;
  /** Labels of the Deployment itself (what a HealingPolicy selects), beside app=<name>. */
  labels?: Record<string, string>;
  /** Merged into the one container. */
  container?: Record<string, unknown>;
  /** Merged into the pod spec. */
  podSpec?: Record<string, unknown>;
}

export type AppDeployment = KubeObject & { spec: Record<string, unknown> };

/**
 * A stand-in service for simulated nodes, as tests and benchmarks heal, scale and count it: pods
 * labelled app=<name>, one container, no grace period (kwok runs nothing, so nothing needs one).
 */
export function appDeployment(
  name: string,
  namespace: string | undefined,
  options: AppDeploymentOptions = {},
): AppDeployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, ...(namespace ? { namespace } : {}), labels: { app: name, ...options.labels } },
    spec: {
      replicas: options.replicas ?? 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 0,
          containers: [{ name: 'app', image: 'registry.example/app:1', ...options.container }],
          ...options.podSpec,
        },
      },
    },
  };
}
