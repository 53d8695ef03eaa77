// API access, declared where it is used: each controller lists the resources and verbs its reconciler
// needs (as kubebuilder's RBAC markers do), the runtime lists its own, and the chart's ClusterRole and
// Role are generated from the lists (charts/generate.ts), so the chart grants exactly what the code asks.

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface AccessRule {
  /** The API group; '' is the core group. */
  apiGroup: string;
  /** Plural resource names, with `/status`, `/scale` or `/eviction` for a subresource. */
  resources: readonly string[];
  verbs: readonly Verb[];
  /**
   * `cluster`: in every namespace Aurora serves (a ClusterRole). `operatorNamespace`: only in the
   * namespace the operator runs and leads from (a Role there), as for its leader-election Lease.
   */
  scope?: 'cluster' | 'operatorNamespace';
  /** Why the code needs it: the chart prints it beside the rule. */
  why: string;
}

/** One rule of a Role or ClusterRole, as the RBAC API writes it. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

const verbOrder: readonly Verb[] = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];

/**
 * The fewest rules that grant exactly the union of the declarations in one scope: verbs merged per
 * resource, then resources of a group with the same verbs written as one rule. Sorted, so the output is
 * stable whatever order the declarations come in.
 */
export function policyRules(
  access: readonly AccessRule[],
  scope: 'cluster' | 'operatorNamespace',
): PolicyRule[] {
  const verbsOf = new Map<string, Set<Verb>>();
  for (const rule of access) {
    if ((rule.scope ?? 'cluster') !== scope) continue;
    if (rule.verbs.length === 0 || rule.resources.length === 0)
      throw new Error(`an access rule for '${rule.apiGroup}' names no verb or no resource (${rule.why})`);
    for (const resource of rule.resources) {
      if (resource.includes('*') || rule.apiGroup.includes('*'))
        throw new Error(`access rules may not use wildcards ('${rule.apiGroup}' '${resource}')`);
      const key = `${rule.apiGroup}\u0000${resource}`;
      const verbs = verbsOf.get(key) ?? new Set<Verb>();
      for (const v of rule.verbs) verbs.add(v);
      verbsOf.set(key, verbs);
    }
  }
  const grouped = new Map<string, PolicyRule>();
  for (const [key, verbs] of verbsOf) {
    const [apiGroup = '', resource = ''] = key.split('\u0000');
    const sorted = verbOrder.filter((v) => verbs.has(v));
    const id = `${apiGroup}\u0000${sorted.join(',')}`;
    const rule = grouped.get(id) ?? { apiGroups: [apiGroup], resources: [], verbs: sorted };
    rule.resources.push(resource);
    grouped.set(id, rule);
  }
  for (const rule of grouped.values()) rule.resources.sort();
  return [...grouped.values()].sort(
    (a, b) =>
      (a.apiGroups[0] ?? '').localeCompare(b.apiGroups[0] ?? '') ||
      (a.resources[0] ?? '').localeCompare(b.resources[0] ?? ''),
  );
}

/** What the runtime itself asks of the API server, whatever controllers run. */
export const runtimeAccess: readonly AccessRule[] = [
  {
    apiGroup: 'coordination.k8s.io',
    resources: ['leases'],
    verbs: ['get', 'create', 'update'],
    scope: 'operatorNamespace',
    why: 'leader election: one replica leads through a Lease in its own namespace',
  },
  {
    apiGroup: 'events.k8s.io',
    resources: ['events'],
    verbs: ['create', 'patch'],
    why: 'Events on the objects Aurora reconciles, counted up by patch when they repeat',
  },
];
