import { Gauge } from 'prom-client';
import { unifiedMemoryResource } from '../../crds/labels.ts';
import { fieldManager } from '../../operator/apply.ts';
import { addKindController } from '../../operator/kind-controller.ts';
import type { Manager } from '../../operator/manager.ts';
import { nodeInformer, nodePlacementEvent } from '../../views/node.ts';
import { capacityPatch, desiredUnifiedMemoryMiB, unifiedMemoryFigures } from './desired.ts';

/**
 * Advertises each profiled Apple-silicon node's unified memory, less the system's share, as the
 * extended resource the scheduler packs pool pods by. A node that loses its profile loses the resource;
 * a kubelet that resets extended resources (a recreated node) gets it back on the next event.
 */
export function registerNodeCapacityController(manager: Manager, options: { workers?: number } = {}): void {
  const nodes = nodeInformer(manager);
  new Gauge({
    name: 'aurora_node_unified_memory_mib',
    help: 'Unified memory of each profiled Apple-silicon node, in MiB: total (its profile) and advertised (what it offers pool pods)',
    labelNames: ['node', 'state'],
    registers: [manager.metrics.registry],
    // Read from the cache when scraped, so a node that goes leaves no series; the leader's alone.
    collect() {
      this.reset();
      if (!manager.controllersRunning()) return;
      for (const node of nodes.list()) {
        const figures = unifiedMemoryFigures(node);
        if (!figures) continue;
        this.set({ node: node.metadata.name, state: 'total' }, figures.totalMiB);
        this.set({ node: node.metadata.name, state: 'advertised' }, figures.advertisedMiB);
      }
    },
  });
  addKindController(manager, {
    name: 'node-capacity',
    informer: nodes,
    // Node is a built-in kind: Aurora patches its capacity and reports on it through Events only.
    hasStatus: false,
    reportingController: 'aurora-node',
    primaryFilter: nodePlacementEvent,
    ...(options.workers ? { workers: options.workers } : {}),
    async reconcile(ctx, node) {
      const desired = desiredUnifiedMemoryMiB(node.metadata.labels);
      const patch = capacityPatch(node, desired);
      if (!patch) return undefined;
      await manager.client.patch(
        { apiVersion: 'v1', kind: 'Node', metadata: { name: node.metadata.name } },
        patch,
        { type: 'merge', subresource: 'status', fieldManager },
      );
      ctx.record(
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
