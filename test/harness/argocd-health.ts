// Runs Aurora's Argo CD health checks as Argo CD runs them: the built argocd-health runner (gopher-lua
// v1.1.2 with Argo CD's library restrictions, hack/argocd-health) on a resource given as JSON.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { type HealthKind, healthScript } from '../../hack/argocd-health/generate.ts';
import { defaultToolsDir } from '../../hack/local-cluster/control-plane.ts';

export interface HealthStatus {
  status: string;
  message?: string;
}

const runner = join(defaultToolsDir, 'bin', 'argocd-health');

/** What a Lua script returns for a resource; rejects with the runner's words when the script fails. */
export function runHealthScript<T = HealthStatus>(scriptPath: string, resource: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = execFile(runner, [scriptPath], (err, stdout, stderr) =>
      err
        ? reject(new Error(`argocd-health ${scriptPath}: ${stderr || err.message}`))
        : resolve(JSON.parse(stdout)),
    );
    child.stdin?.end(JSON.stringify(resource));
  });
}

/** The kind's health check (charts/aurora/files/argocd) run on a resource. */
export const health = (kind: HealthKind, resource: unknown) => runHealthScript(healthScript(kind), resource);
