import type { AccessRule } from '../../operator/rbac.ts';

/** The API access the InferencePool reconciler uses; the chart's RBAC is generated from it. */
export const inferencePoolAccess: readonly AccessRule[] = [
  {
    apiGroup: 'aurora.health',
    resources: ['inferencepools'],
    verbs: ['list', 'watch'],
    why: 'the pools it reconciles (from the cache; no finalizer)',
  },
  { apiGroup: 'aurora.health', resources: ['inferencepools/status'], verbs: ['patch'], why: 'their status' },
  {
    apiGroup: 'aurora.health',
    resources: ['inferencepools/finalizers'],
    verbs: ['update'],
    why: 'children owned with blockOwnerDeletion, which OwnerReferencesPermissionEnforcement checks',
  },
  {
    apiGroup: 'aurora.health',
    resources: ['triagemodels', 'carequeues'],
    verbs: ['list', 'watch'],
    why: 'the model a pool serves, and the queues that scale it',
  },
  {
    apiGroup: 'apps',
    resources: ['deployments'],
    verbs: ['list', 'watch', 'create', 'patch'],
    why: "each pool's Deployment, applied server-side",
  },
  {
    apiGroup: '',
    resources: ['services'],
    verbs: ['list', 'watch', 'create', 'patch'],
    why: "each pool's Service",
  },
  {
    apiGroup: 'policy',
    resources: ['poddisruptionbudgets'],
    verbs: ['list', 'watch', 'create', 'patch'],
    why: "each pool's PodDisruptionBudget",
  },
  {
    apiGroup: 'networking.k8s.io',
    resources: ['networkpolicies'],
    verbs: ['list', 'watch', 'create', 'patch'],
    why: "each pool's NetworkPolicy",
  },
  {
    apiGroup: '',
    resources: ['configmaps'],
    verbs: ['list', 'watch', 'create', 'patch', 'delete'],
    why: "a pool's releases (the model file each version served), kept and pruned",
  },
  {
    apiGroup: '',
    resources: ['pods'],
    verbs: ['list', 'watch'],
    why: "where a pool's pods run and whether ready",
  },
  { apiGroup: '', resources: ['nodes'], verbs: ['list', 'watch'], why: 'unified memory free on each node' },
];
