// What the API server's audit log (every request made with a service-account token; see
// hack/local-cluster/control-plane.ts) says of the chart's service accounts at the end of a test run.
import { createReadStream, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { auroraAccess } from '../../cmd/operator.ts';

export interface AuditEvent {
  user?: { username?: string };
  verb?: string;
  objectRef?: {
    resource?: string;
    subresource?: string;
    apiGroup?: string;
    namespace?: string;
    name?: string;
  };
  responseStatus?: { code?: number; message?: string };
  annotations?: Record<string, string>;
  requestReceivedTimestamp?: string;
}

/** Every event of the log and of its rotated files, read line by line (the files may be large). */
export async function* auditEvents(runDir: string): AsyncGenerator<AuditEvent> {
  for (const file of readdirSync(runDir).filter((f) => f.startsWith('audit') && f.endsWith('.log'))) {
    const lines = createInterface({ input: createReadStream(join(runDir, file)), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line) continue;
      try {
        yield JSON.parse(line) as AuditEvent;
      } catch {
        // A line cut short by the API server's exit.
      }
    }
  }
}

const resourceOf = (o: NonNullable<AuditEvent['objectRef']>) =>
  `${o.apiGroup ?? ''}/${o.resource ?? '?'}${o.subresource ? `/${o.subresource}` : ''}`;

/**
 * The requests refused to the chart's accounts (distinct): whatever RBAC refused any of them, and any
 * 403 the operator got, since some refusals are made after authorization and so never marked forbid
 * (create within a server-side apply, an owner reference that OwnerReferencesPermissionEnforcement
 * refuses). The profiler's 403s from its admission policy are the policy's tests, not refusals of RBAC.
 * Also the operator's declared permissions no request of the run used: after a full run, a declaration
 * that no code path needs, or one no test reaches.
 */
export async function auditSummary(
  runDir: string,
  releaseNamespace: string,
  operatorAccount: string,
): Promise<{ refused: string[]; unused: string[] }> {
  const refused = new Set<string>();
  const used = new Set<string>();
  const userPrefix = `system:serviceaccount:${releaseNamespace}:`;
  const operator = `${userPrefix}${operatorAccount}`;
  for await (const event of auditEvents(runDir)) {
    const user = event.user?.username ?? '';
    if (!user.startsWith(userPrefix)) continue;
    const resource = resourceOf(event.objectRef ?? {});
    const forbidden = event.annotations?.['authorization.k8s.io/decision'] === 'forbid';
    // A namespace a test is deleting refuses new objects (Events among them) with a 403 of its own.
    const terminating = /because it is being terminated/.test(event.responseStatus?.message ?? '');
    if (forbidden || (user === operator && event.responseStatus?.code === 403 && !terminating)) {
      const where = event.objectRef?.namespace ? '' : ' (cluster-wide)';
      const why = forbidden ? '' : `: ${event.responseStatus?.message ?? 'forbidden'}`;
      refused.add(`  ${user}: ${event.verb} ${resource}${where}${why}`);
    } else if (user === operator) used.add(`${resource}:${event.verb}`);
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
