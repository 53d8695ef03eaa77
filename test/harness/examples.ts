// The manifests in examples/ as tests use them: the four kinds, and what they name (the model's
// ConfigMap, the Redis and audit-database Secrets) made in a test's namespace.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';
import { exampleModelFiles } from '../../hack/example-model/generate.ts';
import { parseYamlObjects, repoRoot } from '../../hack/local-cluster/control-plane.ts';
import type { KubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';

export type ExampleManifest = KubeObject & { spec: Record<string, unknown> };

/** The example of one kind (examples/<file>), in the namespace given (none: as the file has it). */
export function exampleManifest(file: string, namespace?: string): ExampleManifest {
  const obj = parseYamlObjects(readFileSync(join(repoRoot, 'examples', file), 'utf8'))[0] as ExampleManifest;
  return namespace ? { ...obj, metadata: { ...obj.metadata, namespace } } : obj;
}

/** The four kinds' examples: TriageModel, InferencePool, CareQueue, HealingPolicy. */
export const exampleFiles = [
  'triage-model.yaml',
  'inference-pool.yaml',
  'care-queue.yaml',
  'healing-policy.yaml',
];

/**
 * What the examples name, in a namespace: the model's ConfigMap, Secret er-redis and Secret
 * aurora-audit-db (the run's shared Redis and PostgreSQL unless a test brings its own).
 */
export async function createExampleDependencies(
  client: KubeClient,
  namespace: string,
  services: { redisUrl: string; postgresUrl: string } = {
    redisUrl: inject('redisUrl'),
    postgresUrl: inject('postgresUrl'),
  },
): Promise<void> {
  const modelConfigMap = parseYamlObjects(readFileSync(exampleModelFiles.configMap, 'utf8'))[0] as KubeObject;
  await client.create({ ...modelConfigMap, metadata: { ...modelConfigMap.metadata, namespace } });
  for (const [name, url] of [
    ['er-redis', services.redisUrl],
    ['aurora-audit-db', services.postgresUrl],
  ] as const)
    await client.create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace },
      stringData: { url },
    });
}

/**
 * The example HealingPolicy as the chaos tests run it: watching the Deployments labelled chaos=target,
 * restarting a pod then the rollout, with budgets that never run out, so every failure gets remediated.
 */
export function chaosHealingPolicy(namespace: string): ExampleManifest {
  const policy = exampleManifest('healing-policy.yaml', namespace);
  return {
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
  };
}
