// The node profiler as the DaemonSet runs it: a process that reads the machine (here a /proc built from
// outputs recorded on a real Asahi Mac) and labels its Node in the real API server.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { repoRoot } from '../../hack/local-cluster/control-plane.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { testAccess, uniqueSuffix } from '../harness/cluster.ts';
import { profilerOnNode } from '../harness/profiler.ts';

const execFileAsync = promisify(execFile);
const client = createKubeClient(testAccess());
const fixtures = join(repoRoot, 'workloads/node-profiler/fixtures');
const nodeName = `profiled-mac-${uniqueSuffix()}`;
const nodeRef = { apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName } };
let profiler: Awaited<ReturnType<typeof profilerOnNode>> | undefined;

beforeAll(async () => {
  // Not a kwok node: nothing schedules to it, and it starts with stale labels the profiler must fix.
  await client.create({
    ...nodeRef,
    metadata: {
      name: nodeName,
      labels: {
        'aurora.health/chip': 'm4-max',
        'aurora.health/gpu-cores': '40',
        'aurora.health/test': 'true',
      },
    },
    spec: { taints: [{ key: 'aurora.health/test', effect: 'NoSchedule' }] },
  } as KubeObject);
  profiler = await profilerOnNode(nodeName);
});

afterAll(async () => {
  await profiler?.cleanup();
  await client.delete(nodeRef);
});

/** Runs the profiler once, as the DaemonSet's container would, against the given /proc. */
function runProfilerOnce(procRoot: string) {
  return execFileAsync(
    join(repoRoot, 'node_modules/.bin/node'),
    [join(repoRoot, 'workloads/node-profiler/main.ts')],
    {
      env: {
        ...process.env,
        NODE_NAME: nodeName,
        // As the chart's profiler on this node: its RBAC and its admission policy apply.
        KUBECONFIG: profiler?.kubeconfigPath ?? '',
        AURORA_PROC_ROOT: procRoot,
        AURORA_PROFILE_SOURCE: 'linux',
        AURORA_PROFILE_INTERVAL_SECONDS: '0',
      },
      timeout: 30_000,
    },
  );
}

async function profile(procRoot: string) {
  const run = await runProfilerOnce(procRoot);
  expect(run.stdout).toContain('node labelled');
  return (await client.get<KubeObject>(nodeRef))?.metadata.labels ?? {};
}

it('labels an Asahi Mac mini M1 from its /proc/cpuinfo and device tree, replacing stale labels', async () => {
  const proc = mkdtempSync(join(tmpdir(), 'aurora-proc-'));
  writeFileSync(join(proc, 'cpuinfo'), readFileSync(join(fixtures, 'linux-cpuinfo-asahi-mac-mini-m1.txt')));
  mkdirSync(join(proc, 'device-tree'));
  // The kernel separates compatible entries with NUL bytes.
  const compatible = readFileSync(
    join(fixtures, 'linux-device-tree-compatible-asahi-macbook-pro-m1.txt'),
    'utf8',
  );
  writeFileSync(join(proc, 'device-tree/compatible'), `${compatible.trim().split('\n').join('\0')}\0`);
  // MemTotal as a 16 GB Mac mini's kernel reports it (constructed; no recorded meminfo was found).
  writeFileSync(join(proc, 'meminfo'), 'MemTotal:       16067780 kB\nMemFree:         9000000 kB\n');
  const labels = await profile(proc);
  expect(labels).toMatchObject({
    'aurora.health/apple-silicon': 'true',
    'aurora.health/chip': 'm1',
    'aurora.health/cpu-cores': '3',
    'aurora.health/unified-memory-gib': '16',
    'aurora.health/test': 'true',
  });
  // The stale GPU figure is gone: Linux does not tell GPU cores, so no label rather than a wrong one.
  expect(labels['aurora.health/gpu-cores']).toBeUndefined();
});

it('leaves the labels alone when it cannot read /proc, and fails so the DaemonSet shows it', async () => {
  const before = (await client.get<KubeObject>(nodeRef))?.metadata.labels ?? {};
  const failed = await runProfilerOnce(join(tmpdir(), 'no-such-proc')).then(
    () => undefined,
    (err: { code?: number; stderr?: string }) => err,
  );
  expect(failed?.code).toBe(1);
  expect(failed?.stderr).toContain('cannot read');
  expect((await client.get<KubeObject>(nodeRef))?.metadata.labels).toEqual(before);
});

it('removes the profile from a node that turns out not to be a Mac', async () => {
  const proc = mkdtempSync(join(tmpdir(), 'aurora-proc-'));
  writeFileSync(join(proc, 'cpuinfo'), 'processor\t: 0\nvendor_id\t: GenuineIntel\n');
  writeFileSync(join(proc, 'meminfo'), 'MemTotal:       32795512 kB\n');
  const labels = await profile(proc);
  expect(
    Object.keys(labels).filter((l) => l.startsWith('aurora.health/') && l !== 'aurora.health/test'),
  ).toEqual([]);
});
