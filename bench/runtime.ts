// Benchmark of the operator runtime on a real control plane. Usage:
//   node bench/runtime.ts [--objects 1000] [--pods 10000] [--workers 8]
// 1. Baseline: create N child ConfigMaps directly, W requests at a time.
// 2. Operator: N Echo objects exist; time from the manager's start until all N children are applied by
//    W workers (list, watch, queue, reconcile, server-side apply), with the same client.
// 3. Memory: a separate operator process caches the Echoes, their children and P running pods; its peak
//    RSS (VmHWM) is read from /proc once every pod is in its cache.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ensureControlPlaneBinaries } from '../hack/local-cluster/binaries.ts';
import { repoRoot, startControlPlane } from '../hack/local-cluster/control-plane.ts';
import type { SimulatedMachine } from '../hack/local-cluster/fleet.ts';
import { waitFor } from '../hack/local-cluster/process.ts';
import { createKubeClient, type KubeClient } from '../operator/kube/client.ts';
import type { KubeObject } from '../operator/kube/types.ts';
import { silentLogger } from '../operator/log.ts';
import { createManager } from '../operator/manager.ts';
import { createMetrics } from '../operator/metrics.ts';
import { operatorEnv, operatorNodeFlags } from '../operator/node-flags.ts';
import {
  desiredEchoChild,
  type Echo,
  echoApiVersion,
  echoChildLabel,
  installEchoCrd,
  registerEchoController,
} from '../test/fixtures/echo-controller.ts';
import { inParallel } from './parallel.ts';

// The whole benchmark runs under the operator's V8 flags, so the in-process timing and the separate
// operator process measure what ships.
if (!operatorNodeFlags.every((f) => process.execArgv.includes(f))) {
  const child = spawn(process.execPath, [...operatorNodeFlags, ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
  process.exit(code);
}

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '1000' },
    pods: { type: 'string', default: '10000' },
    workers: { type: 'string', default: '8' },
  },
});
const objects = Number(values.objects);
const pods = Number(values.pods);
const workers = Number(values.workers);

const seconds = (ms: number) => (ms / 1000).toFixed(2);

// Pods get nodeName directly (no scheduling work) on nodes sized to hold them; kwok runs them.
const benchFleet: SimulatedMachine[] = Array.from({ length: 4 }, (_, i) => ({
  name: `bench-node-${i + 1}`,
  arch: 'arm64',
  cpuCores: 1000,
  memoryGiB: 4096,
  instanceType: 'bench',
  zone: 'bench',
}));

await ensureControlPlaneBinaries();
console.log(`Runtime benchmark: ${objects} objects, ${pods} pods, ${workers} workers/concurrent requests`);
const controlPlane = await startControlPlane({ fleet: benchFleet, log: (l) => console.log(l) });
let operator: ChildProcess | undefined;
try {
  const client: KubeClient = createKubeClient(controlPlane.access());
  await installEchoCrd(client);
  for (const ns of ['bench-direct', 'bench-operator', 'bench-pods']) {
    await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  }
  const names = Array.from({ length: objects }, (_, i) => `echo-${String(i).padStart(5, '0')}`);

  // 1. Baseline: the same children, created directly.
  console.log('Baseline: creating the children directly');
  const fakeOwner = (name: string, namespace: string): Echo => ({
    apiVersion: echoApiVersion,
    kind: 'Echo',
    metadata: { name, namespace, uid: '00000000-0000-0000-0000-000000000000' },
    spec: { message: `message of ${name}` },
  });
  const directStart = performance.now();
  await inParallel(
    names,
    workers,
    (name) => client.create(desiredEchoChild(fakeOwner(name, 'bench-direct'))),
    'direct',
  );
  const directMs = performance.now() - directStart;

  // 2. The operator reconciling the same number of owners into children.
  console.log('Operator: creating the Echo objects (not timed)');
  await inParallel(
    names,
    workers,
    (name) =>
      client.create({
        apiVersion: echoApiVersion,
        kind: 'Echo',
        metadata: { name, namespace: 'bench-operator' },
        spec: { message: `message of ${name}` },
      }),
    'echoes',
  );
  const manager = createManager({
    client,
    log: silentLogger,
    namespace: 'bench-operator',
    metrics: createMetrics({ defaultMetrics: false }),
  });
  registerEchoController(manager, { workers, withStatus: false });
  const children = manager.informer('v1', 'ConfigMap', { labelSelector: echoChildLabel });
  let applied = 0;
  let allApplied: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    allApplied = resolve;
  });
  children.addHandler((e) => {
    if (e.type === 'added' && ++applied === objects) allApplied();
  });
  console.log('Operator: reconciling');
  const operatorStart = performance.now();
  await manager.start();
  await done;
  const operatorMs = performance.now() - operatorStart;
  await manager.stop();

  // 3. Peak memory of an operator process whose caches hold everything.
  const kubeconfig = join(controlPlane.runDir, 'bench.kubeconfig');
  writeFileSync(kubeconfig, readFileSync(controlPlane.kubeconfigPath));
  console.log(`Memory: creating ${pods} pods for kwok to run`);
  const podNames = Array.from({ length: pods }, (_, i) => `pod-${String(i).padStart(5, '0')}`);
  await inParallel(
    podNames,
    workers,
    (name) =>
      client.create<KubeObject>({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'bench-pods', labels: { app: 'triage-server', 'pod-index': name } },
        spec: {
          nodeName: `bench-node-${(Number(name.slice(4)) % 4) + 1}`,
          containers: [
            {
              name: 'triage-server',
              image: 'registry.example/aurora/triage-server:1.0.0',
              ports: [{ containerPort: 8080, name: 'http' }],
              resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '512Mi' } },
              env: [{ name: 'MODEL_DIGEST', value: 'sha256:0000' }],
            },
          ],
        },
      }),
    'pods',
  );
  await waitFor(
    'kwok to run every pod',
    async () => {
      const list = await client.list('v1', 'Pod', {
        namespace: 'bench-pods',
        fieldSelector: 'status.phase!=Running',
        limit: 1,
      });
      return list.items.length === 0 ? true : undefined;
    },
    { timeoutMs: 600_000, intervalMs: 2_000 },
  );
  const port = 18_000 + Math.floor(Math.random() * 1000);
  operator = spawn(
    process.execPath,
    [
      ...operatorNodeFlags,
      join(repoRoot, 'test/fixtures/echo-operator.ts'),
      `--kubeconfig=${kubeconfig}`,
      '--leader-elect=false',
      `--http-port=${port}`,
      '--log-level=warn',
    ],
    { stdio: 'inherit', env: { ...process.env, ...operatorEnv, AURORA_BENCH_CACHE_PODS: '1' } },
  );
  const cached = await waitFor(
    'the operator to cache every pod',
    async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const podCount = Number(text.match(/aurora_cache_objects\{kind="Pod"\} (\d+)/)?.[1] ?? 0);
      return podCount >= pods ? text : undefined;
    },
    { timeoutMs: 300_000, intervalMs: 1_000 },
  );
  const cacheLines = cached.split('\n').filter((l) => l.startsWith('aurora_cache_objects{'));
  const metric = (name: string) =>
    Number(cached.match(new RegExp(`^${name} (\\S+)`, 'm'))?.[1] ?? Number.NaN) / 2 ** 20;
  const heap = `V8 heap ${metric('nodejs_heap_size_used_bytes').toFixed(0)} MiB used of ${metric('nodejs_heap_size_total_bytes').toFixed(0)}, external ${metric('nodejs_external_memory_bytes').toFixed(0)} MiB`;
  const status = readFileSync(`/proc/${operator.pid}/status`, 'utf8');
  const kib = (field: string) =>
    Number(status.match(new RegExp(`${field}:\\s+(\\d+) kB`))?.[1] ?? Number.NaN);
  const peakRssMiB = kib('VmHWM') / 1024;
  const rssMiB = kib('VmRSS') / 1024;

  const ratio = operatorMs / directMs;
  console.log(`
Results (${objects} objects, ${workers} workers / concurrent requests):
  direct creation of ${objects} children:        ${seconds(directMs)} s (${(objects / (directMs / 1000)).toFixed(0)}/s)
  operator reconciling ${objects} owners:        ${seconds(operatorMs)} s (${(objects / (operatorMs / 1000)).toFixed(0)}/s)
  ratio operator / direct:                 ${ratio.toFixed(2)} (goal ≤ 1.5)
  operator cache: ${cacheLines.map((l) => l.replace('aurora_cache_objects', '')).join(', ')}
  operator RSS with ${pods} pods cached:   ${rssMiB.toFixed(0)} MiB now, ${peakRssMiB.toFixed(0)} MiB peak (goal ≤ 150 MiB)
  operator memory, once cached:            ${heap}`);
} finally {
  operator?.kill('SIGTERM');
  await controlPlane.stop();
}
