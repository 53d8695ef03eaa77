// Triage servers as local processes, for tests, benches and the sandbox: simulated nodes run no
// containers, so the workload the pool's pods would run is started here with the pod's settings.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { type ConsumedQueue, consumerEnv } from '../../queue/contract.ts';
import { exampleModelFiles } from '../example-model/generate.ts';
import { freePort, repoRoot } from './control-plane.ts';
import { type ManagedProcess, startProcess, waitFor } from './process.ts';

export const triageServerEntry = join(repoRoot, 'workloads', 'triage-server', 'main.ts');

/** The example model's spec, as examples/triage-model.yaml declares it. */
export function exampleModelSpec() {
  return parse(readFileSync(join(repoRoot, 'examples/triage-model.yaml'), 'utf8')).spec as {
    version: string;
    inputs: {
      tensorName: string;
      elementType: string;
      features: { name: string; min?: number; max?: number }[];
    };
    outputs: { tensorName: string; labels: string[] };
    executionProviders: string[];
  };
}

/** Settings that serve the example model from its file. */
export function exampleModelEnv(): Record<string, string> {
  const spec = exampleModelSpec();
  return {
    AURORA_MODEL_FILE: exampleModelFiles.model,
    AURORA_MODEL_SHA256: createHash('sha256').update(readFileSync(exampleModelFiles.model)).digest('hex'),
    AURORA_MODEL_SPEC: JSON.stringify({
      version: spec.version,
      inputs: spec.inputs,
      outputs: spec.outputs,
      executionProviders: spec.executionProviders,
    }),
  };
}

export interface TriageServerProcess {
  process: ManagedProcess;
  port: number;
  url: string;
}

/** Starts a triage server with env on a free port and waits until it answers ready. */
export async function startTriageServerProcess(
  name: string,
  env: Record<string, string>,
  options: { logDir: string; pidDir?: string; readyTimeoutMs?: number },
): Promise<TriageServerProcess> {
  const port = await freePort();
  const child = startProcess(name, process.execPath, [triageServerEntry], {
    logDir: options.logDir,
    ...(options.pidDir ? { pidDir: options.pidDir } : {}),
    env: { AURORA_DRAIN_DELAY_SECONDS: '0', ...env, AURORA_PORT: String(port) },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    `triage server ${name} to be ready`,
    async () => {
      if (!child.isRunning()) throw new Error(`it exited:\n${await child.logTail()}`);
      return (await fetch(`${url}/readyz`).catch(() => undefined))?.ok ? true : undefined;
    },
    { timeoutMs: options.readyTimeoutMs ?? 30_000, intervalMs: 100 },
  );
  return { process: child, port, url };
}

/** A Deployment whose pods the simulated nodes "run" (kwok); `app=<name>` selects them. */
export function deploymentManifest(options: {
  name: string;
  namespace: string;
  replicas: number;
  env?: Record<string, unknown>[];
  image?: string;
}) {
  const { name, namespace, replicas } = options;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 30,
          containers: [
            { name: 'triage-server', image: options.image ?? 'aurora:local', env: options.env ?? [] },
          ],
        },
      },
    },
  };
}

/**
 * The pod environment of a triage server serving the example model and consuming `queue`, at most
 * `pace` entries a second (0: as fast as it goes), with no drain delay (nothing routes to it anyway).
 */
export function consumerPodEnv(queue: ConsumedQueue, pace: number): Record<string, unknown>[] {
  return [
    ...Object.entries({
      ...exampleModelEnv(),
      AURORA_QUEUE_MAX_ENTRIES_PER_SECOND: String(pace),
      AURORA_DRAIN_DELAY_SECONDS: '0',
    }).map(([name, value]) => ({ name, value })),
    ...consumerEnv(queue),
  ];
}
