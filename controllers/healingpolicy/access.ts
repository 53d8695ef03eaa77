import type { AccessRule } from '../../operator/rbac.ts';

/** The API access the HealingPolicy reconciler and its actions use; the chart's RBAC is generated from it. */
export const healingPolicyAccess: readonly AccessRule[] = [
  {
    apiGroup: 'aurora.health',
    resources: ['healingpolicies'],
    verbs: ['list', 'watch'],
    why: 'the policies it reconciles (from the cache; no finalizer)',
  },
  { apiGroup: 'aurora.health', resources: ['healingpolicies/status'], verbs: ['patch'], why: 'their status' },
  {
    apiGroup: 'apps',
    resources: ['deployments', 'statefulsets'],
    verbs: ['get', 'list', 'watch', 'patch'],
    why: 'targets watched; RestartRollout and RollbackRevision patch their pod template',
  },
  {
    apiGroup: 'aurora.health',
    resources: ['inferencepools'],
    verbs: ['get', 'list', 'watch', 'patch'],
    why: 'pools as targets; a pool is rolled back or restarted through annotations',
  },
  {
    apiGroup: 'apps',
    resources: ['deployments/scale', 'statefulsets/scale'],
    verbs: ['patch'],
    why: 'ScaleOut',
  },
  {
    apiGroup: 'aurora.health',
    resources: ['inferencepools/scale'],
    verbs: ['patch'],
    why: 'ScaleOut of a pool',
  },
  {
    apiGroup: 'apps',
    resources: ['replicasets', 'controllerrevisions'],
    verbs: ['get', 'list', 'watch'],
    why: 'the revisions of a target, to diagnose a bad rollout and roll back to the last healthy one',
  },
  {
    apiGroup: '',
    resources: ['pods'],
    verbs: ['get', 'list', 'watch'],
    why: "a target's pods and why they fail",
  },
  {
    apiGroup: '',
    resources: ['pods/eviction'],
    verbs: ['create'],
    why: 'RestartPod, through the Eviction API',
  },
  {
    apiGroup: '',
    resources: ['pods'],
    verbs: ['delete'],
    why: 'RestartPod where a policy sets respectDisruptionBudgets: false (a delete, not an eviction)',
  },
  {
    apiGroup: '',
    resources: ['nodes'],
    verbs: ['get', 'list', 'watch', 'patch'],
    why: 'node readiness, and CordonNode',
  },
  {
    apiGroup: '',
    resources: ['configmaps'],
    verbs: ['get'],
    why: 'whether a pool still keeps the release to go back to',
  },
  {
    apiGroup: '',
    resources: ['secrets'],
    verbs: ['get'],
    why: 'the PostgreSQL URL of the audit trail, in the Secret a policy names',
  },
];
