import type { V1Node } from '@kubernetes/client-node';
import { type AppleChip, nodeLabels } from '../../crds/labels.ts';
import { pinnedVersions } from './versions.ts';

/** Annotation kwok selects the nodes it simulates by. */
export const kwokNodeAnnotation = { key: 'kwok.x-k8s.io/node', value: 'fake' } as const;

export interface SimulatedMachine {
  name: string;
  arch: 'arm64' | 'amd64';
  cpuCores: number;
  memoryGiB: number;
  instanceType: string;
  zone: string;
  apple?: { chip: AppleChip; gpuCores: number };
  /** Pods the kubelet admits; 110 (Kubernetes' default) unless a benchmark packs more. */
  maxPods?: number;
}

/** The fleet an emergency department runs: three Mac mini M4, one Mac mini M4 Pro, two cloud nodes. */
export const hospitalFleet: readonly SimulatedMachine[] = [
  ...[1, 2, 3].map(
    (i): SimulatedMachine => ({
      name: `mac-mini-m4-${i}`,
      arch: 'arm64',
      cpuCores: 10,
      memoryGiB: 24,
      instanceType: 'mac-mini-m4',
      zone: 'on-prem-er',
      apple: { chip: 'm4', gpuCores: 10 },
    }),
  ),
  {
    name: 'mac-mini-m4-pro-1',
    arch: 'arm64',
    cpuCores: 12,
    memoryGiB: 64,
    instanceType: 'mac-mini-m4-pro',
    zone: 'on-prem-er',
    apple: { chip: 'm4-pro', gpuCores: 16 },
  },
  ...[1, 2].map(
    (i): SimulatedMachine => ({
      name: `cloud-amd64-${i}`,
      arch: 'amd64',
      cpuCores: 8,
      memoryGiB: 32,
      instanceType: 'm7i.2xlarge',
      zone: `cloud-zone-${i}`,
    }),
  ),
];

/** The Node object kwok takes over: labels as the node profiler would set them, capacity as the machine has. */
export function nodeManifest(machine: SimulatedMachine): V1Node {
  const labels: Record<string, string> = {
    'kubernetes.io/arch': machine.arch,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/hostname': machine.name,
    'node.kubernetes.io/instance-type': machine.instanceType,
    'topology.kubernetes.io/zone': machine.zone,
    type: 'kwok',
  };
  if (machine.apple) {
    labels[nodeLabels.appleSilicon] = 'true';
    labels[nodeLabels.chip] = machine.apple.chip;
    labels[nodeLabels.cpuCores] = String(machine.cpuCores);
    labels[nodeLabels.gpuCores] = String(machine.apple.gpuCores);
    labels[nodeLabels.unifiedMemoryGiB] = String(machine.memoryGiB);
  }
  const resources = {
    cpu: String(machine.cpuCores),
    memory: `${machine.memoryGiB}Gi`,
    pods: String(machine.maxPods ?? 110),
    'ephemeral-storage': '500Gi',
  };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: machine.name,
      labels,
      annotations: {
        [kwokNodeAnnotation.key]: kwokNodeAnnotation.value,
        'node.alpha.kubernetes.io/ttl': '0',
      },
    },
    spec: {},
    status: {
      capacity: resources,
      allocatable: resources,
      nodeInfo: {
        architecture: machine.arch,
        operatingSystem: 'linux',
        kubeletVersion: pinnedVersions().kube,
        kubeProxyVersion: pinnedVersions().kube,
        bootID: '',
        containerRuntimeVersion: '',
        kernelVersion: '',
        machineID: '',
        osImage: '',
        systemUUID: '',
      },
    },
  };
}
