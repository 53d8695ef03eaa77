// HealingPolicy benchmark on the real control plane and the real PostgreSQL.
// Usage: node bench/healing.ts [--failures 30] [--window 10] [--rows 2000] [--skip a,b]
//
// (a) Reaction: the time from a failure's onset (a pod's readiness going False, written into its status
//     as a kubelet would) to the first remediation applied (its Outcome row committed after the
//     eviction), over many failures, each of its own Deployment; p50 and p99, against the goal of the
//     detector's window plus at most 2 s. The controller checks every 5 s as in production, and wakes
//     when a readiness window ends.
// (b) The audit trail: rows appended a second with the hash chain (advisory lock, chain trigger, canonical
//     encoding, sha256), by one writer and by four at once, beside plain INSERTs of the same content into
//     a table with no chain, in the same run.
import { parseArgs } from 'node:util';
import pg from 'pg';
import { registerHealingPolicyController } from '../controllers/healingpolicy/reconcile.ts';
import { ensureControlPlaneBinaries } from '../hack/local-cluster/binaries.ts';
import { startControlPlane } from '../hack/local-cluster/control-plane.ts';
import { installAuroraCrds } from '../hack/local-cluster/crds.ts';
import { appDeployment } from '../hack/local-cluster/deployments.ts';
import { failPod, livePods } from '../hack/local-cluster/pod-failures.ts';
import { waitFor } from '../hack/local-cluster/process.ts';
import { ensureServices } from '../hack/local-cluster/services.ts';
import { percentile } from '../model/acceptance.ts';
import { createKubeClient, type KubeClient } from '../operator/kube/client.ts';
import { silentLogger } from '../operator/log.ts';
import { createManager } from '../operator/manager.ts';
import { createMetrics } from '../operator/metrics.ts';
import { type AuditEntry, canonicalContent, openAuditTrail } from '../state/audit.ts';

const { values } = parseArgs({
  options: {
    failures: { type: 'string', default: '30' },
    window: { type: 'string', default: '10' },
    rows: { type: 'string', default: '2000' },
    skip: { type: 'string', default: '' },
  },
});
const failures = Number(values.failures);
const windowSeconds = Number(values.window);
const rowCount = Number(values.rows);
const skip = new Set((values.skip ?? '').split(',').filter(Boolean));
const { postgresUrl } = await ensureServices(undefined, (l) => console.log(l));
const namespace = 'bench-healing';
const schema = `bench_healing_${process.pid}`;

async function reaction(client: KubeClient, db: pg.Pool): Promise<void> {
  console.log(
    `\n(a) failure onset → first remediation applied, over ${failures} failures (readiness window ${windowSeconds} s)`,
  );
  // Each failure in a Deployment of its own; one policy watches them all.
  for (let i = 0; i < failures; i++) {
    await client.create(appDeployment(`svc-${i}`, namespace, { labels: { bench: 'healing' } }));
  }
  await waitFor(
    'every Deployment ready',
    async () => {
      const pods = await livePods(client, namespace, 'app');
      const ready = pods.filter((p) =>
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      );
      return ready.length >= failures * 2 ? true : undefined;
    },
    { timeoutMs: 180_000 },
  );
  await client.create({
    apiVersion: 'aurora.health/v1alpha1',
    kind: 'HealingPolicy',
    metadata: { name: 'bench', namespace },
    spec: {
      selector: { labelSelector: { matchLabels: { bench: 'healing' } }, kinds: ['Deployment'] },
      detectors: { readinessFailing: { forSeconds: windowSeconds } },
      escalation: [{ action: 'RestartPod', timeoutSeconds: 60 }],
      guardrails: {
        maxUnhealthyPercent: 100,
        budget: { actions: 10_000, windowSeconds: 3600 },
        perTargetLimit: { actions: 10, windowSeconds: 3600 },
        cooldownSeconds: 10,
      },
      mode: 'Enforce',
      approval: { requiredFor: [] },
      audit: { databaseSecretRef: { name: 'audit-db', key: 'url' } },
    },
  });
  await new Promise((r) => setTimeout(r, 3_000));
  const onsets = new Map<string, number>();
  // One failure every 700 ms, so checks land at every phase of the controller's 5 s cycle.
  for (let i = 0; i < failures; i++) {
    const [pod] = await livePods(client, namespace, `app=svc-${i}`);
    if (!pod) throw new Error(`svc-${i} has no pod`);
    const now = new Date();
    await failPod(client, pod, { kind: 'Unready' }, now);
    // The status keeps whole seconds: the onset is the time the pod says, as the detector reads it.
    onsets.set(`svc-${i}`, Math.floor(now.getTime() / 1000) * 1000);
    await new Promise((r) => setTimeout(r, 700));
    if ((i + 1) % 10 === 0) console.log(`  … ${i + 1} failures started`);
  }
  const applied = await waitFor(
    'every failure remediated',
    async () => {
      const { rows } = await db.query<{ target: string; at_ms: string }>(
        `select content::jsonb #>> '{target,name}' as target, at_ms from ${schema}.audit_trail
         where type = 'Outcome' and content::jsonb ->> 'outcome' = 'Done' order by seq`,
      );
      const first = new Map<string, number>();
      for (const r of rows) if (!first.has(r.target)) first.set(r.target, Number(r.at_ms));
      return first.size >= failures ? first : undefined;
    },
    { timeoutMs: 180_000 },
  );
  const latencies = [...onsets]
    .map(([name, onset]) => (applied.get(name) ?? Number.NaN) - onset)
    .sort((a, b) => a - b);
  const over = latencies.map((l) => l - windowSeconds * 1000);
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  console.log(
    `  onset → remediation applied: p50 ${s(percentile(latencies, 50))}, p99 ${s(percentile(latencies, 99))}, max ${s(latencies.at(-1) ?? 0)}`,
  );
  console.log(
    `  beyond the ${windowSeconds} s window: p50 ${s(percentile(over, 50))}, p99 ${s(percentile(over, 99))} (goal ≤ 2.00 s)`,
  );
}

async function auditRate(db: pg.Pool): Promise<void> {
  console.log(`\n(b) audit rows a second on the real PostgreSQL (${rowCount} rows each)`);
  const entry = (i: number): AuditEntry => ({
    type: i % 2 ? 'Outcome' : 'Intent',
    atMs: Date.now(),
    operator: 'bench',
    policy: { namespace: 'er', name: 'bench', uid: 'bench-policy' },
    target: { kind: 'Deployment', namespace: 'er', name: `svc-${i % 50}`, uid: `uid-${i % 50}` },
    mode: 'Enforce',
    step: 0,
    action: 'RestartPod',
    reason: 'CrashLoop',
    message: '2 of 3 pod(s) restart repeatedly',
    details: { pods: [`svc-${i % 50}-7d9f8-abcde`], revision: '7d9f8' },
  });
  const chained = async (writers: number) => {
    const trail = openAuditTrail({ url: postgresUrl, schema: `${schema}_rate${writers}` });
    await trail.migrate();
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (next < rowCount) await trail.append(entry(next++));
      }),
    );
    const perSecond = rowCount / ((performance.now() - started) / 1000);
    await trail.close();
    return perSecond;
  };
  // Baseline: the same canonical content into a plain table, one INSERT per row, no chain.
  await db.query(`create table ${schema}.plain (seq bigint primary key, content text not null)`);
  const started = performance.now();
  for (let i = 1; i <= rowCount; i++)
    await db.query(`insert into ${schema}.plain (seq, content) values ($1, $2)`, [
      i,
      canonicalContent(entry(i), i),
    ]);
  const plain = rowCount / ((performance.now() - started) / 1000);
  const one = await chained(1);
  const four = await chained(4);
  console.log(`  plain INSERT (no chain), 1 writer:  ${Math.round(plain)} rows/s (baseline)`);
  console.log(
    `  hash-chained append, 1 writer:      ${Math.round(one)} rows/s (${((one / plain) * 100).toFixed(0)} % of baseline)`,
  );
  console.log(
    `  hash-chained append, 4 writers:     ${Math.round(four)} rows/s (serialised by the chain's lock)`,
  );
}

await ensureControlPlaneBinaries();
const controlPlane = await startControlPlane({ log: (l) => console.log(l) });
const client = createKubeClient(controlPlane.access());
const db = new pg.Pool({ connectionString: postgresUrl, max: 2 });
try {
  await installAuroraCrds(client);
  await db.query(`create schema if not exists ${schema}`);
  await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await client.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'audit-db', namespace },
    stringData: { url: postgresUrl },
  });
  const manager = createManager({
    client,
    log: silentLogger,
    namespace,
    metrics: createMetrics({ defaultMetrics: false }),
  });
  registerHealingPolicyController(manager, {
    protectedNamespaces: ['aurora-system'],
    auditSchema: schema,
    identity: 'bench',
  });
  await manager.start();
  if (!skip.has('a')) await reaction(client, db);
  await manager.stop();
  if (!skip.has('b')) await auditRate(db);
} finally {
  for (const s of [schema, `${schema}_rate1`, `${schema}_rate4`])
    await db.query(`drop schema if exists ${s} cascade`).catch(() => {});
  await db.end();
  await controlPlane.stop();
}
