import type { KubeObject } from '../operator/kube/types.ts';

/** A Deployment's rolling-update bounds, in pods. */
export interface RollingUpdate {
  maxSurge: number;
  maxUnavailable: number;
}

/** The parts of a Deployment that controllers and their status read. */
export interface DeploymentView extends KubeObject {
  spec?: {
    replicas?: number;
    template?: { metadata?: { annotations?: Record<string, string> } };
    strategy?: { rollingUpdate?: RollingUpdate };
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
  };
}
