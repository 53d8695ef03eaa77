import type { AccessRule } from '../../operator/rbac.ts';

/** The API access the node capacity reconciler uses; the chart's RBAC is generated from it. */
export const nodeCapacityAccess: readonly AccessRule[] = [
  { apiGroup: '', resources: ['nodes'], verbs: ['list', 'watch'], why: 'the profiled Apple-silicon nodes' },
  {
    apiGroup: '',
    resources: ['nodes/status'],
    verbs: ['patch'],
    why: 'unified memory advertised as the extended resource aurora.health/unified-memory-mib',
  },
];
