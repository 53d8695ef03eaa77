// The leader killed (SIGKILL) in the middle of a remediation, twice: once between the intent row and the
// action, once between the action and its outcome row. Two operator processes run with leader election;
// a failpoint (operator/failpoints.ts) holds the leader at the chosen moment so the kill lands there.
// Either way the trail shows one intent and one outcome, and the pods were evicted once.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { appDeployment } from '../../hack/local-cluster/deployments.ts';
import { keepFailing, livePods } from '../../hack/local-cluster/pod-failures.ts';
import { type ManagedProcess, waitFor } from '../../hack/local-cluster/process.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import { createTestNamespace, testAccess, uniqueSuffix } from '../harness/cluster.ts';
import { auditRows, leaseHolder, startOperatorProcess } from '../harness/operator-process.ts';

const client = createKubeClient(testAccess());
const superuser = new pg.Pool({ connectionString: inject('postgresUrl'), max: 2 });
const processes: ManagedProcess[] = [];
const stops: Array<() => Promise<void>> = [];
let namespace: string;
let dropNamespace: () => Promise<void>;
/** Where the operators' Lease lives: their own namespace, which they never heal. */
let leases: string;
let dropLeases: () => Promise<void>;
const schemas: string[] = [];

beforeAll(async () => {
  ({ name: namespace, cleanup: dropNamespace } = await createTestNamespace('healing-leader'));
  ({ name: leases, cleanup: dropLeases } = await createTestNamespace('healing-leases'));
  await client.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'audit-db', namespace },
    stringData: { url: inject('postgresUrl') },
  });
});

afterAll(async () => {
  for (const stop of stops) await stop();
  for (const p of processes) await p.kill().catch(() => {});
  for (const s of schemas) await superuser.query(`drop schema if exists ${s} cascade`).catch(() => {});
  await superuser.end();
  await dropNamespace?.();
  await dropLeases?.();
});

function operator(identity: string, schema: string, failpoints?: string): ManagedProcess {
  const p = startOperatorProcess(identity, {
    namespace,
    leaseNamespace: leases,
    lease: schema.replaceAll('_', '-'),
    schema,
    ...(failpoints ? { failpoints } : {}),
  });
  processes.push(p);
  return p;
}

const rows = (schema: string) => auditRows(superuser, schema);
const holder = (lease: string) => leaseHolder(client, leases, lease);

describe.each([
  ['between the intent and the action', 'healing-after-intent', 'carried out'],
  ['between the action and its outcome', 'healing-before-outcome', 'had taken effect'],
])('the leader killed %s', (_when, failpoint, settled) => {
  it('leaves one intent and one outcome, and the action happened once', async () => {
    const suffix = uniqueSuffix();
    const app = `victim-${suffix}`;
    const schema = `test_leader_${suffix}`;
    schemas.push(schema);
    await client.create(appDeployment(app, namespace));
    const first = operator(`leader-${suffix}`, schema, `${failpoint}=sleep(60000)`);
    const lease = schema.replaceAll('_', '-');
    await waitFor(
      'the first operator to lead',
      async () => ((await holder(lease)) === first.name ? true : undefined),
      {
        timeoutMs: 60_000,
      },
    );
    const second = operator(`standby-${suffix}`, schema);
    await client.create({
      apiVersion: 'aurora.health/v1alpha1',
      kind: 'HealingPolicy',
      metadata: { name: `heal-${suffix}`, namespace },
      spec: {
        selector: { labelSelector: { matchLabels: { app } }, kinds: ['Deployment'] },
        detectors: { crashLoop: { restarts: 3 } },
        escalation: [{ action: 'RestartPod', timeoutSeconds: 120 }],
        guardrails: { maxUnhealthyPercent: 100, cooldownSeconds: 10 },
        mode: 'Enforce',
        approval: { requiredFor: [] },
        audit: { databaseSecretRef: { name: 'audit-db', key: 'url' } },
      },
    });
    const k = keepFailing(client, namespace, `app=${app}`, { kind: 'CrashLoop', restarts: 5 });
    stops.push(k.stop);
    const intent = await waitFor(
      'the intent',
      async () => (await rows(schema)).find((r) => r.type === 'Intent'),
      {
        timeoutMs: 60_000,
      },
    ).catch(async (err: Error) => {
      const policy = await client.get({
        apiVersion: 'aurora.health/v1alpha1',
        kind: 'HealingPolicy',
        metadata: { name: `heal-${suffix}`, namespace },
      });
      err.message += `\nstatus: ${JSON.stringify(policy?.status)}\nleader log: ${await first.logTail(15)}`;
      throw err;
    });
    const named = intent.details?.pods as string[];
    expect(named.length).toBeGreaterThan(0);
    // Held at the failpoint: killed as a crash would.
    await new Promise((r) => setTimeout(r, 1_000));
    await first.kill();
    const outcome = await waitFor(
      'the outcome',
      async () => (await rows(schema)).find((r) => r.type === 'Outcome'),
      {
        timeoutMs: 60_000,
      },
    );
    const all = await rows(schema);
    const told = JSON.stringify(all.map((r) => [r.seq, r.type, r.operator, r.outcome, r.reason, r.message]));
    expect(
      all.filter((r) => r.type === 'Intent'),
      told,
    ).toHaveLength(1);
    expect(all.filter((r) => r.type === 'Outcome')).toHaveLength(1);
    expect(outcome).toMatchObject({ intent: intent.seq, outcome: 'Done', operator: second.name });
    expect(outcome.message).toContain(settled);
    // The pods the intent named are gone, and no other intent followed in the meantime.
    const left = (await livePods(client, namespace, `app=${app}`)).map((p) => p.metadata.name);
    expect(left.filter((n) => named.includes(n))).toEqual([]);
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await rows(schema)).filter((r) => r.type === 'Intent')).toHaveLength(1);
    await k.stop();
    await second.stop();
    // The next case's operators watch this namespace too: nothing of this one is left for them.
    await client.delete({
      apiVersion: 'aurora.health/v1alpha1',
      kind: 'HealingPolicy',
      metadata: { name: `heal-${suffix}`, namespace },
    });
    await client.delete({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: app, namespace } });
  });
});
