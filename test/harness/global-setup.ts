import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { auroraAccess } from '../../cmd/operator.ts';
import { ensureControlPlaneBinaries } from '../../hack/local-cluster/binaries.ts';
import {
  applyRendered,
  chartIdentity,
  kubeconfigWithToken,
  renderChart,
  serviceAccountToken,
} from '../../hack/local-cluster/chart.ts';
import { startControlPlane } from '../../hack/local-cluster/control-plane.ts';
import { ensureServices } from '../../hack/local-cluster/services.ts';
import { createKubeClient } from '../../operator/kube/client.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfigPath: string;
    /** The operator's kubeconfig: the chart's ServiceAccount, so tests run it with the chart's RBAC. */
    operatorKubeconfigPath: string;
    /** Who the chart installed the operator as, in namespace aurora-system. */
    chart: {
      releaseNamespace: string;
      operatorServiceAccount: string;
      namespacedRole: string;
      profilerServiceAccount?: string;
    };
    postgresUrl: string;
    redisUrl: string;
    /** Where tests record the processes they start, so a run that dies leaves none behind for long. */
    workloadPidDir: string;
  }
}

interface AuditEvent {
  user?: { username?: string };
  verb?: string;
  objectRef?: { resource?: string; subresource?: string; apiGroup?: string; namespace?: string };
  annotations?: Record<string, string>;
}

/** The API server's audit log (every request made with a service-account token), event by event. */
function* auditEvents(runDir: string): Generator<AuditEvent> {
  for (const file of readdirSync(runDir).filter((f) => f.startsWith('audit') && f.endsWith('.log')))
    for (const line of readFileSync(join(runDir, file), 'utf8').split('\n'))
      if (line) yield JSON.parse(line) as AuditEvent;
}

const resourceOf = (o: NonNullable<AuditEvent['objectRef']>) =>
  `${o.apiGroup ?? ''}/${o.resource ?? '?'}${o.subresource ? `/${o.subresource}` : ''}`;

/**
 * What the audit log says of the chart's service accounts: the requests RBAC refused them (distinct),
 * and the operator's declared permissions that no request of this run used (worth a look after a full
 * run: a declaration no code path needs should go).
 */
function auditSummary(runDir: string, releaseNamespace: string, operatorAccount: string) {
  const refused = new Set<string>();
  const used = new Set<string>();
  const userPrefix = `system:serviceaccount:${releaseNamespace}:`;
  for (const event of auditEvents(runDir)) {
    const user = event.user?.username ?? '';
    if (!user.startsWith(userPrefix)) continue;
    const resource = resourceOf(event.objectRef ?? {});
    if (event.annotations?.['authorization.k8s.io/decision'] === 'forbid')
      refused.add(
        `  ${user}: ${event.verb} ${resource}${event.objectRef?.namespace ? '' : ' (cluster-wide)'}`,
      );
    else if (user === `${userPrefix}${operatorAccount}`) used.add(`${resource}:${event.verb}`);
  }
  // Two checks leave no audit event of their own: server-side apply that creates is authorized for
  // create within its patch, and an owner reference that blocks deletion is checked by admission
  // against <owner>/finalizers.
  const unaudited = (d: string) =>
    d.endsWith('/finalizers:update') || (d.endsWith(':create') && used.has(d.replace(/:create$/, ':patch')));
  const unused = auroraAccess
    .flatMap((a) => a.resources.flatMap((r) => a.verbs.map((v) => `${a.apiGroup}/${r}:${v}`)))
    .filter((d) => !used.has(d) && !unaudited(d));
  return { refused: [...refused].sort(), unused: [...new Set(unused)].sort() };
}

/** Starts one control plane for the whole integration run and makes sure PostgreSQL and Redis answer. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (line: string) => console.log(line);
  await ensureControlPlaneBinaries();
  log('Starting the control plane and the simulated fleet for integration tests');
  const services = await ensureServices(undefined, log);
  const controlPlane = await startControlPlane({ log });
  // Aurora is installed from its chart (rendered by helm with default values), and the operator under
  // test runs as the chart's ServiceAccount: a permission the chart lacks fails the test that needs it.
  const admin = createKubeClient(controlPlane.access());
  const releaseNamespace = 'aurora-system';
  const rendered = await renderChart({ release: 'aurora', namespace: releaseNamespace });
  await applyRendered(admin, rendered, releaseNamespace);
  const identity = chartIdentity(rendered);
  const token = await serviceAccountToken(admin, releaseNamespace, identity.operatorServiceAccount);
  const operatorKubeconfigPath = kubeconfigWithToken(
    controlPlane.kubeconfigPath,
    token,
    `system:serviceaccount:${releaseNamespace}:${identity.operatorServiceAccount}`,
    join(controlPlane.runDir, 'operator.kubeconfig'),
  );
  log(
    `  Aurora installed from charts/aurora; the operator runs as ${releaseNamespace}/${identity.operatorServiceAccount}`,
  );
  project.provide('kubeconfigPath', controlPlane.kubeconfigPath);
  project.provide('operatorKubeconfigPath', operatorKubeconfigPath);
  project.provide('chart', { releaseNamespace, ...identity });
  project.provide('postgresUrl', services.postgresUrl);
  project.provide('redisUrl', services.redisUrl);
  // The control plane's own pid directory: the next run reaps what a crashed run left in it.
  project.provide('workloadPidDir', join(controlPlane.runDir, 'pids'));
  return async () => {
    const { refused, unused } = auditSummary(
      controlPlane.runDir,
      releaseNamespace,
      identity.operatorServiceAccount,
    );
    await controlPlane.stop();
    if (unused.length > 0)
      log(
        `Declared operator permissions no request of this run used (a full run should use all): ${unused.join(', ')}`,
      );
    // A refusal a controller retried past would pass its test: the audit log tells on it.
    if (refused.length > 0)
      throw new Error(
        `the chart's RBAC refused Aurora's service accounts ${refused.length} kind(s) of request:\n${refused.join('\n')}`,
      );
  };
}
