// The operator as a cluster runs it: cmd/operator.ts in a process of its own, as the chart's
// ServiceAccount, with leader election; for tests that kill it.
import { join } from 'node:path';
import type pg from 'pg';
import { inject } from 'vitest';
import { repoRoot } from '../../hack/local-cluster/control-plane.ts';
import { startLocalOperator } from '../../hack/local-cluster/operator.ts';
import type { ManagedProcess } from '../../hack/local-cluster/process.ts';
import type { KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { AuditRow } from '../../state/audit.ts';

export interface OperatorProcessOptions {
  /** The one namespace it serves. */
  namespace: string;
  /** Where its Lease is, and the Lease's name. */
  leaseNamespace: string;
  lease: string;
  /** Its PostgreSQL schema (the audit trail's too). */
  schema: string;
  /** Where CareQueue decisions go; none: Events and status only. */
  postgresUrl?: string;
  /** AURORA_FAILPOINTS, to hold it at a chosen moment. */
  failpoints?: string;
  /** For a control plane of the test's own: its operator kubeconfig and pid directory. */
  kubeconfigPath?: string;
  pidDir?: string;
}

export function startOperatorProcess(identity: string, options: OperatorProcessOptions): ManagedProcess {
  return startLocalOperator({
    name: identity,
    // As the chart's ServiceAccount, with the chart's RBAC.
    kubeconfig: options.kubeconfigPath ?? inject('operatorKubeconfigPath'),
    httpPort: 0,
    flags: [
      `--namespace=${options.namespace}`,
      `--leader-election-namespace=${options.leaseNamespace}`,
      `--leader-election-id=${options.lease}`,
      `--identity=${identity}`,
      ...(options.postgresUrl ? [`--postgres-url=${options.postgresUrl}`] : []),
      `--postgres-schema=${options.schema}`,
    ],
    logDir: join(repoRoot, '.tools', 'run'),
    pidDir: options.pidDir ?? inject('workloadPidDir'),
    ...(options.failpoints ? { env: { AURORA_FAILPOINTS: options.failpoints } } : {}),
  });
}

/** Who holds the Lease now, if anyone. */
export async function leaseHolder(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<string | undefined> {
  const lease = await client.get<KubeObject & { spec?: { holderIdentity?: string } }>({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace },
  });
  return lease?.spec?.holderIdentity || undefined;
}

/** The audit trail's rows in order, read as PostgreSQL's superuser; none while the table does not exist. */
export async function auditRows(superuser: pg.Pool, schema: string): Promise<AuditRow[]> {
  const { rows } = await superuser
    .query<{ content: string; seq: string }>(`select seq, content from ${schema}.audit_trail order by seq`)
    .catch(() => ({ rows: [] as Array<{ content: string; seq: string }> }));
  return rows.map((r) => ({ ...JSON.parse(r.content), seq: Number(r.seq) }));
}
