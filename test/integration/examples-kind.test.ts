// examples/kind/kind-config.yaml is the sandbox's fleet for people with Docker: its workers must carry
// the labels the simulated fleet carries and the node profiler writes, and its node image must be the
// Kubernetes minor Aurora is built and tested on.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { nodeLabels } from '../../crds/labels.ts';
import { repoRoot } from '../../hack/local-cluster/control-plane.ts';
import { hospitalFleet, kwokNodeAnnotation, nodeManifest } from '../../hack/local-cluster/fleet.ts';
import { pinnedVersions } from '../../hack/local-cluster/versions.ts';
import { profileLabels } from '../../workloads/node-profiler/profile.ts';

interface KindNode {
  role: 'control-plane' | 'worker';
  image?: string;
  labels?: Record<string, unknown>;
}
const config = parse(readFileSync(join(repoRoot, 'examples', 'kind', 'kind-config.yaml'), 'utf8')) as {
  kind: string;
  apiVersion: string;
  nodes: KindNode[];
};
const workers = config.nodes.filter((n) => n.role === 'worker');
const appleMachines = hospitalFleet.filter((m) => m.apple);

/**
 * Labels the kubelet sets itself (and refuses in --node-labels as kind passes them, or overwrites),
 * and the one that marks a node kwok simulates: none of them belongs in a kind config.
 */
const notForKind = new Set(['kubernetes.io/arch', 'kubernetes.io/os', 'kubernetes.io/hostname', 'type']);

describe('the kind cluster of examples/kind', () => {
  it('is a kind v1alpha4 Cluster with one control plane', () => {
    expect(config.kind).toBe('Cluster');
    expect(config.apiVersion).toBe('kind.x-k8s.io/v1alpha4');
    expect(config.nodes.filter((n) => n.role === 'control-plane')).toHaveLength(1);
  });

  it('has a worker for each Apple-silicon machine of the fleet, labelled as the fleet labels it', () => {
    expect(workers).toHaveLength(appleMachines.length);
    workers.forEach((worker, i) => {
      const machine = appleMachines[i];
      if (!machine) throw new Error(`no fleet machine for worker ${i}`);
      const fleetLabels = Object.fromEntries(
        Object.entries(nodeManifest(machine).metadata?.labels ?? {}).filter(([key]) => !notForKind.has(key)),
      );
      expect(worker.labels, `worker ${i + 1} is ${machine.name}`).toEqual(fleetLabels);
    });
  });

  it('carries on its workers exactly the labels the node profiler would write for those machines', () => {
    workers.forEach((worker, i) => {
      const machine = appleMachines[i];
      const apple = machine?.apple;
      if (!machine || !apple) throw new Error(`no Apple machine for worker ${i}`);
      const written = Object.entries(
        profileLabels({
          appleSilicon: true,
          chip: apple.chip,
          cpuCores: machine.cpuCores,
          gpuCores: apple.gpuCores,
          unifiedMemoryGiB: machine.memoryGiB,
          evidence: 'the fleet',
        }),
      ).filter((entry): entry is [string, string] => entry[1] !== null);
      const auroraLabels = Object.entries(worker.labels ?? {}).filter(([key]) =>
        (Object.values(nodeLabels) as string[]).includes(key),
      );
      expect(Object.fromEntries(auroraLabels)).toEqual(Object.fromEntries(written));
    });
  });

  it('gives every label value as a string, as a Node label must be', () => {
    for (const worker of workers)
      for (const [key, value] of Object.entries(worker.labels ?? {}))
        expect(typeof value, `${key}: ${String(value)}`).toBe('string');
  });

  it('sets no label the kubelet owns, and no kwok marker', () => {
    for (const node of config.nodes)
      for (const key of Object.keys(node.labels ?? {})) expect(notForKind.has(key), key).toBe(false);
    expect(JSON.stringify(config)).not.toContain(kwokNodeAnnotation.key);
  });

  it('runs one kindest/node image, pinned by digest, of the Kubernetes minor in versions.env', () => {
    const images = new Set(config.nodes.map((n) => n.image));
    expect(images.size).toBe(1);
    const [image] = [...images];
    const match = /^kindest\/node:v(\d+)\.(\d+)\.(\d+)@sha256:[0-9a-f]{64}$/.exec(image ?? '');
    expect(match, String(image)).not.toBeNull();
    const kube = /^v(\d+)\.(\d+)\.(\d+)$/.exec(pinnedVersions().kube);
    expect(kube).not.toBeNull();
    // Same minor; kind publishes images only for some patches (none for v1.34.4), so the patch may differ.
    expect(match?.slice(1, 3)).toEqual(kube?.slice(1, 3));
  });
});
