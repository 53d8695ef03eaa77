// Aurora at a hospital group's scale, on a real control plane. Usage:
//   node bench/scale.ts [--sizes 0.1,1] [--window-seconds 60] [--samples 100]
// At size 1: 500 TriageModels, each served by an InferencePool; 500 CareQueues of five categories on one
// Redis; 200 HealingPolicies watching 2,000 Deployments; 20,000 pods on simulated Mac minis (the
// healed Deployments' pods, the queues' consumers and the pools' triage servers). One operator process
// (cmd/operator.ts, as the chart's ServiceAccount) runs them all. For each size, on a control plane and
// Redis of its own, it prints:
//   - the operator's peak RSS (VmHWM) over the whole run, and its RSS at rest;
//   - its CPU seconds per second while steady (everything reconciled, arrivals flowing);
//   - Redis commands per second spent observing queues (the server's count, less the benchmark's own);
//   - the time from a change to any one object's spec to its status reflecting it (p50, p99).
// Sizes run smallest first, so the growth from a tenth to the full size is visible.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { exampleModelFiles } from '../hack/example-model/generate.ts';
import { ensureControlPlaneBinaries } from '../hack/local-cluster/binaries.ts';
import { installChartForOperator } from '../hack/local-cluster/chart.ts';
import {
  type ControlPlane,
  freePort,
  parseYamlObjects,
  repoRoot,
  startControlPlane,
} from '../hack/local-cluster/control-plane.ts';
import type { SimulatedMachine } from '../hack/local-cluster/fleet.ts';
import { type ManagedProcess, startProcess, waitFor } from '../hack/local-cluster/process.ts';
import { defaultServices, type PrivateRedis, startPrivateRedis } from '../hack/local-cluster/services.ts';
import { percentile } from '../model/acceptance.ts';
import { createKubeClient } from '../operator/kube/client.ts';
import type { KubeObject } from '../operator/kube/types.ts';
import { operatorEnv, operatorNodeFlags } from '../operator/node-flags.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '0.1,1' },
    'window-seconds': { type: 'string', default: '60' },
    samples: { type: 'string', default: '100' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const windowSeconds = Number(values['window-seconds']);
const samples = Number(values.samples);
if (sizes.some((s) => !(s > 0 && s <= 1)) || !(windowSeconds >= 10) || !(samples >= 10)) {
  console.error('--sizes takes fractions in (0, 1]; --window-seconds at least 10; --samples at least 10');
  process.exit(2);
}

/** The full size, as the issue states it. */
const full = {
  models: 500,
  queues: 500,
  policies: 200,
  deploymentsPerPolicy: 10,
  /** 2,000 healed Deployments × 9 + 500 queues × 2 consumers + 500 pools × 2 servers = 20,000 pods. */
  podsPerHealedDeployment: 9,
  consumersPerQueue: 2,
  serversPerPool: 2,
};
/** Objects of each kind per namespace: a hospital group's sites, ten models each. */
const modelsPerNamespace = 10;

const seconds = (ms: number) => (ms / 1000).toFixed(1);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const example = (file: string) =>
  parseYamlObjects(readFileSync(join(repoRoot, 'examples', file), 'utf8'))[0] as KubeObject & {
    spec: Record<string, unknown>;
  };

/** Runs task over items with at most `concurrency` in flight, printing progress every fifth. */
async function inParallel<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T) => Promise<unknown>,
  label: string,
): Promise<void> {
  let next = 0;
  let done = 0;
  const every = Math.max(1, Math.ceil(items.length / 5));
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await task(item);
        if (++done % every === 0 || done === items.length)
          console.log(`    ${label}: ${done}/${items.length}`);
      }
    }),
  );
}

/** The operator process's resident memory and CPU time, from /proc. */
function processUsage(pid: number) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) =>
    Number(status.match(new RegExp(`${field}:\\s+(\\d+) kB`))?.[1] ?? Number.NaN);
  // utime and stime, fields 14 and 15, in clock ticks (100 a second on Linux); the command name in
  // parentheses may hold spaces, so fields are counted after it.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / 100;
  return { rssMiB: kib('VmRSS') / 1024, peakRssMiB: kib('VmHWM') / 1024, cpuSeconds };
}

/** Calls per command so far, from INFO commandstats (the server's own count, every client's). */
async function redisCommandCounts(redis: Redis): Promise<Map<string, number>> {
  const info = await redis.info('commandstats');
  const calls = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_(\S+):calls=(\d+)/gm)) calls.set(m[1] as string, Number(m[2]));
  return calls;
}

interface Figures {
  size: number;
  counts: string;
  setupSeconds: number;
  settleSeconds: number;
  peakRssMiB: number;
  restRssMiB: number;
  cpuPerSecond: number;
  redisPerSecond: number;
  redisTop: string;
  reflectP50: number;
  reflectP99: number;
}

async function runSize(size: number): Promise<Figures> {
  const started = Date.now();
  const n = {
    models: Math.round(full.models * size),
    queues: Math.round(full.queues * size),
    policies: Math.round(full.policies * size),
  };
  const healed = n.policies * full.deploymentsPerPolicy;
  const pods =
    healed * full.podsPerHealedDeployment +
    n.queues * full.consumersPerQueue +
    n.models * full.serversPerPool;
  const counts = `${n.models} models and pools, ${n.queues} queues, ${n.policies} policies over ${healed} Deployments, ${pods} pods`;
  console.log(`\n== size ${size}: ${counts}`);
  // Mac mini M4 Pro nodes with room for the pods: the scheduler, not the fleet, is what is tested.
  const nodes = Math.ceil(pods / 200) + 2;
  const fleet: SimulatedMachine[] = Array.from({ length: nodes }, (_, i) => ({
    name: `mac-mini-m4-pro-${String(i + 1).padStart(3, '0')}`,
    arch: 'arm64',
    cpuCores: 14,
    memoryGiB: 64,
    instanceType: 'mac-mini-m4-pro',
    zone: `site-${i % 4}`,
    apple: { chip: 'm4-pro', gpuCores: 20 },
    maxPods: 250,
  }));
  let cp: ControlPlane | undefined;
  let redisServer: PrivateRedis | undefined;
  let operator: ManagedProcess | undefined;
  let redis: Redis | undefined;
  const timers: NodeJS.Timeout[] = [];
  try {
    cp = await startControlPlane({ fleet, auditLog: false, componentApiQps: 400, log: console.log });
    const admin = createKubeClient(cp.access());
    const operatorKubeconfig = join(cp.runDir, 'operator.kubeconfig');
    await installChartForOperator(admin, {
      release: 'aurora',
      namespace: 'aurora-system',
      values: { operator: { replicas: 0 } },
      adminKubeconfigPath: cp.kubeconfigPath,
      operatorKubeconfigPath: operatorKubeconfig,
    });
    redisServer = await startPrivateRedis(await freePort(), { pidDir: join(cp.runDir, 'pids') });
    redis = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
    console.log(
      `  control plane (${nodes} nodes), chart and Redis ready (${seconds(Date.now() - started)} s)`,
    );

    const namespaces = Array.from(
      { length: Math.ceil(n.models / modelsPerNamespace) },
      (_, i) => `site-${String(i).padStart(2, '0')}`,
    );
    const nsOf = (i: number) => namespaces[Math.floor(i / modelsPerNamespace) % namespaces.length] as string;
    const modelConfigMap = parseYamlObjects(
      readFileSync(exampleModelFiles.configMap, 'utf8'),
    )[0] as KubeObject;
    await inParallel(
      namespaces,
      8,
      async (ns) => {
        await admin.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
        await admin.create({ ...modelConfigMap, metadata: { ...modelConfigMap.metadata, namespace: ns } });
        for (const [name, url] of [
          ['er-redis', redisServer?.url ?? ''],
          ['aurora-audit-db', defaultServices.postgresUrl],
        ] as const)
          await admin.create({
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: { name, namespace: ns },
            stringData: { url },
          });
      },
      'namespaces',
    );

    // The workloads first, as a hospital has them before Aurora: healed Deployments and consumers.
    const deployment = (name: string, ns: string, replicas: number, labels: Record<string, string>) => ({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace: ns, labels: { app: name, ...labels } },
      spec: {
        replicas,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name, ...labels } },
          spec: {
            terminationGracePeriodSeconds: 0,
            containers: [{ name: 'app', image: 'registry.example/ward-service:1' }],
          },
        },
      },
    });
    const healedItems = Array.from({ length: healed }, (_, i) => i);
    await inParallel(
      healedItems,
      16,
      (i) => {
        const policy = Math.floor(i / full.deploymentsPerPolicy);
        return admin.create(
          deployment(`service-${i}`, nsOf(policy * 2.5), full.podsPerHealedDeployment, {
            policy: `p-${policy}`,
          }),
        );
      },
      'healed Deployments',
    );
    const queueItems = Array.from({ length: n.queues }, (_, i) => i);
    await inParallel(
      queueItems,
      16,
      (i) => admin.create(deployment(`consumers-${i}`, nsOf(i), full.consumersPerQueue, {})),
      'consumer Deployments',
    );
    const expectedReady = healed * full.podsPerHealedDeployment + n.queues * full.consumersPerQueue;
    const podsStart = Date.now();
    await waitFor(
      'every workload pod running',
      async () => {
        let ready = 0;
        for (const ns of namespaces) {
          const { items } = await admin.list<KubeObject & { status?: { readyReplicas?: number } }>(
            'apps/v1',
            'Deployment',
            { namespace: ns },
          );
          for (const d of items) ready += d.status?.readyReplicas ?? 0;
        }
        console.log(`    pods running: ${ready}/${expectedReady} (${seconds(Date.now() - podsStart)} s)`);
        return ready >= expectedReady ? true : undefined;
      },
      { timeoutMs: 3_600_000, intervalMs: 15_000 },
    );

    // The operator, as the chart's ServiceAccount, before Aurora's objects are applied (as Argo CD would).
    const port = await freePort();
    operator = startProcess(
      'aurora-operator',
      process.execPath,
      [
        ...operatorNodeFlags,
        join(repoRoot, 'cmd', 'operator.ts'),
        `--kubeconfig=${operatorKubeconfig}`,
        '--leader-elect=false',
        `--http-port=${port}`,
        '--log-level=warn',
        `--postgres-url=${defaultServices.postgresUrl}`,
        `--postgres-schema=bench_scale_${Date.now()}`,
      ],
      { logDir: join(cp.runDir, 'logs'), pidDir: join(cp.runDir, 'pids'), env: operatorEnv },
    );
    const pid = operator.pid;
    let peakRssMiB = 0;
    timers.push(
      setInterval(() => {
        if (operator?.isRunning()) peakRssMiB = Math.max(peakRssMiB, processUsage(pid).peakRssMiB);
      }, 1_000),
    );
    await waitFor(
      'the operator to be ready',
      async () => {
        if (!operator?.isRunning()) throw new Error(`the operator exited:\n${await operator?.logTail()}`);
        return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok ? true : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 500 },
    );

    const model = example('triage-model.yaml');
    const pool = example('inference-pool.yaml');
    const queue = example('care-queue.yaml');
    const policy = example('healing-policy.yaml');
    const named = (
      o: KubeObject & { spec: Record<string, unknown> },
      name: string,
      ns: string,
      spec = {},
    ) => ({
      ...o,
      metadata: { name, namespace: ns },
      spec: { ...o.spec, ...spec },
    });
    const applyStart = Date.now();
    const modelItems = Array.from({ length: n.models }, (_, i) => i);
    await inParallel(
      modelItems,
      8,
      async (i) => {
        await admin.create(named(model, `model-${i}`, nsOf(i)));
        await admin.create(
          named(pool, `pool-${i}`, nsOf(i), {
            modelRef: { name: `model-${i}` },
            minReplicas: full.serversPerPool,
            maxReplicas: full.serversPerPool + 1,
          }),
        );
      },
      'TriageModels and InferencePools',
    );
    await inParallel(
      queueItems,
      8,
      (i) =>
        admin.create(
          named(queue, `queue-${i}`, nsOf(i), {
            scaleTargetRef: { kind: 'Deployment', name: `consumers-${i}` },
            minReplicas: full.consumersPerQueue,
            maxReplicas: full.consumersPerQueue + 2,
          }),
        ),
      'CareQueues',
    );
    const policyItems = Array.from({ length: n.policies }, (_, i) => i);
    await inParallel(
      policyItems,
      8,
      (i) =>
        admin.create(
          named(policy, `policy-${i}`, nsOf(i * 2.5), {
            selector: { labelSelector: { matchLabels: { policy: `p-${i}` } }, kinds: ['Deployment'] },
          }),
        ),
      'HealingPolicies',
    );

    // Arrivals on every queue's streams, a tenth of a patient a second per queue.
    const categories = (queue.spec.categories as Array<{ name: string }>).map((c) => c.name);
    let benchCommands = 0;
    timers.push(
      setInterval(() => {
        const pipeline = redis?.pipeline();
        if (!pipeline) return;
        const count = Math.max(1, Math.round(n.queues / 10));
        for (let k = 0; k < count; k++) {
          const i = Math.floor(Math.random() * n.queues);
          const c = categories[Math.floor(Math.random() * categories.length)];
          pipeline.xadd(`aurora:${nsOf(i)}:queue-${i}:${c}`, '*', 'features', '{}');
        }
        benchCommands += count;
        void pipeline.exec().catch(() => {});
      }, 1_000),
    );

    const kinds = ['TriageModel', 'InferencePool', 'CareQueue', 'HealingPolicy'];
    type Aurora = KubeObject & { status?: { observedGeneration?: number; conditions?: unknown[] } };
    await waitFor(
      'every object reconciled',
      async () => {
        let left = 0;
        let total = 0;
        for (const ns of namespaces)
          for (const kind of kinds) {
            const { items } = await admin.list<Aurora>('aurora.health/v1alpha1', kind, { namespace: ns });
            total += items.length;
            left += items.filter(
              (o) => o.status?.observedGeneration !== o.metadata.generation || !o.status?.conditions?.length,
            ).length;
          }
        console.log(`    reconciled: ${total - left}/${total} (${seconds(Date.now() - applyStart)} s)`);
        return left === 0 ? true : undefined;
      },
      { timeoutMs: 3_600_000, intervalMs: 10_000 },
    );
    const settleSeconds = (Date.now() - applyStart) / 1000;

    // Steady state: CPU and Redis commands over a window.
    console.log(`  steady: measuring for ${windowSeconds} s`);
    await sleep(10_000);
    const before = { usage: processUsage(pid), redis: await redisCommandCounts(redis), bench: benchCommands };
    const windowStart = Date.now();
    await sleep(windowSeconds * 1000);
    const after = { usage: processUsage(pid), redis: await redisCommandCounts(redis), bench: benchCommands };
    const elapsed = (Date.now() - windowStart) / 1000;
    const cpuPerSecond = (after.usage.cpuSeconds - before.usage.cpuSeconds) / elapsed;
    // The server's count, less the benchmark's own XADDs and its one INFO call.
    const perCommand = [...after.redis].map(([command, calls]) => {
      const own = command === 'xadd' ? after.bench - before.bench : command === 'info' ? 1 : 0;
      return [command, (calls - (before.redis.get(command) ?? 0) - own) / elapsed] as const;
    });
    const redisPerSecond = perCommand.reduce((sum, [, rate]) => sum + rate, 0);
    const redisTop = perCommand
      .filter(([, rate]) => rate >= 0.5)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([command, rate]) => `${command} ${rate.toFixed(0)}`)
      .join(', ');

    // Reflection: a change to one object's spec, at random, and the time until its status shows it.
    console.log(`  reflection: ${samples} changes, one at a time`);
    const reflect: number[] = [];
    const changes: Record<string, (i: number, k: number) => [string, Record<string, unknown>]> = {
      TriageModel: (i, k) => [`model-${i}`, { acceptance: { maxLatencyMs: { p99: 1_000 + (k % 2) } } }],
      InferencePool: (i, k) => [`pool-${i}`, { maxReplicas: full.serversPerPool + 1 + (k % 2) }],
      CareQueue: (i, k) => [`queue-${i}`, { maxReplicas: full.consumersPerQueue + 2 + (k % 2) }],
      HealingPolicy: (i, k) => [`policy-${i}`, { guardrails: { cooldownSeconds: 120 + (k % 2) } }],
    };
    for (let k = 0; k < samples; k++) {
      const kind = kinds[k % kinds.length] as string;
      const i = Math.floor(
        Math.random() * (kind === 'HealingPolicy' ? n.policies : kind === 'CareQueue' ? n.queues : n.models),
      );
      const [name, spec] = (changes[kind] as (i: number, k: number) => [string, Record<string, unknown>])(
        i,
        k,
      );
      const ns = kind === 'HealingPolicy' ? nsOf(i * 2.5) : nsOf(i);
      const ref = { apiVersion: 'aurora.health/v1alpha1', kind, metadata: { name, namespace: ns } };
      const t0 = Date.now();
      const changed = await admin.patch<Aurora>(ref, { spec }, { type: 'merge' });
      const generation = changed.metadata.generation ?? 0;
      await waitFor(
        `${kind} ${ns}/${name} to reflect its change`,
        async () =>
          ((await admin.get<Aurora>(ref))?.status?.observedGeneration ?? 0) >= generation ? true : undefined,
        { timeoutMs: 120_000, intervalMs: 20 },
      );
      reflect.push((Date.now() - t0) / 1000);
      if ((k + 1) % 25 === 0) console.log(`    ${k + 1}/${samples} changes reflected`);
    }
    reflect.sort((a, b) => a - b);
    const rest = processUsage(pid);
    peakRssMiB = Math.max(peakRssMiB, rest.peakRssMiB);
    return {
      size,
      counts,
      setupSeconds: (applyStart - started) / 1000,
      settleSeconds,
      peakRssMiB,
      restRssMiB: rest.rssMiB,
      cpuPerSecond,
      redisPerSecond,
      redisTop,
      reflectP50: percentile(reflect, 50),
      reflectP99: percentile(reflect, 99),
    };
  } finally {
    for (const t of timers) clearInterval(t);
    redis?.disconnect();
    await operator?.stop(10_000);
    await redisServer?.cleanup();
    await cp?.stop();
  }
}

await ensureControlPlaneBinaries();
const results: Figures[] = [];
for (const size of sizes) results.push(await runSize(size));
console.log('\nResults (one operator process; goal: under 500 MiB at size 1):');
for (const r of results)
  console.log(`  size ${r.size}: ${r.counts}
    all reconciled ${r.settleSeconds.toFixed(0)} s after the objects were applied (setup ${r.setupSeconds.toFixed(0)} s)
    operator peak RSS ${r.peakRssMiB.toFixed(0)} MiB, ${r.restRssMiB.toFixed(0)} MiB at rest; CPU ${r.cpuPerSecond.toFixed(3)} s/s while steady
    Redis commands observing queues: ${r.redisPerSecond.toFixed(0)}/s (${r.redisTop})
    change to status: p50 ${r.reflectP50.toFixed(2)} s, p99 ${r.reflectP99.toFixed(2)} s`);
process.exit(0);
