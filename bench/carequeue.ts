// CareQueue benchmark, on the real control plane, the real Redis and PostgreSQL, with triage servers as
// real consumer processes (simulated nodes run no containers, so the harness runs one per ready pod).
// Usage: node bench/carequeue.ts [--entries 60000] [--bursts 50] [--day-minutes 12] [--skip a,b,c]
//
// (c) Throughput: entries scored and acknowledged a second through Redis by triage-server consumers,
//     beside raw onnxruntime on the same model in batches of the consumer's batch size, same run: on the
//     example model, and on the example deepened so that inference, not Redis, is the bound.
// (a) Reaction: the time from a burst's first entry (its ID: Redis's clock) to the target's scale
//     subresource patched (seen by a watch), over many bursts: p50 and p99.
// (b) A replayed emergency-department day, compressed, run twice against the same consumer processes:
//     Aurora's policy, then a count-based policy with KEDA's defaults. Breach-minutes per category and
//     replica-minutes for each, side by side.
//
// The day's hourly shape is built to match published figures for England's emergency departments
// (HSCIC/NHS Digital Hospital Episode Statistics, A&E attendances):
//   - Accident and Emergency Attendances in England 2011-12 (HSCIC, 2013): about 4,000 arrivals an hour
//     between 10:00 and 12:00 on Mondays against an hourly average of 2,000 (peak about twice the mean);
//     https://www.otsnews.co.uk/monday-mornings-see-double-the-average-number-of-ae-attendances-in-england/
//   - HSCIC, A&E attendances March 2012 to February 2013: close to 60 % of patients arrived between
//     09:00 and 18:00; https://healthcareleadernews.com/news/most-ae-attendances-in-work-hours/
//   - The same HSCIC hourly data by hour and weekday: the trough is between 04:00 and 06:00 every day;
//     http://exploringr.blogspot.com/2015/10/hourly-ebb-and-flow-of-cases-in.html
// The mix of categories (hack/local-cluster/arrivals.ts, manchesterMix) is an assumption of the kind
// Manchester Triage audits report, not a cited figure.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import ort from 'onnxruntime-node';
import { registerCareQueueController } from '../controllers/carequeue/reconcile.ts';
import { careQueueSpec, manchesterDefaults } from '../crds/carequeue.ts';
import { exampleGoldenFeatures, exampleModelFiles } from '../hack/example-model/generate.ts';
import { deepenedModel } from '../hack/example-model/onnx.ts';
import { manchesterMix, pickCategory } from '../hack/local-cluster/arrivals.ts';
import { ensureControlPlaneBinaries } from '../hack/local-cluster/binaries.ts';
import { startControlPlane } from '../hack/local-cluster/control-plane.ts';
import { installAuroraCrds } from '../hack/local-cluster/crds.ts';
import { followPodWorkloads } from '../hack/local-cluster/pod-workloads.ts';
import { waitFor } from '../hack/local-cluster/process.ts';
import { ensureServices } from '../hack/local-cluster/services.ts';
import {
  consumerPodEnv,
  deploymentManifest,
  exampleModelEnv,
  exampleModelSpec,
  startTriageServerProcess,
} from '../hack/local-cluster/triage-servers.ts';
import { percentile } from '../model/acceptance.ts';
import { createKubeClient, type KubeClient } from '../operator/kube/client.ts';
import type { KubeObject } from '../operator/kube/types.ts';
import { silentLogger } from '../operator/log.ts';
import { createManager } from '../operator/manager.ts';
import { createMetrics } from '../operator/metrics.ts';
import { readStreams } from '../queue/observe.ts';
import { createStateStore } from '../state/postgres.ts';

const { values } = parseArgs({
  options: {
    entries: { type: 'string', default: '60000' },
    bursts: { type: 'string', default: '50' },
    'day-minutes': { type: 'string', default: '12' },
    skip: { type: 'string', default: '' },
  },
});
const skip = new Set(values.skip.split(',').filter(Boolean));
const namespace = 'bench-carequeue';
const prefix = `aurora:${namespace}`;
/** The triage server's default AURORA_QUEUE_BATCH_SIZE: raw onnxruntime gets batches of the same size. */
const consumerBatch = 64;
const model = exampleModelSpec();
const vectors = exampleGoldenFeatures();
const featureNames = model.inputs.features.map((f) => f.name);
const entryOf = (i: number) =>
  JSON.stringify(
    Object.fromEntries(featureNames.map((n, j) => [n, (vectors[i % vectors.length] as number[])[j]])),
  );
const workDir = mkdtempSync(join(tmpdir(), 'aurora-bench-carequeue-'));
const { redisUrl, postgresUrl } = await ensureServices();
const redis = new Redis(redisUrl);
const clearKeys = async () => {
  const keys = await redis.keys(`${prefix}:*`);
  for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
};
await clearKeys();

console.log('CareQueue benchmark');

// (c) Throughput through Redis beside raw onnxruntime, on two models. The example model's inference is so
// cheap (under a microsecond a row here) that Redis's own work per entry bounds any consumer far below half of
// raw; so the goal is also measured on the example deepened to the cost of a larger network
// (deepenedModel in hack/example-model/onnx.ts: three hidden layers of 1,024, about 2 M multiply-adds a
// row, classifying exactly as the example), where the model is the bound, as it is in use.
if (!skip.has('c')) {
  const entries = Number(values.entries);
  console.log(`\n(c) Throughput: ${entries} entries, batches of ${consumerBatch}`);
  const percent = (part: number, whole: number) => `${((100 * part) / whole).toFixed(1)} %`;
  const transport = await redisAlone(entries);
  console.log(
    `  Redis alone (read, write a result, acknowledge; one client, no model): ${Math.round(transport)} entries/s`,
  );
  const example = readFileSync(exampleModelFiles.model);
  const deep = { layers: 3, width: 1024, seed: 20_261_128 };
  const deepened = deepenedModel(example, deep);
  const same = await sameAnswers(example, deepened);
  const models = [
    {
      name: `the example model (${(example.length / 1024).toFixed(0)} KiB)`,
      file: 'example.onnx',
      bytes: example,
    },
    {
      name: `the example deepened to ${deep.layers} hidden layers of ${deep.width} (${(deepened.length / 2 ** 20).toFixed(1)} MiB; on the ${same.of} golden vectors ${same.labels} labels as the example's, probabilities within ${same.maxDifference.toExponential(1)})`,
      file: 'deepened.onnx',
      bytes: deepened,
    },
  ];
  for (const m of models) {
    console.log(`  ${m.name}:`);
    const raw = await rawRate(m.bytes);
    console.log(
      `    raw onnxruntime, in-process: ${Math.round(raw)} rows/s (Redis alone is ${percent(transport, raw)} of it)`,
    );
    const modelFile = join(workDir, m.file);
    writeFileSync(modelFile, m.bytes);
    const modelEnv = {
      ...exampleModelEnv(),
      AURORA_MODEL_FILE: modelFile,
      AURORA_MODEL_SHA256: createHash('sha256').update(m.bytes).digest('hex'),
    };
    for (const consumers of [1, 2]) {
      const { rate, pending } = await throughRedis(entries, consumers, modelEnv, m.file);
      console.log(
        `    through Redis, ${consumers} consumer process${consumers > 1 ? 'es' : ''}: ${Math.round(rate)} entries/s scored, written and acknowledged (${pending} left pending): ${percent(rate, raw)} of raw (goal 50 %), ${percent(rate, transport)} of Redis alone`,
      );
    }
  }
}

/** How far two models' answers on the golden vectors agree: labels alike, and the largest difference. */
async function sameAnswers(a: Uint8Array, b: Uint8Array) {
  const answers = async (bytes: Uint8Array) => {
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
    const input = new ort.Tensor('float32', Float32Array.from(vectors.flat()), [
      vectors.length,
      featureNames.length,
    ]);
    const out = (await session.run({ [model.inputs.tensorName]: input }))[model.outputs.tensorName];
    await session.release();
    return out?.data as Float32Array;
  };
  const [x, y] = [await answers(a), await answers(b)];
  const width = model.outputs.labels.length;
  let labels = 0;
  let maxDifference = 0;
  for (let row = 0; row < vectors.length; row++) {
    const rowOf = (d: Float32Array) => Array.from(d.subarray(row * width, (row + 1) * width));
    const [p, q] = [rowOf(x), rowOf(y)];
    if (p.indexOf(Math.max(...p)) === q.indexOf(Math.max(...q))) labels++;
    for (let k = 0; k < width; k++)
      maxDifference = Math.max(maxDifference, Math.abs((p[k] ?? 0) - (q[k] ?? 0)));
  }
  return {
    of: vectors.length,
    labels: labels === vectors.length ? 'the same' : `${labels} of ${vectors.length}`,
    maxDifference,
  };
}

/** Raw batched onnxruntime for 5 s in this process: the ceiling a consumer of this model is held to. */
async function rawRate(bytes: Uint8Array) {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
  let rows = 0;
  const started = performance.now();
  while (performance.now() - started < 5_000) {
    const batch = Array.from({ length: consumerBatch }, (_, i) => vectors[(rows + i) % vectors.length] ?? []);
    await session.run({
      [model.inputs.tensorName]: new ort.Tensor('float32', Float32Array.from(batch.flat()), [
        consumerBatch,
        featureNames.length,
      ]),
    });
    rows += consumerBatch;
  }
  const rate = rows / ((performance.now() - started) / 1000);
  await session.release();
  return rate;
}

/**
 * The transport alone, for scale: the same reads, result writes and acknowledgements from one client in
 * this process, with no parsing and no model: a yardstick for the consumers (several processes, each
 * with two batches in flight, are not held to one client's round trips).
 */
async function redisAlone(entries: number) {
  const key = `${prefix}:transport:urgent`;
  await writeEntries(key, entries);
  await redis.xgroup('CREATE', key, 'triage', '0');
  const result = ['label', 'urgent', 'probabilities', '{"low":0.1,"high":0.9}', 'modelVersion', '1.0.0'];
  const began = performance.now();
  let served = 0;
  while (served < entries) {
    const reply = (await redis.xreadgroup(
      'GROUP',
      'triage',
      'bench',
      'COUNT',
      consumerBatch,
      'STREAMS',
      key,
      '>',
    )) as [string, [string, string[]][]][] | null;
    const got = reply?.[0]?.[1] ?? [];
    if (got.length === 0) break;
    const pipeline = redis.pipeline();
    for (const [id] of got) pipeline.xadd(`${key}:results`, '*', 'entry', id, ...result);
    pipeline.xack(key, 'triage', ...got.map(([id]) => id));
    await pipeline.exec();
    served += got.length;
  }
  const rate = served / ((performance.now() - began) / 1000);
  await redis.del(key, `${key}:results`);
  return rate;
}

/** Writes `entries` entries to a stream, a thousand to a round trip; with a ref each when asked. */
async function writeEntries(key: string, entries: number, options: { withRef?: boolean } = {}) {
  for (let i = 0; i < entries; i += 1000) {
    const pipeline = redis.pipeline();
    for (let j = i; j < Math.min(entries, i + 1000); j++)
      pipeline.xadd(key, '*', 'features', entryOf(j), ...(options.withRef ? ['ref', `t${j}`] : []));
    await pipeline.exec();
  }
}

/** Entries scored, written and acknowledged a second by triage-server consumer processes. */
async function throughRedis(
  entries: number,
  consumers: number,
  modelEnv: Record<string, string>,
  tag: string,
) {
  const name = `throughput-${tag.replace(/\W/g, '-')}-${consumers}`;
  const key = `${prefix}:${name}:urgent`;
  const results = `${prefix}:${name}:results`;
  const staging = `${key}:staging`;
  await writeEntries(staging, entries, { withRef: true });
  await redis.xgroup('CREATE', staging, 'triage', '0');
  const env = {
    ...modelEnv,
    AURORA_QUEUE_REDIS_URL: redisUrl,
    AURORA_QUEUE_STREAMS: JSON.stringify([{ category: 'urgent', streamKey: key }]),
    AURORA_QUEUE_RESULT_STREAM: results,
    AURORA_QUEUE_RESULT_MAX_LENGTH: String(entries * 2),
    AURORA_QUEUE_BATCH_SIZE: String(consumerBatch),
  };
  const servers = await Promise.all(
    Array.from({ length: consumers }, (_, i) =>
      startTriageServerProcess(
        `${name}-${i}`,
        { ...env, AURORA_QUEUE_CONSUMER: `consumer-${i}` },
        { logDir: workDir },
      ),
    ),
  );
  // The consumers are up and waiting (their start is not what is measured); the entries, written
  // beforehand to a stream of their own with the group at its start, then take the key's place at once.
  await redis.rename(staging, key);
  await waitFor(
    `${entries} results`,
    async () => ((await redis.xlen(results)) >= entries ? true : undefined),
    { timeoutMs: 600_000, intervalMs: 100 },
  );
  await Promise.all(servers.map((s) => s.process.stop()));
  // Both ends on Redis's clock: the first result written to the last.
  const firstId = (await redis.xrange(results, '-', '+', 'COUNT', 1))[0]?.[0] ?? '0-0';
  const lastId = (await redis.xrevrange(results, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
  const spanSeconds = (Number(lastId.split('-')[0]) - Number(firstId.split('-')[0])) / 1000;
  const [pending] = (await redis.xpending(key, 'triage')) as [number];
  await redis.del(key, results);
  return { rate: (entries - 1) / spanSeconds, pending };
}

if (skip.has('a') && skip.has('b')) {
  redis.disconnect();
  process.exit(0);
}

let client: KubeClient;

function deployment(name: string, replicas: number, env: Record<string, unknown>[] = []) {
  return client.create(deploymentManifest({ name, namespace, replicas, env }));
}

const replicasOf = async (name: string) =>
  (
    await client.get<KubeObject & { spec: { replicas: number } }>({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace },
    })
  )?.spec.replicas ?? 0;

const setReplicas = (name: string, replicas: number) =>
  client.patch(
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace } },
    { spec: { replicas } },
    { type: 'merge', subresource: 'scale', fieldManager: 'bench' },
  );

// (a) Reaction time over many bursts. The target runs no consumers: nothing is served, so the only thing
// measured is Aurora seeing the entries, deciding and patching.
async function reaction(kube: KubeClient, changes: { name: string; replicas: number; atMs: number }[]) {
  const bursts = Number(values.bursts);
  console.log(`\n(a) Reaction: ${bursts} bursts of 20 very-urgent entries into an idle queue`);
  await deployment('burst-consumers', 1);
  await kube.create({
    apiVersion: 'aurora.health/v1alpha1',
    kind: 'CareQueue',
    metadata: { name: 'burst', namespace },
    spec: {
      redis: { urlSecretRef: { name: 'er-redis', key: 'url' } },
      scaleTargetRef: { kind: 'Deployment', name: 'burst-consumers' },
      minReplicas: 1,
      maxReplicas: 10,
      // Only the count decides here (20 waiting → 2 replicas): between bursts the queue is emptied and
      // the target goes back to 1 at once, so every burst starts from the same idle state.
      targetEntriesPerReplica: 10,
      assumedServedPerConsumerPerSecond: 1_000_000,
      categories: [
        { name: 'immediate', maxWaitSeconds: 0 },
        { name: 'very-urgent', maxWaitSeconds: 600 },
      ],
      behavior: { scaleDown: { stabilizationWindowSeconds: 0 } },
    },
  });
  const key = `${prefix}:burst:very-urgent`;
  const latencies: number[] = [];
  for (let i = 0; i < bursts; i++) {
    await redis.del(key);
    await redis.xgroup('CREATE', key, 'triage', '0', 'MKSTREAM');
    await waitFor(
      'the target back at 1',
      async () => ((await replicasOf('burst-consumers')) === 1 ? true : undefined),
      {
        timeoutMs: 30_000,
        intervalMs: 50,
      },
    );
    await sleep(300 + Math.random() * 200);
    const seen = changes.length;
    const pipeline = redis.pipeline();
    for (let j = 0; j < 20; j++) pipeline.xadd(key, '*', 'features', entryOf(j));
    const ids = (await pipeline.exec())?.map(([, id]) => String(id)) ?? [];
    const firstMs = Number(ids[0]?.split('-')[0]);
    const scaled = await waitFor(
      'the scale to be patched',
      async () => changes.slice(seen).find((c) => c.name === 'burst-consumers' && c.replicas > 1),
      { timeoutMs: 10_000, intervalMs: 5 },
    );
    latencies.push(scaled.atMs - firstMs);
    if ((i + 1) % 10 === 0) console.log(`  ${i + 1}/${bursts} bursts`);
  }
  await redis.del(key);
  latencies.sort((x, y) => x - y);
  console.log(
    `  first entry → scale subresource patched: p50 ${Math.round(percentile(latencies, 50))} ms, p99 ${Math.round(percentile(latencies, 99))} ms, max ${Math.round(latencies.at(-1) ?? 0)} ms (goal p50 ≤ 1000 ms, p99 ≤ 2000 ms)`,
  );
}

/** Hourly arrivals relative to the day's mean, 00:00 to 23:00 (see the sources at the top). */
const hourlyShape = (() => {
  const raw = [
    0.6, 0.5, 0.42, 0.36, 0.3, 0.3, 0.4, 0.65, 1.1, 1.6, 2.0, 2.0, 1.85, 1.75, 1.7, 1.65, 1.6, 1.55, 1.2, 1.1,
    1.0, 0.9, 0.8, 0.7,
  ];
  const mean = raw.reduce((a, b) => a + b, 0) / raw.length;
  return raw.map((r) => r / mean);
})();

/** Manchester categories, their share of arrivals, and their maximum wait in minutes of the real day. */
const edCategories = manchesterDefaults.map((c) => ({
  name: c.name,
  share: manchesterMix.find((m) => m.name === c.name)?.share ?? 0,
  maxWaitMinutes: c.maxWaitSeconds / 60,
}));

/** A seeded generator, so both policies see exactly the same arrivals. */
function mulberry32(seed: number) {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The count-based policy as KEDA's Redis streams scaler and an HPA run it with their defaults: the lag
 * of each stream polled every 30 s, a target of 5 entries per replica (the HPA takes the largest of the
 * streams' asks), synced every 15 s with a 10 % tolerance, scale-up at most max(100 %, 4 pods) per sync,
 * scale-down to the highest recommendation of the last 300 s.
 */
function countPolicyStep(input: {
  lags: readonly number[];
  current: number;
  min: number;
  max: number;
  history: { atMs: number; replicas: number }[];
  nowMs: number;
}): number {
  const { lags, current, min, max } = input;
  const perStream = lags.map((lag) => Math.ceil(lag / 5));
  const asked = Math.max(...perStream);
  const ratio = current > 0 ? asked / current : asked > 0 ? Infinity : 1;
  let recommendation = Math.abs(ratio - 1) <= 0.1 ? current : asked;
  recommendation = Math.min(max, Math.max(min, recommendation));
  input.history.push({ atMs: input.nowMs, replicas: recommendation });
  while (input.history.length > 0 && (input.history[0]?.atMs ?? 0) < input.nowMs - 300_000)
    input.history.shift();
  if (recommendation > current) return Math.min(recommendation, current + Math.max(current, 4));
  const highest = Math.max(...input.history.map((h) => h.replicas));
  return Math.min(current, highest);
}

// (b) The replayed day.
async function replayedDay(kube: KubeClient) {
  const dayMinutes = Number(values['day-minutes']);
  const compression = (24 * 60) / dayMinutes;
  const servedPerConsumerPerSecond = 1;
  const meanArrivalsPerSecond = 2.5;
  const categories = edCategories.map((c) => ({
    ...c,
    // 0 stays "at once", which on this bench is within the 2 s a paced consumer needs to take and serve one.
    maxWaitSeconds: Math.max(2, Math.round((c.maxWaitMinutes * 60) / compression)),
  }));
  console.log(
    `\n(b) A day of emergency arrivals in ${dayMinutes} minutes (1 hour = ${(60 / (24 / dayMinutes)).toFixed(0)} s), ${meanArrivalsPerSecond}/s on average, consumers serving ${servedPerConsumerPerSecond}/s each`,
  );
  console.log(
    `  maximum waits on the bench: ${categories.map((c) => `${c.name} ${c.maxWaitSeconds} s`).join(', ')}`,
  );
  // The arrivals, drawn once.
  const random = mulberry32(20261128);
  const daySeconds = dayMinutes * 60;
  const schedule: { atMs: number; category: number }[] = [];
  for (let second = 0; second < daySeconds; second++) {
    const hour = Math.floor((second / daySeconds) * 24);
    const rate = meanArrivalsPerSecond * (hourlyShape[hour] ?? 1);
    // Poisson arrivals within the second.
    let t = -Math.log(1 - random()) / rate;
    while (t < 1) {
      schedule.push({ atMs: (second + t) * 1000, category: pickCategory(categories, random()) });
      t += -Math.log(1 - random()) / rate;
    }
  }
  console.log(`  ${schedule.length} arrivals`);

  const spec = {
    redis: { urlSecretRef: { name: 'er-redis', key: 'url' } },
    scaleTargetRef: { kind: 'Deployment', name: 'ed-consumers' },
    minReplicas: 1,
    maxReplicas: 12,
    categories: categories.map((c) => ({ name: c.name, maxWaitSeconds: c.maxWaitSeconds })),
    paused: true,
  };
  const env = consumerPodEnv(
    { namespace, name: 'ed', spec: careQueueSpec.parse(spec) },
    servedPerConsumerPerSecond,
  );
  await deployment('ed-consumers', 1, env);
  const follower = followPodWorkloads({
    client: kube,
    namespace,
    labelSelector: 'app=ed-consumers',
    workDir: join(workDir, 'ed'),
  });
  await kube.create({
    apiVersion: 'aurora.health/v1alpha1',
    kind: 'CareQueue',
    metadata: { name: 'ed', namespace },
    spec,
  });
  const streams = categories.map((c) => `${prefix}:ed:${c.name}`);
  const setPaused = (paused: boolean) =>
    kube.patch(
      { apiVersion: 'aurora.health/v1alpha1', kind: 'CareQueue', metadata: { name: 'ed', namespace } },
      { spec: { paused } },
      { type: 'merge' },
    );

  const run = async (policy: 'aurora' | 'count') => {
    // The same start: an empty queue and one consumer running.
    for (const key of streams) await redis.del(key);
    await setReplicas('ed-consumers', 1);
    await waitFor('one consumer', async () => (follower.running().size === 1 ? true : undefined), {
      timeoutMs: 120_000,
    });
    await setPaused(policy !== 'aurora');
    const breachSeconds = categories.map(() => 0);
    let replicaSeconds = 0;
    let peak = 1;
    const startMs = Date.now();
    let next = 0;
    let lastTick = startMs;
    let lastPoll = -Infinity;
    let lastSync = -Infinity;
    let lags = streams.map(() => 0);
    const history: { atMs: number; replicas: number }[] = [];
    let lastReport = startMs;
    for (;;) {
      const now = Date.now();
      const elapsed = now - startMs;
      // Arrivals due by now.
      const pipeline = redis.pipeline();
      let added = 0;
      while (next < schedule.length && (schedule[next]?.atMs ?? Infinity) <= elapsed) {
        const arrival = schedule[next] as { category: number };
        pipeline.xadd(
          streams[arrival.category] as string,
          '*',
          'features',
          entryOf(next),
          'ref',
          `ed-${next}`,
        );
        next++;
        added++;
      }
      if (added > 0) await pipeline.exec();
      // Once a second: each category's oldest wait, and the replicas.
      if (now - lastTick >= 1_000) {
        const seconds = (now - lastTick) / 1000;
        lastTick = now;
        const states = await readStreams(
          redis,
          'triage',
          streams.map((key) => ({ key })),
        );
        states.forEach((state, i) => {
          if (!state.exists || state.notAStream || !state.group) return;
          const ids = [state.group.firstUndeliveredId, state.group.oldestPendingId].filter(
            (id): id is string => id !== undefined,
          );
          if (ids.length === 0) return;
          const oldestMs = Math.min(...ids.map((id) => Number(id.split('-')[0])));
          if ((state.serverTimeMs - oldestMs) / 1000 > (categories[i]?.maxWaitSeconds ?? 0))
            breachSeconds[i] = (breachSeconds[i] ?? 0) + seconds;
        });
        const replicas = await replicasOf('ed-consumers');
        replicaSeconds += replicas * seconds;
        peak = Math.max(peak, replicas);
        if (policy === 'count') {
          if (now - lastPoll >= 30_000) {
            lastPoll = now;
            lags = states.map((s) => (s.exists && !s.notAStream && s.group ? s.group.depth : 0));
          }
          if (now - lastSync >= 15_000) {
            lastSync = now;
            const wanted = countPolicyStep({ lags, current: replicas, min: 1, max: 12, history, nowMs: now });
            if (wanted !== replicas) await setReplicas('ed-consumers', wanted);
          }
        }
        const drained = states.every(
          (s) => !s.exists || s.notAStream || !s.group || s.group.depth + s.group.pending === 0,
        );
        if (next >= schedule.length && (drained || elapsed > (daySeconds + 300) * 1000)) break;
        if (now - lastReport >= 60_000) {
          lastReport = now;
          const hour = Math.min(23, Math.floor((elapsed / 1000 / daySeconds) * 24));
          console.log(
            `  ${policy}: ${String(hour).padStart(2, '0')}:00 of the day, ${replicas} replicas, ${next}/${schedule.length} arrived`,
          );
        }
      }
      await sleep(20);
    }
    return { breachMinutes: breachSeconds.map((s) => s / 60), replicaMinutes: replicaSeconds / 60, peak };
  };

  const aurora = await run('aurora');
  const count = await run('count');
  await setPaused(true);
  await follower.stop();
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(`\n  ${pad('breach-minutes', 24)}${pad('Aurora', 10)}count-based (KEDA defaults)`);
  categories.forEach((c, i) => {
    console.log(
      `  ${pad(`${c.name} (${c.maxWaitSeconds} s)`, 24)}${pad((aurora.breachMinutes[i] ?? 0).toFixed(2), 10)}${(count.breachMinutes[i] ?? 0).toFixed(2)}`,
    );
  });
  console.log(
    `  ${pad('all categories', 24)}${pad(aurora.breachMinutes.reduce((a, b) => a + b, 0).toFixed(2), 10)}${count.breachMinutes.reduce((a, b) => a + b, 0).toFixed(2)}`,
  );
  console.log(
    `  ${pad('replica-minutes', 24)}${pad(aurora.replicaMinutes.toFixed(1), 10)}${count.replicaMinutes.toFixed(1)}`,
  );
  console.log(`  ${pad('peak replicas', 24)}${pad(String(aurora.peak), 10)}${count.peak}`);
}

await ensureControlPlaneBinaries();
const controlPlane = await startControlPlane({ log: (l) => console.log(l) });
client = createKubeClient(controlPlane.access());
const store = createStateStore({ url: postgresUrl, schema: `bench_carequeue_${process.pid}` });
try {
  await installAuroraCrds(client);
  await store.migrate();
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await client.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'er-redis', namespace },
    stringData: { url: redisUrl },
  });
  const manager = createManager({
    client,
    log: silentLogger,
    namespace,
    metrics: createMetrics({ defaultMetrics: false }),
  });
  registerCareQueueController(manager, { store });
  const replicaChanges: { name: string; replicas: number; atMs: number }[] = [];
  manager.informer<KubeObject & { spec: { replicas: number } }>('apps/v1', 'Deployment').addHandler((e) => {
    if (e.type !== 'deleted')
      replicaChanges.push({
        name: e.object.metadata.name,
        replicas: e.object.spec.replicas,
        atMs: Date.now(),
      });
  });
  await manager.start();

  if (!skip.has('a')) await reaction(client, replicaChanges);
  if (!skip.has('b')) await replayedDay(client);
  await manager.stop();
} finally {
  await clearKeys();
  await store.pool.query(`drop schema if exists bench_carequeue_${process.pid} cascade`).catch(() => {});
  await store.close();
  redis.disconnect();
  await controlPlane.stop();
}
