import type { AccessRule } from '../../operator/rbac.ts';

/** The API access the CareQueue reconciler uses; the chart's RBAC is generated from it. */
export const careQueueAccess: readonly AccessRule[] = [
  {
    apiGroup: 'aurora.health',
    resources: ['carequeues'],
    verbs: ['list', 'watch'],
    why: 'the queues it reconciles (from the cache; no finalizer)',
  },
  { apiGroup: 'aurora.health', resources: ['carequeues/status'], verbs: ['patch'], why: 'their status' },
  {
    apiGroup: 'aurora.health',
    resources: ['inferencepools'],
    verbs: ['get', 'list', 'watch', 'patch'],
    why: 'the pool a queue scales; spec.replicas written once when a pool has none, so its scale subresource answers',
  },
  {
    apiGroup: 'aurora.health',
    resources: ['inferencepools/scale'],
    verbs: ['get', 'patch'],
    why: 'consumers set through the scale subresource, as an HPA does',
  },
  {
    apiGroup: 'apps',
    resources: ['deployments'],
    verbs: ['list', 'watch'],
    why: "a target Deployment's replicas and selector, read from the cache rather than once per look",
  },
  {
    apiGroup: 'apps',
    resources: ['deployments/scale'],
    verbs: ['get', 'patch'],
    why: 'a Deployment named as scaleTargetRef',
  },
  {
    apiGroup: '',
    resources: ['pods'],
    verbs: ['list', 'patch'],
    why: 'a deletion cost on busy consumers, so scaling in removes idle ones first',
  },
  { apiGroup: '', resources: ['secrets'], verbs: ['get'], why: 'the Redis URL in the Secret a queue names' },
];
