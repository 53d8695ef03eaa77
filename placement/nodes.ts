import type { InferencePoolSpec } from '../crds/inferencepool.ts';
import { nodeLabels } from '../crds/labels.ts';
import { type NodeView, nodeIsReady } from '../views/node.ts';

export interface NodeSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  values?: string[];
}

/** The Apple-silicon part of placement: the profile labels a node must carry. */
export function appleRequirements(placement: InferencePoolSpec['placement']): NodeSelectorRequirement[] {
  const requirements: NodeSelectorRequirement[] = [
    { key: nodeLabels.appleSilicon, operator: 'In', values: ['true'] },
  ];
  if (placement.chips?.length) {
    requirements.push({ key: nodeLabels.chip, operator: 'In', values: [...placement.chips] });
  }
  if (placement.minUnifiedMemoryGiB !== undefined) {
    requirements.push({
      key: nodeLabels.unifiedMemoryGiB,
      operator: 'Gt',
      values: [String(placement.minUnifiedMemoryGiB - 1)],
    });
  }
  return requirements;
}

/** The node selector requirements spec.placement.nodeSelector stands for. */
export function selectorRequirements(placement: InferencePoolSpec['placement']): NodeSelectorRequirement[] {
  return Object.entries(placement.nodeSelector ?? {}).map(([key, value]) => ({
    key,
    operator: 'In',
    values: [value],
  }));
}

function labelMatches(labels: Record<string, string>, r: NodeSelectorRequirement) {
  const value = labels[r.key];
  switch (r.operator) {
    case 'In':
      return value !== undefined && (r.values ?? []).includes(value);
    case 'Gt':
      return value !== undefined && /^-?[0-9]+$/.test(value) && Number(value) > Number(r.values?.[0]);
    default:
      return false;
  }
}

function tolerated(
  taint: { key: string; value?: string; effect: string },
  placement: InferencePoolSpec['placement'],
): boolean {
  return (placement.tolerations ?? []).some(
    (t) =>
      (t.effect === undefined || t.effect === taint.effect) &&
      (t.key === undefined || t.key === '' || t.key === taint.key) &&
      (t.operator === 'Exists' || (t.value ?? '') === (taint.value ?? '')),
  );
}

/**
 * Nodes a pool pod may go to by its placement, as the scheduler would filter them: profile labels, node
 * selector, taints, readiness. Status uses it to say why pods wait, in the pool's own terms.
 */
export function allowedNodes(spec: InferencePoolSpec, nodes: readonly NodeView[]): NodeView[] {
  const requirements = [
    ...(spec.placement.appleSilicon === 'Required' ? appleRequirements(spec.placement) : []),
    ...selectorRequirements(spec.placement),
  ];
  return nodes.filter((node) => {
    const labels = node.metadata.labels ?? {};
    if (node.spec?.unschedulable) return false;
    if (!nodeIsReady(node)) return false;
    if (!requirements.every((r) => labelMatches(labels, r))) return false;
    return (node.spec?.taints ?? [])
      .filter((t) => t.effect === 'NoSchedule' || t.effect === 'NoExecute')
      .every((t) => tolerated(t, spec.placement));
  });
}
