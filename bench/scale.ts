// Aurora at a hospital group's scale, on a real control plane. Usage:
//   node bench/scale.ts [--sizes 0.1,1] [--window-seconds 60] [--samples 100] [--operator-flag=--x=y ...]
// At size 1: 500 TriageModels, each served by an InferencePool; 500 CareQueues of five categories on one
// Redis; 200 HealingPolicies watching 2,000 Deployments; 20,000 pods on simulated Mac minis (the
// healed Deployments' pods, the queues' consumers and the pools' triage servers). One operator process
// (cmd/operator.ts, as the chart's ServiceAccount) runs them all. For each size, on a control plane and
// Redis of its own, it prints:
//   - the operator's peak RSS (VmHWM) over the whole run, and its RSS at rest;
//   - its CPU seconds per second while steady (everything reconciled, arrivals flowing);
//   - Redis commands per second spent observing queues (read with MONITOR: those the operator sends, and
//     apart those its scripts run inside Redis);
//   - the time from a change to any one object's spec to its status reflecting it (p50, p99).
// Sizes run smallest first, so the growth from a tenth to the full size is visible.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
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
import { appDeployment } from '../hack/local-cluster/deployments.ts';
import type { SimulatedMachine } from '../hack/local-cluster/fleet.ts';
import { operatorReady, startLocalOperator } from '../hack/local-cluster/operator.ts';
import { type ManagedProcess, waitFor } from '../hack/local-cluster/process.ts';
import { defaultServices, type PrivateRedis, startPrivateRedis } from '../hack/local-cluster/services.ts';
import { percentile } from '../model/acceptance.ts';
import { createKubeClient } from '../operator/kube/client.ts';
import type { KubeObject } from '../operator/kube/types.ts';
import { inParallel } from './parallel.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '0.1,1' },
    'window-seconds': { type: 'string', default: '60' },
    samples: { type: 'string', default: '100' },
    // Passed to the operator as they are, to try its settings at scale (--operator-flag=--queue-workers=4).
    'operator-flag': { type: 'string', multiple: true, default: [] },
  },
});
const sizes = values.sizes.split(',').map(Number);
const windowSeconds = Number(values['window-seconds']);
const samples = Number(values.samples);
const redisWindowSeconds = 10;
const reflectTimeoutSeconds = 120;
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

/**
 * What the operator asks of Redis, watched with MONITOR for a while: the commands it sends (a script
 * call counts once) and, apart, those its scripts run inside Redis. The benchmark's own arrivals (XADD)
 * and the MONITOR itself are left out; nothing else talks to this Redis.
 */
async function operatorRedisRates(redis: Redis, seconds: number) {
  const monitor = await redis.monitor();
  const sent = new Map<string, number>();
  let inScripts = 0;
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    const command = String(args[0] ?? '').toLowerCase();
    if (source === 'lua') inScripts++;
    else if (command !== 'xadd' && command !== 'monitor') sent.set(command, (sent.get(command) ?? 0) + 1);
  });
  await sleep(seconds * 1000);
  monitor.disconnect();
  const total = [...sent.values()].reduce((a, b) => a + b, 0);
  return {
    redisSentPerSecond: total / seconds,
    redisInScriptsPerSecond: inScripts / seconds,
    redisTop: [...sent]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([command, calls]) => `${command} ${(calls / seconds).toFixed(0)}`)
      .join(', '),
  };
}

type Spec = Record<string, unknown>;

/** The operator's API requests so far by method, and its total wait for the client rate limiter. */
interface ApiCounters {
  requests: Map<string, number>;
  waitSeconds: number;
  waits: number;
}

/** From the operator's /metrics: per controller, reconciles so far and keys waiting; and its API use. */
async function operatorCounters(
  port: number,
): Promise<{ controllers: Map<string, { reconciles: number; depth: number }>; api: ApiCounters }> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  /** Each series of a metric: one label's value, and the sample. */
  const series = (name: string, label: string) =>
    [...text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))].map((m) => ({
      label: m[1]?.match(new RegExp(`${label}="([^"]+)"`))?.[1],
      value: Number(m[2]),
    }));
  const counters = new Map<string, { reconciles: number; depth: number }>();
  const api: ApiCounters = { requests: new Map(), waitSeconds: 0, waits: 0 };
  for (const { label: method = '?', value } of series('rest_client_requests_total', 'method'))
    api.requests.set(method, (api.requests.get(method) ?? 0) + value);
  for (const { value } of series('rest_client_rate_limiter_duration_seconds_sum', 'verb'))
    api.waitSeconds += value;
  for (const { value } of series('rest_client_rate_limiter_duration_seconds_count', 'verb'))
    api.waits += value;
  const entry = (name: string) => {
    let e = counters.get(name);
    if (!e) {
      e = { reconciles: 0, depth: 0 };
      counters.set(name, e);
    }
    return e;
  };
  for (const { label, value } of series('controller_runtime_reconcile_total', 'controller'))
    if (label) entry(label).reconciles += value;
  for (const { label, value } of series('workqueue_depth', 'name')) if (label) entry(label).depth = value;
  return { controllers: counters, api };
}

/** "carequeue 12.3/s (queue 0), ..." between two readings. */
function controllerRates(
  before: Map<string, { reconciles: number }>,
  after: Map<string, { reconciles: number; depth: number }>,
  seconds: number,
): string {
  return [...after]
    .filter(([, a]) => a.reconciles > 0)
    .map(
      ([name, a]) =>
        `${name} ${((a.reconciles - (before.get(name)?.reconciles ?? 0)) / seconds).toFixed(1)}/s (queue ${a.depth})`,
    )
    .join(', ');
}

/** "PATCH 30.1/s, GET 12.0/s; waited 0.41 s on average for the client rate limiter" between two readings. */
function apiRates(before: ApiCounters, after: ApiCounters, seconds: number): string {
  const rates = [...after.requests]
    .map(([method, n]) => [method, (n - (before.requests.get(method) ?? 0)) / seconds] as const)
    .filter(([, rate]) => rate > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([method, rate]) => `${method} ${rate.toFixed(1)}/s`);
  const waits = after.waits - before.waits;
  const meanWait = waits > 0 ? (after.waitSeconds - before.waitSeconds) / waits : 0;
  return `${rates.join(', ') || 'none'}; waited ${meanWait.toFixed(2)} s on average for the client rate limiter`;
}

interface Figures {
  size: number;
  counts: string;
  setupSeconds: number;
  settleSeconds: number;
  peakRssMiB: number;
  restRssMiB: number;
  cpuPerSecond: number;
  /** Commands the operator sent a second, and those its scripts ran inside Redis. */
  redisSentPerSecond: number;
  redisInScriptsPerSecond: number;
  redisTop: string;
  /** Reconciles a second per controller while steady. */
  reconciles: string;
  /** API requests a second by method while steady, and the mean wait for the client rate limiter. */
  api: string;
  /** Changes not reflected within the time-out. */
  unreflected: number;
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
  // Decision records and audit trails, in the machine's PostgreSQL; dropped at the end.
  const schema = `bench_scale_${Date.now()}`;
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
    const deployment = (name: string, ns: string, replicas: number, labels: Record<string, string>) =>
      appDeployment(name, ns, { replicas, labels });
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
    operator = startLocalOperator({
      name: 'aurora-operator',
      kubeconfig: operatorKubeconfig,
      httpPort: port,
      flags: [
        '--leader-elect=false',
        '--log-level=warn',
        `--postgres-url=${defaultServices.postgresUrl}`,
        `--postgres-schema=${schema}`,
        ...values['operator-flag'],
      ],
      logDir: join(cp.runDir, 'logs'),
      pidDir: join(cp.runDir, 'pids'),
    });
    const pid = operator.pid;
    await operatorReady(operator, port, 300_000);

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
    await waitFor(
      "every pool's triage servers running",
      async () => {
        let waiting = 0;
        for (const ns of namespaces) {
          const { items } = await admin.list<
            KubeObject & { spec?: { replicas?: number }; status?: { readyReplicas?: number } }
          >('apps/v1', 'Deployment', { namespace: ns, labelSelector: 'aurora.health/pool' });
          waiting += items.filter((d) => (d.status?.readyReplicas ?? 0) < (d.spec?.replicas ?? 1)).length;
        }
        return waiting === 0 ? true : undefined;
      },
      { timeoutMs: 1_800_000, intervalMs: 5_000 },
    );

    // Steady state: the operator's CPU over a window, then what it asks of Redis.
    console.log(`  steady: measuring CPU for ${windowSeconds} s, then Redis for ${redisWindowSeconds} s`);
    await sleep(10_000);
    const before = processUsage(pid);
    const countersBefore = await operatorCounters(port);
    const windowStart = Date.now();
    await sleep(windowSeconds * 1000);
    const elapsed = (Date.now() - windowStart) / 1000;
    const cpuPerSecond = (processUsage(pid).cpuSeconds - before.cpuSeconds) / elapsed;
    const countersAfter = await operatorCounters(port);
    const reconciles = controllerRates(countersBefore.controllers, countersAfter.controllers, elapsed);
    const api = apiRates(countersBefore.api, countersAfter.api, elapsed);
    console.log(`    reconciles while steady: ${reconciles}`);
    console.log(`    API requests while steady: ${api}`);
    const redisRates = await operatorRedisRates(redis, redisWindowSeconds);

    // Reflection: a change to one object's spec, at random, and the time until its status shows it.
    console.log(`  reflection: ${samples} changes, one at a time`);
    const reflect: number[] = [];
    let unreflected = 0;
    // Each change flips one field between two values, so every patch changes the spec.
    const changes: Record<
      string,
      {
        name: (i: number) => string;
        count: number;
        read: (spec: Spec) => unknown;
        patch: (v: number) => Spec;
        values: [number, number];
      }
    > = {
      TriageModel: {
        name: (i) => `model-${i}`,
        count: n.models,
        read: (spec) => (spec.acceptance as { maxLatencyMs?: { p99?: number } })?.maxLatencyMs?.p99,
        patch: (v) => ({ acceptance: { maxLatencyMs: { p99: v } } }),
        values: [1_000, 1_001],
      },
      InferencePool: {
        name: (i) => `pool-${i}`,
        count: n.models,
        read: (spec) => spec.maxReplicas,
        patch: (v) => ({ maxReplicas: v }),
        values: [full.serversPerPool + 1, full.serversPerPool + 2],
      },
      CareQueue: {
        name: (i) => `queue-${i}`,
        count: n.queues,
        read: (spec) => spec.maxReplicas,
        patch: (v) => ({ maxReplicas: v }),
        values: [full.consumersPerQueue + 2, full.consumersPerQueue + 3],
      },
      HealingPolicy: {
        name: (i) => `policy-${i}`,
        count: n.policies,
        read: (spec) => (spec.guardrails as { cooldownSeconds?: number })?.cooldownSeconds,
        patch: (v) => ({ guardrails: { cooldownSeconds: v } }),
        values: [120, 121],
      },
    };
    for (let k = 0; k < samples; k++) {
      const kind = kinds[k % kinds.length] as string;
      const change = changes[kind] as (typeof changes)[string];
      const i = Math.floor(Math.random() * change.count);
      const name = change.name(i);
      const ns = kind === 'HealingPolicy' ? nsOf(i * 2.5) : nsOf(i);
      const ref = { apiVersion: 'aurora.health/v1alpha1', kind, metadata: { name, namespace: ns } };
      const current = await admin.get<Aurora & { spec: Spec }>(ref);
      const [a, b] = change.values;
      const next = current && change.read(current.spec) === a ? b : a;
      const t0 = Date.now();
      const changed = await admin.patch<Aurora>(ref, { spec: change.patch(next) }, { type: 'merge' });
      const generation = changed.metadata.generation ?? 0;
      if (generation <= (current?.metadata.generation ?? 0))
        throw new Error(`${kind} ${ns}/${name}: the patch did not change its spec`);
      const reflected = await waitFor(
        `${kind} ${ns}/${name} to reflect its change`,
        async () =>
          ((await admin.get<Aurora>(ref))?.status?.observedGeneration ?? 0) >= generation ? true : undefined,
        { timeoutMs: reflectTimeoutSeconds * 1000, intervalMs: 20 },
      ).catch(() => false);
      reflect.push((Date.now() - t0) / 1000);
      if (!reflected) {
        // Counted at the time-out (so the percentiles understate it), and said.
        unreflected++;
        const waiting = [...(await operatorCounters(port)).controllers]
          .map(([c, v]) => `${c} ${v.depth}`)
          .join(', ');
        console.log(
          `    ${kind} ${ns}/${name}: not reflected within ${reflectTimeoutSeconds} s; keys waiting: ${waiting}`,
        );
      }
      if ((k + 1) % 25 === 0) console.log(`    ${k + 1}/${samples} changes reflected`);
    }
    reflect.sort((a, b) => a - b);
    // VmHWM is the process's lifetime peak, start-up and the first lists of everything included.
    const rest = processUsage(pid);
    return {
      size,
      counts,
      setupSeconds: (applyStart - started) / 1000,
      settleSeconds,
      peakRssMiB: rest.peakRssMiB,
      restRssMiB: rest.rssMiB,
      cpuPerSecond,
      ...redisRates,
      reconciles,
      api,
      unreflected,
      reflectP50: percentile(reflect, 50),
      reflectP99: percentile(reflect, 99),
    };
  } finally {
    for (const t of timers) clearInterval(t);
    redis?.disconnect();
    await operator?.stop(10_000);
    await redisServer?.cleanup();
    await cp?.stop();
    const db = new pg.Client({ connectionString: defaultServices.postgresUrl });
    await db
      .connect()
      .then(() => db.query(`drop schema if exists ${schema} cascade`))
      .catch(() => {})
      .finally(() => db.end());
  }
}

const report = (r: Figures) =>
  console.log(`  size ${r.size}: ${r.counts}
    all reconciled ${r.settleSeconds.toFixed(0)} s after the objects were applied (setup ${r.setupSeconds.toFixed(0)} s)
    operator peak RSS ${r.peakRssMiB.toFixed(0)} MiB, ${r.restRssMiB.toFixed(0)} MiB at rest; CPU ${r.cpuPerSecond.toFixed(3)} s/s while steady
    reconciles while steady: ${r.reconciles}
    API requests while steady: ${r.api}
    Redis, observing queues: ${r.redisSentPerSecond.toFixed(0)} commands/s sent (${r.redisTop}), ${r.redisInScriptsPerSecond.toFixed(0)}/s run inside its scripts
    change to status: p50 ${r.reflectP50.toFixed(2)} s, p99 ${r.reflectP99.toFixed(2)} s${r.unreflected ? ` (${r.unreflected} not reflected within ${reflectTimeoutSeconds} s, counted at it)` : ''}`);

await ensureControlPlaneBinaries();
const results: Figures[] = [];
for (const size of sizes) {
  const figures = await runSize(size);
  results.push(figures);
  console.log(`\nSize ${size} measured:`);
  report(figures);
}
console.log(
  `\nResults (one operator process${values['operator-flag'].length > 0 ? ` with ${values['operator-flag'].join(' ')}` : ', default settings'}; goal: under 500 MiB at size 1):`,
);
for (const r of results) report(r);
process.exit(0);
