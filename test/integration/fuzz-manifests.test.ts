import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerCareQueueController } from '../../controllers/carequeue/reconcile.ts';
import { registerHealingPolicyController } from '../../controllers/healingpolicy/reconcile.ts';
import { registerInferencePoolController } from '../../controllers/inferencepool/reconcile.ts';
import { registerTriageModelController } from '../../controllers/triagemodel/reconcile.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { ApiError, createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { createLogger } from '../../operator/log.ts';
import type { Manager } from '../../operator/manager.ts';
import {
  createTestManager,
  createTestNamespace,
  operatorClient,
  testAccess,
  uniqueSuffix,
} from '../harness/cluster.ts';
import { createExampleDependencies, exampleFiles, exampleManifest } from '../harness/examples.ts';
import { type Mutation, mutate } from '../harness/fuzz.ts';
import { startTestValidator } from '../harness/validator.ts';

const client = createKubeClient(testAccess());
const examples = exampleFiles.map((f) => exampleManifest(f));
// 60 per kind, 240 in all; the seed is fixed so a failure names a case that can be replayed.
const cases: Mutation[] = examples.flatMap((base, i) =>
  mutate(base, { seed: 20261128 + i, perKind: 60, prefix: `fuzz-${base.kind.toLowerCase()}` }),
);

type Status = {
  observedGeneration?: number;
  conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
};
let namespace: string;
let cleanup: () => Promise<void>;
let manager: Manager;
let validator: Awaited<ReturnType<typeof startTestValidator>>;
const schema = `test_fuzz_${uniqueSuffix()}`;
const errorLogs: string[] = [];

beforeAll(async () => {
  ({ name: namespace, cleanup } = await createTestNamespace('fuzz'));
  // What the example manifests name, so accepted cases get as far as their controllers go.
  await createExampleDependencies(client, namespace);
  validator = await startTestValidator();
  manager = createTestManager(operatorClient(), namespace, {
    log: createLogger({
      level: 'error',
      destination: { write: (line: string) => void errorLogs.push(line) },
    }),
  });
  registerTriageModelController(manager, { validator: validator.client });
  registerInferencePoolController(manager, {
    image: 'ghcr.io/aurora-health/aurora:test',
    validator: validator.client,
  });
  registerCareQueueController(manager, {});
  registerHealingPolicyController(manager, {
    protectedNamespaces: [],
    auditSchema: schema,
    identity: 'test-fuzz',
    checkIntervalMs: 1_000,
  });
  await manager.start();
}, 120_000);

afterAll(async () => {
  await manager?.stop();
  await validator?.stop();
  await cleanup?.();
});

/** Sums a counter's series for one controller from the manager's metrics. */
async function counter(name: string): Promise<Map<string, number>> {
  const text = await manager.metrics.registry.metrics();
  const sums = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^${name}\\{[^}]*controller="([^"]+)"[^}]*\\} (\\d+)`, 'gm')))
    sums.set(m[1] as string, (sums.get(m[1] as string) ?? 0) + Number(m[2]));
  return sums;
}

describe('fuzzed manifests', () => {
  it(`${cases.length} mutations of the examples: each refused with its field named, or handled with a condition`, async () => {
    expect(cases.length).toBeGreaterThanOrEqual(200);
    const accepted: Mutation[] = [];
    const refused: Array<{ c: Mutation; message: string }> = [];
    const info = new Map<string, Awaited<ReturnType<typeof client.resource>>>();
    for (const c of cases) {
      const { apiVersion, kind } = c.manifest;
      const key = `${apiVersion}/${kind}`;
      if (!info.has(key)) info.set(key, await client.resource(apiVersion, kind));
      try {
        // As kubectl sends it: unknown fields are errors, not silently dropped.
        await client.request('POST', client.path(info.get(key) as never, namespace), {
          query: { fieldValidation: 'Strict' },
          body: { ...c.manifest, metadata: { ...c.manifest.metadata, namespace } },
        });
        accepted.push(c);
      } catch (err) {
        if (!(err instanceof ApiError) || err.status >= 500) throw err;
        refused.push({ c, message: err.message });
      }
    }
    // A refusal names the field it is about: the mutated field, or the object holding it (a rule across
    // fields, such as a minimum above its maximum, is the object's).
    const named = ({ c, message }: { c: Mutation; message: string }) => {
      const fields = c.path.split(/[.[\]]+/).filter((f) => f && !/^\d+$/.test(f));
      return fields.slice(-2).some((f) => message.includes(f)) && /spec/.test(message);
    };
    const unnamed = refused.filter((r) => !named(r));
    expect(unnamed.map(({ c, message }) => `${c.description}: ${message}`)).toEqual([]);

    // Every accepted case is handled: its status catches up and Ready says how it stands.
    const unsettled = async () => {
      const left: string[] = [];
      for (const c of accepted) {
        const live = await client.get<KubeObject & { status?: Status }>({
          ...c.manifest,
          metadata: { name: c.manifest.metadata.name, namespace },
        });
        const ready = live?.status?.conditions?.find((x) => x.type === 'Ready');
        if (
          !live ||
          live.status?.observedGeneration !== live.metadata.generation ||
          !ready?.reason ||
          !ready.message
        )
          left.push(`${c.manifest.kind} ${c.manifest.metadata.name} (${c.description})`);
      }
      return left;
    };
    await waitFor(
      'every accepted case to be handled',
      async () => ((await unsettled()).length === 0 ? true : undefined),
      {
        timeoutMs: 150_000,
        intervalMs: 2_000,
      },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}; not handled: ${(await unsettled()).join(', ')}`);
    });

    // No reconcile failed in a way that is retried (an exception, a crash): only terminal verdicts.
    const errors = await counter('controller_runtime_reconcile_errors_total');
    const terminal = await counter('controller_runtime_terminal_reconcile_errors_total');
    for (const [controller, n] of errors)
      expect(n - (terminal.get(controller) ?? 0), `${controller}: ${errorLogs.slice(0, 3).join('\n')}`).toBe(
        0,
      );

    // No hot loop: once settled, no controller reconciles an object more than once a second.
    const before = await counter('controller_runtime_reconcile_total');
    await new Promise((r) => setTimeout(r, 5_000));
    const after = await counter('controller_runtime_reconcile_total');
    const perKind = new Map<string, number>();
    for (const c of accepted) perKind.set(c.manifest.kind, (perKind.get(c.manifest.kind) ?? 0) + 1);
    for (const [controller, n] of after) {
      const objects =
        [...perKind].find(([kind]) => kind.toLowerCase() === controller.replace(/-/g, ''))?.[1] ?? 1;
      expect((n - (before.get(controller) ?? 0)) / 5 / Math.max(objects, 1), controller).toBeLessThanOrEqual(
        1,
      );
    }
    // Both outcomes happen: the schema refuses what it can, and the controllers judge the rest.
    expect(refused.length).toBeGreaterThan(50);
    expect(accepted.length).toBeGreaterThan(20);
    console.log(
      `fuzzed manifests: ${cases.length} cases, ${refused.length} refused with the field named, ${accepted.length} accepted and handled`,
    );
  }, 300_000);
});
