import { describe, expect, it } from 'vitest';
import { unifiedMemoryResource } from '../crds/labels.ts';
import { nodeView, placementChanged } from './node.ts';

const apple = (gib: string) => ({
  'aurora.health/apple-silicon': 'true',
  'aurora.health/unified-memory-gib': gib,
});

describe('nodeView and placementChanged', () => {
  const raw = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n', labels: apple('24'), managedFields: [{}], annotations: { big: 'x' } },
    spec: { podCIDR: '10.0.0.0/24' },
    status: {
      capacity: { cpu: '10' },
      allocatable: { cpu: '10' },
      images: [{ names: ['a'], sizeBytes: 1 }],
      conditions: [
        { type: 'Ready', status: 'True', lastHeartbeatTime: '2026-11-23T10:00:00Z' },
        { type: 'MemoryPressure', status: 'False' },
      ],
    },
  };

  it('keeps labels, allocatable and readiness, drops images and heartbeats', () => {
    const view = nodeView(raw);
    expect(view.status?.conditions).toEqual([{ type: 'Ready', status: 'True' }]);
    expect(view.metadata.labels).toEqual(apple('24'));
    expect(JSON.stringify(view)).not.toContain('images');
    expect(view.metadata.managedFields).toBeUndefined();
  });

  it('ignores a heartbeat and sees a label, readiness or resource change', () => {
    const before = nodeView(raw);
    const heartbeat = nodeView({
      ...raw,
      status: {
        ...raw.status,
        conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: '2026-11-23T10:00:20Z' }],
      },
    });
    expect(placementChanged(before, heartbeat)).toBe(false);
    expect(
      placementChanged(before, nodeView({ ...raw, metadata: { ...raw.metadata, labels: apple('64') } })),
    ).toBe(true);
    expect(
      placementChanged(
        before,
        nodeView({ ...raw, status: { ...raw.status, conditions: [{ type: 'Ready', status: 'False' }] } }),
      ),
    ).toBe(true);
    expect(
      placementChanged(
        before,
        nodeView({
          ...raw,
          status: { ...raw.status, allocatable: { cpu: '10', [unifiedMemoryResource]: '20480' } },
        }),
      ),
    ).toBe(true);
    expect(placementChanged(undefined, before)).toBe(true);
  });
});
