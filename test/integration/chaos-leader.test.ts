// Chaos, first part: the leader killed (SIGKILL) again and again at random moments while all four kinds
// are under steady load: a model validated and served by a pool, a queue receiving arrivals, a policy
// healing a target that keeps failing beside a healthy one. Two operator processes run as the chart's
// ServiceAccount with leader election; after each kill the standby must take over, every object's
// status must catch up with its generation, and the audit trail must hold one outcome per intent.
// `npm test` kills the leader 3 times; `npm run chaos` 20 times (AURORA_CHAOS_KILLS).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exampleModelFiles } from '../../hack/example-model/generate.ts';
import { parseYamlObjects, repoRoot } from '../../hack/local-cluster/control-plane.ts';
import { keepFailing } from '../../hack/local-cluster/pod-failures.ts';
import { type ManagedProcess, startProcess, waitFor } from '../../hack/local-cluster/process.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { operatorNodeFlags } from '../../operator/node-flags.ts';
import { type AuditRow, verifyAuditTrail } from '../../state/audit.ts';
import { createTestNamespace, testAccess, uniqueSuffix } from '../harness/cluster.ts';
import { seededRandom } from '../harness/fuzz.ts';

const kills = Number(process.env.AURORA_CHAOS_KILLS ?? 3);
const client = createKubeClient(testAccess());
const superuser = new pg.Pool({ connectionString: inject('postgresUrl'), max: 2 });
const redis = new Redis(inject('redisUrl'));
const suffix = uniqueSuffix();
const schema = `test_chaos_${suffix}`;
const lease = `chaos-${suffix}`;
const random = seededRandom(Number.parseInt(suffix, 16));
const processes: ManagedProcess[] = [];
const stops: Array<() => void | Promise<void>> = [];
let namespace: string;
let leases: string;
const cleanups: Array<() => Promise<void>> = [];

function operator(identity: string): ManagedProcess {
  const p = startProcess(
    identity,
    process.execPath,
    [
      ...operatorNodeFlags,
      join(repoRoot, 'cmd', 'operator.ts'),
      `--kubeconfig=${inject('operatorKubeconfigPath')}`,
      `--namespace=${namespace}`,
      `--leader-election-namespace=${leases}`,
      `--leader-election-id=${lease}`,
      '--http-port=0',
      `--identity=${identity}`,
      `--postgres-url=${inject('postgresUrl')}`,
      `--postgres-schema=${schema}`,
    ],
    { logDir: join(repoRoot, '.tools', 'run'), pidDir: inject('workloadPidDir') },
  );
  processes.push(p);
  return p;
}

const holder = async () =>
  (
    await client.get<KubeObject & { spec?: { holderIdentity?: string } }>({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: lease, namespace: leases },
    })
  )?.spec?.holderIdentity || undefined;

const deployment = (name: string, replicas: number) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace, labels: { app: name, chaos: 'target' } },
  spec: {
    replicas,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [{ name: 'app', image: 'registry.example/app:1' }],
      },
    },
  },
});

const example = (file: string) => {
  const obj = parseYamlObjects(readFileSync(join(repoRoot, 'examples', file), 'utf8'))[0] as KubeObject;
  return { ...obj, metadata: { ...obj.metadata, namespace } } as KubeObject & {
    spec: Record<string, unknown>;
  };
};

beforeAll(async () => {
  ({ name: namespace } = await createTestNamespace('chaos').then((n) => (cleanups.push(n.cleanup), n)));
  ({ name: leases } = await createTestNamespace('chaos-leases').then((n) => (cleanups.push(n.cleanup), n)));
  const modelConfigMap = parseYamlObjects(readFileSync(exampleModelFiles.configMap, 'utf8'))[0] as KubeObject;
  await client.create({ ...modelConfigMap, metadata: { ...modelConfigMap.metadata, namespace } });
  for (const [name, url] of [
    ['er-redis', inject('redisUrl')],
    ['aurora-audit-db', inject('postgresUrl')],
  ] as const)
    await client.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace },
      stringData: { url },
    });
  await client.create(deployment('consumers', 1));
  await client.create(deployment('failing', 2));
  await client.create(deployment('healthy', 2));
  await client.create(example('triage-model.yaml'));
  await client.create({
    ...example('inference-pool.yaml'),
    spec: { ...example('inference-pool.yaml').spec, minReplicas: 1, maxReplicas: 2 },
  });
  await client.create({
    ...example('care-queue.yaml'),
    spec: {
      ...example('care-queue.yaml').spec,
      scaleTargetRef: { kind: 'Deployment', name: 'consumers' },
      minReplicas: 1,
    },
  });
  const policy = example('healing-policy.yaml');
  await client.create({
    ...policy,
    spec: {
      ...policy.spec,
      selector: { labelSelector: { matchLabels: { chaos: 'target' } }, kinds: ['Deployment'] },
      tier: 'standard',
      escalation: [
        { action: 'RestartPod', timeoutSeconds: 10 },
        { action: 'RestartRollout', timeoutSeconds: 10 },
      ],
      guardrails: {
        maxUnhealthyPercent: 100,
        cooldownSeconds: 10,
        budget: { actions: 1000, windowSeconds: 3600 },
        perTargetLimit: { actions: 1000, windowSeconds: 3600 },
      },
      approval: { requiredFor: [] },
    },
  });
  // Steady load: arrivals to the queue, and one target that keeps crash-looping.
  const arrivals = setInterval(() => {
    void redis.xadd(`aurora:${namespace}:er-queue:urgent`, '*', 'features', '{"pulse": 90}').catch(() => {});
  }, 500);
  stops.push(() => clearInterval(arrivals));
  const failing = keepFailing(client, namespace, 'app=failing', { kind: 'CrashLoop', restarts: 5 });
  stops.push(failing.stop);
}, 120_000);

afterAll(async () => {
  for (const stop of stops) await stop();
  for (const p of processes) await p.kill().catch(() => {});
  await superuser.query(`drop schema if exists ${schema} cascade`).catch(() => {});
  await superuser.end();
  const keys = await redis.keys(`aurora:${namespace}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  for (const c of cleanups) await c();
});

async function auditRows(): Promise<AuditRow[]> {
  const { rows } = await superuser
    .query<{ content: string; seq: string }>(`select seq, content from ${schema}.audit_trail order by seq`)
    .catch(() => ({ rows: [] as Array<{ content: string; seq: string }> }));
  return rows.map((r) => ({ ...JSON.parse(r.content), seq: Number(r.seq) }));
}

/** Aurora's objects whose status has not caught up with their generation. */
async function behind(): Promise<string[]> {
  const left: string[] = [];
  for (const kind of ['TriageModel', 'InferencePool', 'CareQueue', 'HealingPolicy']) {
    const { items } = await client.list<KubeObject & { status?: { observedGeneration?: number } }>(
      'aurora.health/v1alpha1',
      kind,
      { namespace },
    );
    for (const o of items)
      if (o.status?.observedGeneration !== o.metadata.generation) left.push(`${kind} ${o.metadata.name}`);
  }
  return left;
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
};

describe('chaos: the leader killed again and again under load', () => {
  it(
    `the standby takes over after each of ${kills} kills, statuses catch up, one outcome per intent`,
    async () => {
      const live = new Map<string, ManagedProcess>();
      let next = 0;
      const start = () => {
        const p = operator(`chaos-${suffix}-${next++}`);
        live.set(p.name, p);
      };
      start();
      start();
      await waitFor('a leader', holder, { timeoutMs: 60_000 });
      await waitFor('every object handled', async () => ((await behind()).length === 0 ? true : undefined), {
        timeoutMs: 90_000,
      });
      await waitFor(
        'a remediation under way',
        async () => ((await auditRows()).some((r) => r.type === 'Outcome') ? true : undefined),
        {
          timeoutMs: 90_000,
        },
      );
      const takeovers: number[] = [];
      for (let k = 1; k <= kills; k++) {
        // A target that starts failing now, so a remediation is due around the kill.
        await client.create(deployment(`failing-${k}`, 2));
        const keeper = keepFailing(client, namespace, `app=failing-${k}`, { kind: 'CrashLoop', restarts: 5 });
        stops.push(keeper.stop);
        // At a random moment: somewhere in a lease's renewals, a reconcile, a remediation.
        await new Promise((r) => setTimeout(r, 1_000 + random() * 4_000));
        const leader = await holder();
        const victim = leader ? live.get(leader) : undefined;
        if (!victim) throw new Error(`the leader ${leader} is none of the operators started here`);
        const killedAt = Date.now();
        await victim.kill();
        live.delete(victim.name);
        const successor = await waitFor(
          'another leader',
          async () => {
            const h = await holder();
            return h && h !== victim.name ? h : undefined;
          },
          { timeoutMs: 60_000, intervalMs: 100 },
        );
        takeovers.push((Date.now() - killedAt) / 1000);
        expect(live.has(successor)).toBe(true);
        // A new standby, as a Deployment would start one.
        start();
        await waitFor(
          'statuses to catch up',
          async () => ((await behind()).length === 0 ? true : undefined),
          {
            timeoutMs: 60_000,
          },
        );
        console.log(
          `kill ${k}/${kills}: ${victim.name} killed, ${successor} took over in ${takeovers.at(-1)?.toFixed(1)} s`,
        );
      }
      // The trail: intact, and exactly one outcome for every intent (none twice, none lost).
      const rows = await auditRows();
      const verified = await verifyAuditTrail({ url: inject('postgresUrl'), schema });
      expect(verified.ok).toBe(true);
      const intents = rows.filter((r) => r.type === 'Intent');
      const outcomes = rows.filter((r) => r.type === 'Outcome');
      expect(intents.length).toBeGreaterThanOrEqual(kills);
      const open = intents.filter((i) => outcomes.filter((o) => o.intent === i.seq).length !== 1);
      // The newest intent may still await its outcome when the run ends; none other may.
      expect(open.filter((i) => i.seq !== intents.at(-1)?.seq).map((i) => i.seq)).toEqual([]);
      expect(new Set(outcomes.map((o) => o.intent)).size).toBe(outcomes.length);
      console.log(
        `chaos: ${kills} leader kills; takeover p50 ${percentile(takeovers, 50).toFixed(1)} s, p99 ${percentile(takeovers, 99).toFixed(1)} s; ${intents.length} remediations, each with one outcome`,
      );
    },
    120_000 + kills * 90_000,
  );
});
