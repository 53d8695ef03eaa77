// What Argo CD shows of Aurora's kinds: each kind is driven by its real controller into the states Argo
// CD tells apart (healthy, degraded, progressing, suspended), and the kind's health check
// (charts/aurora/files/argocd) runs on the live object with the real runner. With
// AURORA_CAPTURE_HEALTH_FIXTURES=1 the live objects become the checks' testdata and health_test.yaml,
// so every fixture there is real controller output.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { registerInferencePoolController } from '../../controllers/inferencepool/reconcile.ts';
import { registerTriageModelController } from '../../controllers/triagemodel/reconcile.ts';
import type { TriageModel } from '../../crds/kinds.ts';
import { type HealthKind, healthChecksDir } from '../../hack/argocd-health/generate.ts';
import { exampleModelFiles } from '../../hack/example-model/generate.ts';
import { parseYamlObjects, repoRoot } from '../../hack/local-cluster/control-plane.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { deploymentManifest } from '../../hack/local-cluster/triage-servers.ts';
import { createValidatorClient } from '../../model/validator-client.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import { type HealthStatus, health } from '../harness/argocd-health.ts';
import { type CareQueueTestbed, startCareQueueTestbed } from '../harness/carequeue.ts';
import { createTestManager, createTestNamespace, operatorClient, testAccess } from '../harness/cluster.ts';
import {
  guardrails,
  type HealingTestbed,
  ladder,
  selectorFor,
  startHealingTestbed,
} from '../harness/healing.ts';
import { startTestValidator } from '../harness/validator.ts';

const capture = process.env.AURORA_CAPTURE_HEALTH_FIXTURES === '1';
const client = createKubeClient(testAccess());

interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}
type Live = KubeObject & {
  spec?: Record<string, unknown>;
  status?: { observedGeneration?: number; conditions?: Condition[] };
};

/** The fixtures of each kind, in the order health_test.yaml lists them. */
const plan: Record<HealthKind, string[]> = {
  TriageModel: [
    'healthy-validated.yaml',
    'degraded-acceptance-failed.yaml',
    'degraded-source-unavailable.yaml',
    'progressing-validation-retrying.yaml',
    'progressing-no-status.yaml',
    'progressing-generation-lag.yaml',
  ],
  InferencePool: [
    'healthy-serving.yaml',
    'degraded-version-rejected.yaml',
    'degraded-model-not-validated.yaml',
    'progressing-awaiting-validation.yaml',
    'progressing-generation-lag.yaml',
  ],
  CareQueue: [
    'healthy-scaling.yaml',
    'degraded-target-not-found.yaml',
    'degraded-wait-breached.yaml',
    'suspended-paused.yaml',
    'progressing-generation-lag.yaml',
  ],
  HealingPolicy: [
    'healthy-watching.yaml',
    'degraded-audit-unavailable.yaml',
    'degraded-escalated.yaml',
    'degraded-storm.yaml',
    'progressing-healing.yaml',
    'suspended-paused.yaml',
    'suspended-awaiting-approval.yaml',
    'progressing-generation-lag.yaml',
  ],
};
const captured = new Map<HealthKind, Map<string, { resource: Live; expected: HealthStatus }>>();

const ref = (kind: string, name: string, namespace: string) => ({
  apiVersion: 'aurora.health/v1alpha1',
  kind,
  metadata: { name, namespace },
});
const conditionOf = (o: Live, type: string) => o.status?.conditions?.find((c) => c.type === type);
/** The status speaks of the spec as it is now. */
const current = (o: Live) => o.status?.observedGeneration === o.metadata.generation;
const messageOf = (o: Live, type: string) => conditionOf(o, type)?.message;

/** Reads the object until check holds (on a status of the current spec), and returns it. */
function live(kind: string, name: string, namespace: string, what: string, check: (o: Live) => boolean) {
  return waitFor(
    `${kind} ${name}: ${what}`,
    async () => {
      const o = await client.get<Live>(ref(kind, name, namespace));
      return o && current(o) && check(o) ? o : undefined;
    },
    { timeoutMs: 90_000, intervalMs: 200 },
  );
}

/** Runs the kind's health check on the live object, asserts what Argo CD would show, and keeps it. */
async function expectHealth(kind: HealthKind, file: string, resource: Live, expected: HealthStatus) {
  if (!plan[kind].includes(file)) throw new Error(`${file} is not in the plan of ${kind}`);
  expect(expected.message, 'the expected message').toBeTruthy();
  expect(await health(kind, resource)).toEqual(expected);
  const kept = captured.get(kind) ?? new Map();
  kept.set(file, { resource, expected });
  captured.set(kind, kept);
}

const lagMessage = (o: Live) =>
  `Waiting for Aurora to observe generation ${o.metadata.generation} (status is of generation ${o.status?.observedGeneration})`;

/** The object as a fixture: as it is in the API server, less the fields that only identify a version of it. */
function fixture(resource: Live): Live {
  const { managedFields: _m, uid: _u, resourceVersion: _r, ...metadata } = resource.metadata;
  return { ...resource, metadata };
}

/** Writes the kind's testdata and health_test.yaml, when asked to and when every planned state was seen. */
function writeFixtures(kind: HealthKind) {
  if (!capture) return;
  const kept = captured.get(kind) ?? new Map();
  const missing = plan[kind].filter((f) => !kept.has(f));
  if (missing.length > 0) {
    console.warn(`not writing the ${kind} fixtures: ${missing.join(', ')} not captured`);
    return;
  }
  const dir = join(healthChecksDir, kind);
  rmSync(join(dir, 'testdata'), { recursive: true, force: true });
  mkdirSync(join(dir, 'testdata'));
  const tests = plan[kind].map((file) => {
    const { resource, expected } = kept.get(file) as { resource: Live; expected: HealthStatus };
    writeFileSync(join(dir, 'testdata', file), stringify(fixture(resource), { lineWidth: 0 }));
    return { healthStatus: expected, inputPath: `testdata/${file}` };
  });
  writeFileSync(
    join(dir, 'health_test.yaml'),
    `# Written by test/integration/argocd-health.test.ts with AURORA_CAPTURE_HEALTH_FIXTURES=1: each input is
# the object as Aurora's controller left it in the API server, each expectation what Argo CD must show.
${stringify({ tests }, { lineWidth: 0 })}`,
  );
}

describe('TriageModel and InferencePool health', () => {
  const example = parseYamlObjects(
    readFileSync(join(repoRoot, 'examples/triage-model.yaml'), 'utf8'),
  )[0] as TriageModel;
  const examplePool = parseYamlObjects(
    readFileSync(join(repoRoot, 'examples/inference-pool.yaml'), 'utf8'),
  )[0];
  const vectors = (
    parseYamlObjects(readFileSync(exampleModelFiles.configMap, 'utf8'))[0] as KubeObject & {
      data: Record<string, string>;
    }
  ).data['golden-vectors.jsonl'] as string;
  let namespace: string;
  // A namespace whose validator is down: models there wait, and the pools on them.
  let waitingNamespace: string;
  const cleanups: Array<() => Promise<void>> = [];
  let manager: Manager;
  let waitingManager: Manager;
  let validator: Awaited<ReturnType<typeof startTestValidator>>;

  const modelFile = (name: string, ns: string, file: string) => ({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: ns },
    binaryData: { 'model.onnx': readFileSync(file).toString('base64') },
    data: { 'golden-vectors.jsonl': vectors },
  });
  const model = (name: string, ns: string, configMap: string, version = '1.0.0'): TriageModel => {
    const spec = structuredClone(example.spec);
    spec.version = version;
    spec.source = { configMap: { name: configMap, key: 'model.onnx' } };
    spec.acceptance.goldenVectors = { configMap: { name: configMap, key: 'golden-vectors.jsonl' } };
    // Latency is the test machine's; these models are about their verdicts.
    delete spec.acceptance.maxLatencyMs;
    return { ...example, metadata: { name, namespace: ns }, spec };
  };
  // Pods on the cloud nodes, taking no unified memory and little CPU: the Macs stay as the pool tests count them.
  const pool = (name: string, ns: string, modelName: string) => ({
    ...ref('InferencePool', name, ns),
    spec: {
      ...structuredClone(examplePool?.spec as Record<string, unknown>),
      modelRef: { name: modelName },
      minReplicas: 1,
      placement: { appleSilicon: 'Preferred', nodeSelector: { 'kubernetes.io/arch': 'amd64' } },
      resources: { cpu: '10m', memoryHeadroomPercent: 50 },
    },
  });

  beforeAll(async () => {
    const a = await createTestNamespace('argocd-models');
    const b = await createTestNamespace('argocd-waiting');
    namespace = a.name;
    waitingNamespace = b.name;
    cleanups.push(a.cleanup, b.cleanup);
    await client.create(modelFile('er-model-v1', namespace, exampleModelFiles.model));
    await client.create(modelFile('er-model-under', namespace, exampleModelFiles.underTriage));
    await client.create(modelFile('er-model-v1', waitingNamespace, exampleModelFiles.model));
    await client.create(model('er-news2-risk', namespace, 'er-model-v1'));
    await client.create(model('er-under-triage', namespace, 'er-model-under'));
    const unavailable = model('er-missing-file', namespace, 'er-model-v1');
    unavailable.spec.source = { configMap: { name: 'no-such-configmap', key: 'model.onnx' } };
    await client.create(unavailable);
    await client.create(model('er-rollout', namespace, 'er-model-v1'));
    await client.create(pool('er-triage', namespace, 'er-news2-risk'));
    await client.create(pool('er-unvalidated', namespace, 'er-under-triage'));
    await client.create(pool('er-rollout', namespace, 'er-rollout'));
    await client.create(model('er-waiting', waitingNamespace, 'er-model-v1'));
    await client.create(pool('er-waiting', waitingNamespace, 'er-waiting'));

    validator = await startTestValidator();
    manager = createTestManager(operatorClient(), namespace);
    registerTriageModelController(manager, { validator: validator.client });
    registerInferencePoolController(manager, {
      image: 'ghcr.io/aurora-health/aurora:test',
      validator: validator.client,
    });
    // Nothing listens on port 1: every validation there is told as retrying.
    const down = createValidatorClient(() => 'http://127.0.0.1:1');
    waitingManager = createTestManager(operatorClient(), waitingNamespace);
    registerTriageModelController(waitingManager, { validator: down });
    registerInferencePoolController(waitingManager, {
      image: 'ghcr.io/aurora-health/aurora:test',
      validator: down,
    });
    await manager.start();
    await waitingManager.start();
  }, 120_000);

  afterAll(async () => {
    await manager?.stop();
    await waitingManager?.stop();
    await validator?.stop();
    for (const c of cleanups) await c();
    writeFixtures('TriageModel');
    writeFixtures('InferencePool');
  });

  it('TriageModel: Healthy once validated, with the verdict', async () => {
    const o = await live(
      'TriageModel',
      'er-news2-risk',
      namespace,
      'Validated',
      (o) => conditionOf(o, 'Ready')?.reason === 'Validated',
    );
    await expectHealth('TriageModel', 'healthy-validated.yaml', o, {
      status: 'Healthy',
      message: messageOf(o, 'Ready'),
    });
  });

  it('TriageModel: Degraded when acceptance refuses it, with the failures', async () => {
    const o = await live(
      'TriageModel',
      'er-under-triage',
      namespace,
      'AcceptanceFailed',
      (o) => conditionOf(o, 'Ready')?.reason === 'AcceptanceFailed',
    );
    expect(messageOf(o, 'Ready')).toMatch(/failed acceptance: recall of 'high'/);
    await expectHealth('TriageModel', 'degraded-acceptance-failed.yaml', o, {
      status: 'Degraded',
      message: messageOf(o, 'Ready'),
    });
  });

  it('TriageModel: Degraded when its file cannot be read', async () => {
    const o = await live(
      'TriageModel',
      'er-missing-file',
      namespace,
      'Ready False',
      (o) => conditionOf(o, 'Ready')?.status === 'False',
    );
    expect(messageOf(o, 'Ready')).toContain('no-such-configmap');
    await expectHealth('TriageModel', 'degraded-source-unavailable.yaml', o, {
      status: 'Degraded',
      message: messageOf(o, 'Ready'),
    });
  });

  it('TriageModel: Progressing while the validator cannot judge it', async () => {
    const o = await live(
      'TriageModel',
      'er-waiting',
      waitingNamespace,
      'ValidationRetrying',
      (o) => conditionOf(o, 'Ready')?.reason === 'ValidationRetrying',
    );
    expect(conditionOf(o, 'Ready')?.status).toBe('Unknown');
    await expectHealth('TriageModel', 'progressing-validation-retrying.yaml', o, {
      status: 'Progressing',
      message: messageOf(o, 'Ready'),
    });
  });

  it('InferencePool: Healthy when its pods serve the current version', async () => {
    const o = await live(
      'InferencePool',
      'er-triage',
      namespace,
      'serving, current, complete',
      (o) =>
        conditionOf(o, 'Ready')?.status === 'True' &&
        conditionOf(o, 'ModelCurrent')?.status === 'True' &&
        conditionOf(o, 'Progressing')?.reason === 'Complete',
    );
    await expectHealth('InferencePool', 'healthy-serving.yaml', o, {
      status: 'Healthy',
      message: messageOf(o, 'Ready'),
    });
  });

  it('InferencePool: Degraded when its model never passed, though nothing is wrong with the pods', async () => {
    const o = await live(
      'InferencePool',
      'er-unvalidated',
      namespace,
      'ModelNotValidated',
      (o) => conditionOf(o, 'Ready')?.reason === 'ModelNotValidated',
    );
    expect(conditionOf(o, 'Degraded')?.status).toBe('False');
    await expectHealth('InferencePool', 'degraded-model-not-validated.yaml', o, {
      status: 'Degraded',
      message: messageOf(o, 'Ready'),
    });
  });

  it('InferencePool: Progressing while its model waits for validation', async () => {
    const o = await live(
      'InferencePool',
      'er-waiting',
      waitingNamespace,
      'AwaitingValidation',
      (o) => conditionOf(o, 'Ready')?.reason === 'AwaitingValidation',
    );
    await expectHealth('InferencePool', 'progressing-awaiting-validation.yaml', o, {
      status: 'Progressing',
      message: messageOf(o, 'Ready'),
    });
  });

  it('InferencePool: Degraded when a new version is rejected, while the old one still serves', async () => {
    await live(
      'InferencePool',
      'er-rollout',
      namespace,
      'serving 1.0.0',
      (o) => conditionOf(o, 'ModelCurrent')?.status === 'True',
    );
    await client.patch(
      ref('TriageModel', 'er-rollout', namespace),
      { spec: { version: '1.1.0', source: { configMap: { name: 'er-model-under', key: 'model.onnx' } } } },
      { type: 'merge' },
    );
    const o = await live(
      'InferencePool',
      'er-rollout',
      namespace,
      'VersionRejected',
      (o) => conditionOf(o, 'Degraded')?.reason === 'VersionRejected',
    );
    expect(conditionOf(o, 'Ready')?.status).toBe('True');
    await expectHealth('InferencePool', 'degraded-version-rejected.yaml', o, {
      status: 'Degraded',
      message: messageOf(o, 'Degraded'),
    });
  });

  it('both: Progressing while a spec change is not yet reconciled, or no status is written yet', async () => {
    await manager.stop();
    await client.patch(
      ref('TriageModel', 'er-news2-risk', namespace),
      { spec: { version: '1.0.1' } },
      { type: 'merge' },
    );
    await client.patch(
      ref('InferencePool', 'er-triage', namespace),
      { spec: { minReplicas: 2 } },
      { type: 'merge' },
    );
    await client.create(model('er-not-seen-yet', namespace, 'er-model-v1'));
    const laggingModel = await client.get<Live>(ref('TriageModel', 'er-news2-risk', namespace));
    const laggingPool = await client.get<Live>(ref('InferencePool', 'er-triage', namespace));
    const unseen = await client.get<Live>(ref('TriageModel', 'er-not-seen-yet', namespace));
    if (!laggingModel || !laggingPool || !unseen) throw new Error('an object is gone');
    expect(laggingModel.status?.observedGeneration).toBeLessThan(laggingModel.metadata.generation as number);
    expect(laggingPool.status?.observedGeneration).toBeLessThan(laggingPool.metadata.generation as number);
    expect(unseen.status).toBeUndefined();
    await expectHealth('TriageModel', 'progressing-generation-lag.yaml', laggingModel, {
      status: 'Progressing',
      message: lagMessage(laggingModel),
    });
    await expectHealth('InferencePool', 'progressing-generation-lag.yaml', laggingPool, {
      status: 'Progressing',
      message: lagMessage(laggingPool),
    });
    await expectHealth('TriageModel', 'progressing-no-status.yaml', unseen, {
      status: 'Progressing',
      message: 'Waiting for Aurora to report status',
    });
  });
});

describe('CareQueue health', () => {
  let bed: CareQueueTestbed;
  const queue = (name: string, target: string, spec: Record<string, unknown> = {}) =>
    client.create({
      ...ref('CareQueue', name, bed.namespace),
      spec: {
        redis: { urlSecretRef: { name: 'er-redis', key: 'url' } },
        scaleTargetRef: { kind: 'Deployment', name: target },
        minReplicas: 1,
        maxReplicas: 3,
        ...spec,
      },
    });

  beforeAll(async () => {
    bed = await startCareQueueTestbed('argocd-queue');
    const ns = bed.namespace;
    for (const name of ['steady-consumers', 'late-consumers', 'held-consumers'])
      await client.create(deploymentManifest({ name, namespace: ns, replicas: 1 }));
    // Entries wait in the stream with no one to serve them.
    const key = `aurora:${ns}:late:urgent`;
    await bed.redis.xgroup('CREATE', key, 'triage', '0', 'MKSTREAM');
    for (let i = 0; i < 3; i++) await bed.redis.xadd(key, '*', 'features', '{}');
    await queue('steady', 'steady-consumers');
    await queue('orphan', 'no-such-consumers');
    await queue('late', 'late-consumers', { categories: [{ name: 'urgent', maxWaitSeconds: 2 }] });
    await queue('held', 'held-consumers', { paused: true });
  }, 120_000);

  afterAll(async () => {
    await bed?.cleanup();
    writeFixtures('CareQueue');
  });

  it('Healthy while it scales within every wait', async () => {
    const o = await live(
      'CareQueue',
      'steady',
      bed.namespace,
      'Ready, within waits',
      (o) => conditionOf(o, 'Ready')?.status === 'True' && conditionOf(o, 'SLOMet')?.status === 'True',
    );
    await expectHealth('CareQueue', 'healthy-scaling.yaml', o, {
      status: 'Healthy',
      message: messageOf(o, 'Ready'),
    });
  });

  it('Degraded when its target does not exist', async () => {
    const o = await live(
      'CareQueue',
      'orphan',
      bed.namespace,
      'TargetNotFound',
      (o) => conditionOf(o, 'Ready')?.reason === 'TargetNotFound',
    );
    await expectHealth('CareQueue', 'degraded-target-not-found.yaml', o, {
      status: 'Degraded',
      message: messageOf(o, 'Ready'),
    });
  });

  it('Degraded when a category waited past its maximum, with the breach', async () => {
    const o = await live(
      'CareQueue',
      'late',
      bed.namespace,
      'WaitBreached',
      (o) => conditionOf(o, 'SLOMet')?.reason === 'WaitBreached',
    );
    expect(conditionOf(o, 'Ready')?.status).toBe('True');
    expect(messageOf(o, 'SLOMet')).toMatch(/^urgent: oldest entry waited \d+ s \(maximum 2 s\)/);
    await expectHealth('CareQueue', 'degraded-wait-breached.yaml', o, {
      status: 'Degraded',
      message: messageOf(o, 'SLOMet'),
    });
  });

  it('Suspended when paused', async () => {
    const o = await live(
      'CareQueue',
      'held',
      bed.namespace,
      'Paused',
      (o) => conditionOf(o, 'Ready')?.reason === 'Paused',
    );
    await expectHealth('CareQueue', 'suspended-paused.yaml', o, {
      status: 'Suspended',
      message: messageOf(o, 'Ready'),
    });
  });

  it('Progressing while a spec change is not yet reconciled', async () => {
    await bed.manager.stop();
    await client.patch(
      ref('CareQueue', 'steady', bed.namespace),
      { spec: { maxReplicas: 5 } },
      { type: 'merge' },
    );
    const o = await client.get<Live>(ref('CareQueue', 'steady', bed.namespace));
    if (!o) throw new Error('the queue is gone');
    expect(o.status?.observedGeneration).toBeLessThan(o.metadata.generation as number);
    await expectHealth('CareQueue', 'progressing-generation-lag.yaml', o, {
      status: 'Progressing',
      message: lagMessage(o),
    });
  });
});

describe('HealingPolicy health', () => {
  let bed: HealingTestbed;
  const policy = (name: string, spec: Record<string, unknown>) =>
    bed.policy(name, {
      selector: selectorFor(name),
      detectors: { crashLoop: { restarts: 3, windowSeconds: 600 } },
      escalation: ladder(['RestartPod', 600]),
      guardrails: guardrails(),
      ...spec,
    });
  const reason = (o: Live, type: string) => conditionOf(o, type)?.reason;

  beforeAll(async () => {
    bed = await startHealingTestbed('argocd-heal');
    for (const name of ['calm', 'resting', 'mending', 'approval', 'pulling', 'storm-1', 'storm-2', 'storm-3'])
      await bed.deployment(name, {
        replicas: 1,
        labels: { scenario: name.startsWith('storm') ? 'storm' : name },
      });
    await policy('calm', {});
    await policy('resting', { paused: true });
    await policy('unaudited', { audit: { databaseSecretRef: { name: 'no-such-secret', key: 'url' } } });
    bed.fail('app=mending', { kind: 'CrashLoop', restarts: 5 });
    await policy('mending', {});
    bed.fail('app=approval', { kind: 'CrashLoop', restarts: 5 });
    await policy('approval', { approval: { requiredFor: ['RestartPod'] } });
    // Every step is ruled out for an image that cannot be pulled: left to a person at once.
    bed.fail('app=pulling', { kind: 'ImagePull' });
    await policy('pulling', {
      detectors: { readinessFailing: { forSeconds: 10 } },
      escalation: ladder(['RestartPod', 10], ['RestartRollout', 10]),
    });
    // Two of three failing, over the half allowed: a storm.
    const storm = ['storm-1', 'storm-2'].map((app) =>
      bed.fail(`app=${app}`, { kind: 'CrashLoop', restarts: 5 }),
    );
    // Both fail before the policy looks, as in a mass failure.
    await waitFor('two storm targets failing', async () =>
      storm.every((k) => k.failed()) ? true : undefined,
    );
    await policy('storm', { guardrails: guardrails({ maxUnhealthyPercent: 50, stormCooldownSeconds: 600 }) });
  }, 180_000);

  afterAll(async () => {
    await bed?.cleanup();
    writeFixtures('HealingPolicy');
  });

  it('Healthy while it watches healthy targets', async () => {
    const o = await live(
      'HealingPolicy',
      'calm',
      bed.namespace,
      'watching',
      (o) =>
        conditionOf(o, 'Ready')?.reason === 'Watching' &&
        reason(o, 'Healing') === 'Idle' &&
        (o.status as { watchedTargets?: number }).watchedTargets === 1,
    );
    await expectHealth('HealingPolicy', 'healthy-watching.yaml', o, {
      status: 'Healthy',
      message: messageOf(o, 'Ready'),
    });
  });

  it('Degraded when the audit trail cannot be written', async () => {
    const o = await live(
      'HealingPolicy',
      'unaudited',
      bed.namespace,
      'AuditSecretNotFound',
      (o) => reason(o, 'Ready') === 'AuditSecretNotFound',
    );
    await expectHealth('HealingPolicy', 'degraded-audit-unavailable.yaml', o, {
      status: 'Degraded',
      message: messageOf(o, 'Ready'),
    });
  });

  it('Suspended when paused', async () => {
    const o = await live(
      'HealingPolicy',
      'resting',
      bed.namespace,
      'Paused',
      (o) => reason(o, 'Ready') === 'Paused',
    );
    await expectHealth('HealingPolicy', 'suspended-paused.yaml', o, {
      status: 'Suspended',
      message: messageOf(o, 'Ready'),
    });
  });

  it('Progressing while it heals a target', async () => {
    const o = await live(
      'HealingPolicy',
      'mending',
      bed.namespace,
      'Healing',
      (o) => conditionOf(o, 'Healing')?.status === 'True',
    );
    expect(messageOf(o, 'Healing')).toContain('CrashLoop');
    await expectHealth('HealingPolicy', 'progressing-healing.yaml', o, {
      status: 'Progressing',
      message: messageOf(o, 'Healing'),
    });
  });

  it('Suspended while an action waits for a person to approve it', async () => {
    const o = await live(
      'HealingPolicy',
      'approval',
      bed.namespace,
      'AwaitingApproval',
      (o) => reason(o, 'Healing') === 'AwaitingApproval',
    );
    expect(messageOf(o, 'Healing')).toContain('AwaitingApproval');
    await expectHealth('HealingPolicy', 'suspended-awaiting-approval.yaml', o, {
      status: 'Suspended',
      message: messageOf(o, 'Healing'),
    });
  });

  it('Degraded when a target is left to a person', async () => {
    const o = await live(
      'HealingPolicy',
      'pulling',
      bed.namespace,
      'Escalated',
      (o) => reason(o, 'Escalated') === 'LadderExhausted',
    );
    await expectHealth('HealingPolicy', 'degraded-escalated.yaml', o, {
      status: 'Degraded',
      message: messageOf(o, 'Escalated'),
    });
  });

  it('Degraded during a storm, when it acts on nothing', async () => {
    const o = await live(
      'HealingPolicy',
      'storm',
      bed.namespace,
      'MaxUnhealthyExceeded',
      (o) => reason(o, 'StormActive') === 'MaxUnhealthyExceeded',
    );
    await expectHealth('HealingPolicy', 'degraded-storm.yaml', o, {
      status: 'Degraded',
      message: messageOf(o, 'StormActive'),
    });
  });

  it('Progressing while a spec change is not yet reconciled', async () => {
    await bed.manager.stop();
    await client.patch(
      ref('HealingPolicy', 'calm', bed.namespace),
      { spec: { mode: 'DryRun' } },
      { type: 'merge' },
    );
    const o = await client.get<Live>(ref('HealingPolicy', 'calm', bed.namespace));
    if (!o) throw new Error('the policy is gone');
    expect(o.status?.observedGeneration).toBeLessThan(o.metadata.generation as number);
    await expectHealth('HealingPolicy', 'progressing-generation-lag.yaml', o, {
      status: 'Progressing',
      message: lagMessage(o),
    });
  });
});
