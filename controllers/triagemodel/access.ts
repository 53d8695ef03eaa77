import type { AccessRule } from '../../operator/rbac.ts';

/** The API access the TriageModel reconciler uses; the chart's RBAC is generated from it. */
export const triageModelAccess: readonly AccessRule[] = [
  {
    apiGroup: 'aurora.health',
    resources: ['triagemodels'],
    verbs: ['list', 'watch'],
    why: 'the models it reconciles (from the cache; no finalizer)',
  },
  { apiGroup: 'aurora.health', resources: ['triagemodels/status'], verbs: ['patch'], why: 'their status' },
  {
    apiGroup: '',
    resources: ['configmaps'],
    verbs: ['get', 'list', 'watch'],
    why: 'model files and acceptance vectors kept in ConfigMaps (only metadata is watched)',
  },
  { apiGroup: '', resources: ['secrets'], verbs: ['get'], why: 'a model URL kept in a Secret, read by name' },
];
