import { unifiedMemoryResource } from '../../crds/node-labels.ts';
import { fieldManager } from '../../operator/apply.ts';
import type { InformerEvent } from '../../operator/informer.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import {
  capacityPatch,
  desiredUnifiedMemoryMiB,
  type NodeView,
  nodeView,
  placementChanged,
} from './desired.ts';

/** The one Node informer every Aurora controller shares (same transform, so one cache). */
export function nodeInformer(manager: Manager) {
  return manager.informer<NodeView>('v1', 'Node', { transform: nodeView });
}

/** Node events that matter to placement: adds, deletes, and changes other than heartbeats. */
export function nodePlacementEvent(event: InformerEvent<KubeObject>): boolean {
  return event.type !== 'updated' || placementChanged(event.old as NodeView, event.object as NodeView);
}

/**
 * Advertises each profiled Apple-silicon node's unified memory, less the system's share, as the
 * extended resource the scheduler packs pool pods by. A node that loses its profile loses the resource;
 * a kubelet that resets extended resources (a recreated node) gets it back on the next event.
 */
export function registerNodeCapacityController(manager: Manager, options: { workers?: number } = {}): void {
  const nodes = nodeInformer(manager);
  const recorder = manager.recorder('aurora-node');
  manager.addController({
    name: 'node-capacity',
    primary: nodes as never,
    primaryFilter: nodePlacementEvent,
    workers: options.workers ?? 1,
    async reconcile({ key }) {
      const node = nodes.get(key);
      if (!node) return undefined;
      const desired = desiredUnifiedMemoryMiB(node.metadata.labels);
      const patch = capacityPatch(node, desired);
      if (!patch) return undefined;
      await manager.client.patch(
        { apiVersion: 'v1', kind: 'Node', metadata: { name: node.metadata.name } },
        patch,
        { type: 'merge', subresource: 'status', fieldManager },
      );
      recorder.record(
        node,
        'Normal',
        desired === undefined ? 'UnifiedMemoryWithdrawn' : 'UnifiedMemoryAdvertised',
        'Advertise',
        desired === undefined
          ? `${unifiedMemoryResource} removed: the node is not a profiled Apple-silicon machine`
          : `${unifiedMemoryResource}: ${desired} MiB after the system's share`,
      );
      return undefined;
    },
  });
}
