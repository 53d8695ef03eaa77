// What the HealingPolicy integration tests share: a namespace with the audit database's Secret, an
// audit schema of their own in the real PostgreSQL, a manager running the HealingPolicy controller, and
// helpers to make Deployments, policies and failures, and to read the trail back.
import pg from 'pg';
import { inject } from 'vitest';
import { registerHealingPolicyController } from '../../controllers/healingpolicy/reconcile.ts';
import type { HealingPolicy } from '../../crds/kinds.ts';
import { appDeployment } from '../../hack/local-cluster/deployments.ts';
import { keepFailing, livePods } from '../../hack/local-cluster/pod-failures.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { createKubeClient, type KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import type { AuditRow } from '../../state/audit.ts';
import {
  createTestManager,
  createTestNamespace,
  operatorClient,
  testAccess,
  uniqueSuffix,
} from './cluster.ts';

export interface HealingTestbed {
  namespace: string;
  schema: string;
  client: KubeClient;
  manager: Manager;
  /** The audit trail's rows, oldest first, read as a superuser. */
  rows(policy?: string): Promise<AuditRow[]>;
  deployment(name: string, options?: DeploymentOptions): Promise<void>;
  policy(name: string, spec: Record<string, unknown>): Promise<void>;
  status(name: string): Promise<NonNullable<HealingPolicy['status']>>;
  /** Keeps the pods matching a selector failing until the testbed stops. */
  fail(
    selector: string,
    failure: Parameters<typeof keepFailing>[3],
    options?: Parameters<typeof keepFailing>[4],
  ): ReturnType<typeof keepFailing>;
  /** The uids of a Deployment's live pods (app=<name>), sorted: who was replaced shows as a change. */
  uids(app: string): Promise<string[]>;
  /** The pod-template-hash of a Deployment's ReplicaSet of the given revision, once it exists. */
  revisionHash(app: string, revision: string): Promise<string>;
  /** Waits until the policy's status satisfies check (returns a value). */
  until<T>(
    what: string,
    policy: string,
    check: (s: NonNullable<HealingPolicy['status']>) => T | undefined,
    timeoutMs?: number,
  ): Promise<T>;
  cleanup(): Promise<void>;
}

/** An escalation ladder from [action, timeoutSeconds] pairs. */
export const ladder = (...steps: Array<[string, number]>) =>
  steps.map(([action, timeoutSeconds]) => ({ action, timeoutSeconds }));

/** The Deployments of one scenario (labelled scenario=<name>). */
export const selectorFor = (scenario: string) => ({
  labelSelector: { matchLabels: { scenario } },
  kinds: ['Deployment'],
});

/** Guardrails that let a test's few targets be acted on quickly. */
export const guardrails = (over: Record<string, unknown> = {}) => ({
  maxUnhealthyPercent: 100,
  cooldownSeconds: 10,
  stormCooldownSeconds: 10,
  healthyRevisionSeconds: 10,
  ...over,
});

/** The trail as `Type:Action:Outcome` words, easy to compare. */
export const types = (rows: readonly AuditRow[]) =>
  rows.map((r) => (r.action ? `${r.type}:${r.action}${r.outcome ? `:${r.outcome}` : ''}` : r.type));

export interface DeploymentOptions {
  replicas?: number;
  labels?: Record<string, string>;
  memoryLimit?: string;
  env?: Record<string, string>;
  podSpec?: Record<string, unknown>;
}

/** A condition's reason, or undefined. */
export const reasonOf = (s: NonNullable<HealingPolicy['status']>, type: string) =>
  s.conditions?.find((c) => c.type === type)?.reason;

export async function startHealingTestbed(
  prefix: string,
  options: { auditUrl?: string; checkIntervalMs?: number } = {},
): Promise<HealingTestbed> {
  const client = createKubeClient(testAccess());
  const { name: namespace, cleanup: dropNamespace } = await createTestNamespace(prefix);
  const schema = `test_${prefix.replace(/[^a-z0-9]/g, '_')}_${uniqueSuffix()}`;
  const superuser = new pg.Pool({ connectionString: options.auditUrl ?? inject('postgresUrl'), max: 2 });
  superuser.on('error', () => {});
  await client.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'audit-db', namespace },
    stringData: { url: options.auditUrl ?? inject('postgresUrl') },
  });
  const failures: Array<() => Promise<void>> = [];
  const manager = createTestManager(operatorClient(), namespace);
  registerHealingPolicyController(manager, {
    protectedNamespaces: ['aurora-system'],
    auditSchema: schema,
    identity: `test-${prefix}`,
    checkIntervalMs: options.checkIntervalMs ?? 1_000,
  });
  await manager.start();
  const ref = (name: string) => ({
    apiVersion: 'aurora.health/v1alpha1',
    kind: 'HealingPolicy',
    metadata: { name, namespace },
  });
  const status = async (name: string) => (await client.get<HealingPolicy>(ref(name)))?.status ?? {};
  return {
    namespace,
    schema,
    client,
    manager,
    async rows(policy) {
      const { rows } = await superuser
        .query<{ content: string; seq: string; hash: string; prev_hash: string }>(
          `select seq, content, hash, prev_hash from ${schema}.audit_trail order by seq`,
        )
        .catch(() => ({ rows: [] }));
      return rows
        .map(
          (r) =>
            ({
              ...JSON.parse(r.content),
              seq: Number(r.seq),
              hash: r.hash,
              prevHash: r.prev_hash,
            }) as AuditRow,
        )
        .filter((r) => !policy || r.policy.name === policy);
    },
    async deployment(name, o = {}) {
      const labels = { app: name, ...o.labels };
      await client.create(
        appDeployment(name, namespace, {
          replicas: o.replicas ?? 2,
          labels,
          container: {
            env: Object.entries(o.env ?? {}).map(([k, value]) => ({ name: k, value })),
            ...(o.memoryLimit ? { resources: { limits: { memory: o.memoryLimit } } } : {}),
          },
          ...(o.podSpec ? { podSpec: o.podSpec } : {}),
        }),
      );
      await waitFor(`${name} ready`, async () => {
        const d = await client.get<
          KubeObject & { status?: { readyReplicas?: number; updatedReplicas?: number } }
        >({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name, namespace },
        });
        return (d?.status?.readyReplicas ?? 0) >= (o.replicas ?? 2) ? true : undefined;
      });
    },
    async policy(name, spec) {
      await client.create({
        ...ref(name),
        spec: {
          audit: { databaseSecretRef: { name: 'audit-db', key: 'url' } },
          mode: 'Enforce',
          approval: { requiredFor: [] },
          ...spec,
        },
      });
    },
    status,
    fail(selector, failure, opts) {
      const k = keepFailing(client, namespace, selector, failure, opts);
      failures.push(k.stop);
      return k;
    },
    uids: async (app) =>
      (await livePods(client, namespace, `app=${app}`)).map((p) => p.metadata.uid ?? '').sort(),
    revisionHash: (app, revision) =>
      waitFor(`revision ${revision} of ${app}`, async () => {
        const rs = await client.list<KubeObject>('apps/v1', 'ReplicaSet', {
          namespace,
          labelSelector: `app=${app}`,
        });
        return rs.items.find(
          (r) => r.metadata.annotations?.['deployment.kubernetes.io/revision'] === revision,
        )?.metadata.labels?.['pod-template-hash'];
      }),
    async until(what, policy, check, timeoutMs = 60_000) {
      try {
        return await waitFor(what, async () => check(await status(policy)), { timeoutMs, intervalMs: 200 });
      } catch (err) {
        // What the policy said last, so a failure explains itself.
        const last = await status(policy).catch(() => undefined);
        (err as Error).message += `\nlast status: ${JSON.stringify(last, null, 1)}`;
        throw err;
      }
    },
    async cleanup() {
      for (const stop of failures) await stop();
      await manager.stop();
      await superuser.query(`drop schema if exists ${schema} cascade`).catch(() => {});
      await superuser.end();
      await dropNamespace();
    },
  };
}
