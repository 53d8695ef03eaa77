// The operator as a local process (cmd/operator.ts under the operator's Node flags and environment),
// for the sandbox, benchmarks and tests: simulated nodes run no containers, so the chart's Deployment
// stays at zero replicas and this process runs with the chart ServiceAccount's kubeconfig instead.
import { join } from 'node:path';
import { operatorEnv, operatorNodeFlags } from '../../operator/node-flags.ts';
import { repoRoot } from './control-plane.ts';
import { type ManagedProcess, startProcess, waitFor } from './process.ts';

export interface LocalOperatorOptions {
  /** The process's name in logs and its log file's. */
  name: string;
  kubeconfig: string;
  /** Its /healthz, /readyz and /metrics port; 0 for any. */
  httpPort: number;
  /** Further flags, e.g. --postgres-url, --leader-elect=false. */
  flags?: readonly string[];
  logDir: string;
  pidDir?: string;
  env?: Record<string, string>;
}

export function startLocalOperator(options: LocalOperatorOptions): ManagedProcess {
  return startProcess(
    options.name,
    process.execPath,
    [
      ...operatorNodeFlags,
      join(repoRoot, 'cmd', 'operator.ts'),
      `--kubeconfig=${options.kubeconfig}`,
      `--http-port=${options.httpPort}`,
      ...(options.flags ?? []),
    ],
    {
      logDir: options.logDir,
      ...(options.pidDir ? { pidDir: options.pidDir } : {}),
      env: { ...operatorEnv, ...options.env },
    },
  );
}

/** Waits until the operator's /readyz answers 200; fails at once, with its log, if it exits first. */
export async function operatorReady(
  operator: ManagedProcess,
  httpPort: number,
  timeoutMs = 60_000,
): Promise<void> {
  let settled = false;
  const exited = operator.exited.then(async (code) => {
    if (!settled)
      throw new Error(`the operator exited (${code}) before it was ready:\n${await operator.logTail()}`);
  });
  const answered = waitFor(
    'the operator to be ready',
    async () =>
      // Once the race is over either way, the poll ends too.
      settled || (await fetch(`http://127.0.0.1:${httpPort}/readyz`).catch(() => undefined))?.ok
        ? true
        : undefined,
    { timeoutMs, intervalMs: 500 },
  );
  try {
    await Promise.race([answered, exited]);
  } finally {
    settled = true;
    answered.catch(() => {});
  }
}
