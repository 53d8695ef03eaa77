// Chaos, first part: the leader killed (SIGKILL) again and again at random moments while all four kinds
// are under steady load: a model validated and served by a pool, a queue receiving arrivals, a policy
// healing a target that keeps failing beside a healthy one. Two operator processes run as the chart's
// ServiceAccount with leader election; after each kill the standby must take over, every object's
// status must catch up with its generation, and the audit trail must hold one outcome per intent.
// `npm test` kills the leader 3 times; `npm run chaos` 20 times (AURORA_CHAOS_KILLS).
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { seededRandom } from '../../hack/example-model/patients.ts';
import { appDeployment } from '../../hack/local-cluster/deployments.ts';
import { keepFailing } from '../../hack/local-cluster/pod-failures.ts';
import { type ManagedProcess, waitFor } from '../../hack/local-cluster/process.ts';
import { percentile } from '../../model/acceptance.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { verifyAuditTrail } from '../../state/audit.ts';
import { createTestNamespace, testAccess, uniqueSuffix } from '../harness/cluster.ts';
import { chaosHealingPolicy, createExampleDependencies, exampleManifest } from '../harness/examples.ts';

import { auditRows, leaseHolder, startOperatorProcess } from '../harness/operator-process.ts';

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
  const p = startOperatorProcess(identity, {
    namespace,
    leaseNamespace: leases,
    lease,
    schema,
    postgresUrl: inject('postgresUrl'),
  });
  processes.push(p);
  return p;
}

const holder = () => leaseHolder(client, leases, lease);

const deployment = (name: string, replicas: number) =>
  appDeployment(name, namespace, { replicas, labels: { chaos: 'target' } });

beforeAll(async () => {
  const served = await createTestNamespace('chaos');
  const leasing = await createTestNamespace('chaos-leases');
  cleanups.push(served.cleanup, leasing.cleanup);
  namespace = served.name;
  leases = leasing.name;
  await createExampleDependencies(client, namespace);
  await client.create(deployment('consumers', 1));
  await client.create(deployment('failing', 2));
  await client.create(deployment('healthy', 2));
  await client.create(exampleManifest('triage-model.yaml', namespace));
  const pool = exampleManifest('inference-pool.yaml', namespace);
  await client.create({ ...pool, spec: { ...pool.spec, minReplicas: 1, maxReplicas: 2 } });
  const queue = exampleManifest('care-queue.yaml', namespace);
  await client.create({
    ...queue,
    spec: { ...queue.spec, scaleTargetRef: { kind: 'Deployment', name: 'consumers' }, minReplicas: 1 },
  });
  await client.create(chaosHealingPolicy(namespace));
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
        async () =>
          (await auditRows(superuser, schema)).some((r) => r.type === 'Outcome') ? true : undefined,
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
      const rows = await auditRows(superuser, schema);
      const verified = await verifyAuditTrail({ url: inject('postgresUrl'), schema });
      expect(verified.ok).toBe(true);
      const intents = rows.filter((r) => r.type === 'Intent');
      const outcomes = rows.filter((r) => r.type === 'Outcome');
      expect(intents.length).toBeGreaterThanOrEqual(kills);
      const open = intents.filter((i) => outcomes.filter((o) => o.intent === i.seq).length !== 1);
      // The newest intent may still await its outcome when the run ends; none other may.
      expect(open.filter((i) => i.seq !== intents.at(-1)?.seq).map((i) => i.seq)).toEqual([]);
      expect(new Set(outcomes.map((o) => o.intent)).size).toBe(outcomes.length);
      const sorted = [...takeovers].sort((a, b) => a - b);
      console.log(
        `chaos: ${kills} leader kills; takeover p50 ${percentile(sorted, 50).toFixed(1)} s, p99 ${percentile(sorted, 99).toFixed(1)} s; ${intents.length} remediations, each with one outcome`,
      );
      // The 12 s lease bounds a takeover; the issue asks 15 s at the 99th percentile.
      expect(percentile(sorted, 99)).toBeLessThanOrEqual(15);
    },
    120_000 + kills * 90_000,
  );
});
