// The InferencePool and node-capacity controllers on the real control plane: the real scheduler places
// pool pods on the simulated Mac minis by the unified memory the operator advertises. The tests share
// the four Apple nodes, so they run one after another and each removes its pools before the next.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerInferencePoolController } from '../../controllers/inferencepool/reconcile.ts';
import { registerNodeCapacityController } from '../../controllers/node/reconcile.ts';
import { registerTriageModelController } from '../../controllers/triagemodel/reconcile.ts';
import type { InferencePool, TriageModel } from '../../crds/kinds.ts';
import { unifiedMemoryResource } from '../../crds/labels.ts';
import { exampleModelFiles } from '../../hack/example-model/generate.ts';
import { paddedModel } from '../../hack/example-model/onnx.ts';
import { parseYamlObjects, repoRoot } from '../../hack/local-cluster/control-plane.ts';
import { hospitalFleet } from '../../hack/local-cluster/fleet.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { createLogger } from '../../operator/log.ts';
import type { Manager } from '../../operator/manager.ts';
import { firstFitDecreasing, podUnifiedMemoryMiB } from '../../placement/unified-memory.ts';
import { createTestManager, createTestNamespace, operatorClient, testAccess } from '../harness/cluster.ts';
import { startTestValidator } from '../harness/validator.ts';

const client = createKubeClient(testAccess());
const appleNodes = hospitalFleet.filter((m) => m.apple).map((m) => m.name);
const exampleModel = parseYamlObjects(
  readFileSync(join(repoRoot, 'examples/triage-model.yaml'), 'utf8'),
)[0] as TriageModel;
const examplePool = parseYamlObjects(
  readFileSync(join(repoRoot, 'examples/inference-pool.yaml'), 'utf8'),
)[0] as InferencePool;
const exampleConfigMap = parseYamlObjects(
  readFileSync(exampleModelFiles.configMap, 'utf8'),
)[0] as KubeObject & {
  binaryData: Record<string, string>;
  data: Record<string, string>;
};
const goodModel = readFileSync(exampleModelFiles.model);
// The same network with a doc_string appended (ModelProto field 6): behaves alike, another digest.
const docString = Buffer.from('re-exported 2026-11 for the 1.2.0 release');
const goodModelVariant = Buffer.concat([goodModel, Buffer.from([0x32, docString.length]), docString]);
const underTriageModel = readFileSync(exampleModelFiles.underTriage);

let namespace: string;
let cleanup: () => Promise<void>;
let manager: Manager;
let validator: Awaited<ReturnType<typeof startTestValidator>>;
const operatorLog: string[] = [];

interface Pod extends KubeObject {
  spec: { nodeName?: string; containers: Array<{ resources: { requests: Record<string, string> } }> };
  status?: { conditions?: Array<{ type: string; status: string; reason?: string }> };
}
interface Deployment extends KubeObject {
  spec: { template: { metadata: { annotations: Record<string, string> } } };
}
interface Node extends KubeObject {
  status: { allocatable: Record<string, string> };
}

const ref = (kind: string, name: string, apiVersion = 'aurora.health/v1alpha1') => ({
  apiVersion,
  kind,
  metadata: { name, namespace },
});
const getPool = (name: string) => client.get<InferencePool>(ref('InferencePool', name));
const condition = (pool: InferencePool | undefined, type: string) =>
  pool?.status?.conditions?.find((c) => c.type === type);
const podsOf = async (pool: string) =>
  (
    await client.list<Pod>('v1', 'Pod', { namespace, labelSelector: `aurora.health/pool=${pool}` })
  ).items.filter((p) => !p.metadata.deletionTimestamp);

function modelConfigMap(name: string, model: Uint8Array): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace },
    binaryData: { 'model.onnx': Buffer.from(model).toString('base64') },
    data: { 'golden-vectors.jsonl': exampleConfigMap.data['golden-vectors.jsonl'] as string },
  };
}

function triageModel(name: string, version: string, configMap: string): TriageModel {
  const spec = structuredClone(exampleModel.spec);
  spec.version = version;
  spec.source = { configMap: { name: configMap, key: 'model.onnx' } };
  spec.acceptance.goldenVectors = { configMap: { name: configMap, key: 'golden-vectors.jsonl' } };
  // Latency is measured on whatever machine runs the tests; this suite is about placement.
  delete spec.acceptance.maxLatencyMs;
  return { ...exampleModel, metadata: { name, namespace }, spec };
}

function pool(name: string, spec: Record<string, unknown> = {}): InferencePool {
  return {
    apiVersion: 'aurora.health/v1alpha1',
    kind: 'InferencePool',
    metadata: { name, namespace },
    spec: { ...structuredClone(examplePool.spec), ...spec } as InferencePool['spec'],
  };
}

async function waitPool(
  name: string,
  what: string,
  check: (p: InferencePool) => boolean,
  timeoutMs = 60_000,
) {
  return waitFor(
    `InferencePool ${name}: ${what}`,
    async () => {
      const p = await getPool(name);
      return p && p.status?.observedGeneration === p.metadata.generation && check(p) ? p : undefined;
    },
    { timeoutMs },
  );
}

async function removePools(...names: string[]) {
  for (const name of names) await client.delete(ref('InferencePool', name));
  await waitFor(
    'the pools and their pods to be gone',
    async () => {
      const left = (
        await client.list<Pod>('v1', 'Pod', { namespace, labelSelector: 'aurora.health/pool' })
      ).items.filter((p) => names.includes(p.metadata.labels?.['aurora.health/pool'] ?? ''));
      return left.length === 0 ? true : undefined;
    },
    { timeoutMs: 90_000 },
  );
}

/** Unified memory requested by the pods bound to each Apple node, next to what the node offers. */
async function unifiedMemoryByNode() {
  const pods = (await client.list<Pod>('v1', 'Pod', { labelSelector: 'aurora.health/pool' })).items;
  const nodes = (await client.list<Node>('v1', 'Node')).items;
  return nodes
    .filter((n) => appleNodes.includes(n.metadata.name))
    .map((n) => ({
      node: n.metadata.name,
      allocatableMiB: Number(n.status.allocatable[unifiedMemoryResource]),
      requestedMiB: pods
        .filter((p) => p.spec.nodeName === n.metadata.name && !p.metadata.deletionTimestamp)
        .reduce(
          (sum, p) => sum + Number(p.spec.containers[0]?.resources.requests[unifiedMemoryResource] ?? 0),
          0,
        ),
    }));
}

beforeAll(async () => {
  ({ name: namespace, cleanup } = await createTestNamespace('pool'));
  await client.create(modelConfigMap('er-model-v1', goodModel));
  await client.create(triageModel('er-news2-risk', '1.0.0', 'er-model-v1'));
  // Everything the operator logs is kept, so tests can search it for what must never be there.
  manager = createTestManager(operatorClient(), namespace, {
    log: createLogger({
      level: 'debug',
      destination: { write: (line: string) => void operatorLog.push(line) },
    }),
  });
  // The model server below listens on loopback, which the operator refuses unless told otherwise.
  validator = await startTestValidator();
  registerTriageModelController(manager, { validator: validator.client });
  registerNodeCapacityController(manager);
  registerInferencePoolController(manager, {
    image: 'ghcr.io/aurora-health/aurora:test',
    validator: validator.client,
  });
  await manager.start();
  await waitFor(
    'TriageModel er-news2-risk validated',
    async () => {
      const m = await client.get<TriageModel>(ref('TriageModel', 'er-news2-risk'));
      return m?.status?.validatedVersion === '1.0.0' ? m : undefined;
    },
    { timeoutMs: 60_000 },
  );
}, 120_000);

// Whatever a test leaves behind (a failed assertion skips its own clean-up) must not crowd the next.
afterEach(async () => {
  const left = (await client.list('aurora.health/v1alpha1', 'InferencePool', { namespace })).items;
  await removePools(...left.map((p) => p.metadata.name));
}, 120_000);

afterAll(async () => {
  await manager?.stop();
  await validator?.stop();
  await cleanup?.();
});

describe('unified memory as an extended resource', () => {
  it('each profiled Mac advertises its unified memory less the system share; other nodes none', async () => {
    const nodes = await waitFor('Apple nodes to advertise unified memory', async () => {
      const list = (await client.list<Node>('v1', 'Node')).items;
      const apple = list.filter((n) => appleNodes.includes(n.metadata.name));
      return apple.every((n) => n.status.allocatable[unifiedMemoryResource]) ? list : undefined;
    });
    const fleet = hospitalFleet.map((m) => m.name);
    const advertised = Object.fromEntries(
      nodes
        .filter((n) => fleet.includes(n.metadata.name))
        .map((n) => [n.metadata.name, n.status.allocatable[unifiedMemoryResource] ?? 'none']),
    );
    expect(advertised).toEqual({
      'mac-mini-m4-1': '20480',
      'mac-mini-m4-2': '20480',
      'mac-mini-m4-3': '20480',
      'mac-mini-m4-pro-1': '55705',
      'cloud-amd64-1': 'none',
      'cloud-amd64-2': 'none',
    });
  });
});

describe('unified memory follows the profile', () => {
  it('a Mac that joins is advertised; one whose profile goes is withdrawn', async () => {
    // Not a kwok node, and tainted, so no pool of these tests lands on it.
    const name = `joining-mac-${namespace}`;
    const nodeRef = { apiVersion: 'v1', kind: 'Node', metadata: { name } };
    await client.create({
      ...nodeRef,
      metadata: {
        name,
        labels: {
          'aurora.health/apple-silicon': 'true',
          'aurora.health/chip': 'm4',
          'aurora.health/unified-memory-gib': '16',
        },
      },
      spec: { taints: [{ key: 'aurora.health/test', effect: 'NoSchedule' }] },
    } as KubeObject);
    try {
      const advertised = await waitFor('the joining Mac to be advertised', async () => {
        const n = await client.get<Node>(nodeRef);
        return n?.status?.allocatable?.[unifiedMemoryResource];
      });
      expect(advertised).toBe('12288');
      await client.patch(
        nodeRef,
        { metadata: { labels: { 'aurora.health/apple-silicon': null } } },
        { type: 'merge' },
      );
      await waitFor('the resource to be withdrawn', async () => {
        const n = await client.get<Node>(nodeRef);
        return n && n.status?.allocatable?.[unifiedMemoryResource] === undefined ? true : undefined;
      });
    } finally {
      await client.delete(nodeRef);
    }
  });
});

describe('the InferencePool controller', () => {
  it('serves the example pool on Apple nodes only, one pod per machine, with Service and PDB', async () => {
    await client.create(pool('er-triage', { minReplicas: 3 }));
    // Ready comes with the pods; ModelCurrent once the Deployment counts the rollout done.
    const ready = await waitPool(
      'er-triage',
      'Ready and current',
      (p) => condition(p, 'Ready')?.status === 'True' && condition(p, 'ModelCurrent')?.status === 'True',
    );
    expect(condition(ready, 'Ready')?.reason).toBe('Serving');
    expect(condition(ready, 'ModelCurrent')).toMatchObject({ status: 'True', reason: 'Current' });
    expect(ready.status?.servedModel).toMatchObject({ name: 'er-news2-risk', version: '1.0.0' });
    expect(ready.status?.readyReplicas).toBe(3);

    const pods = await podsOf('er-triage');
    const nodes = pods.map((p) => p.spec.nodeName ?? '');
    expect(nodes.every((n) => appleNodes.includes(n))).toBe(true);
    expect(new Set(nodes).size).toBe(3);
    expect(ready.status?.placement?.map((p) => p.replicas)).toEqual([1, 1, 1]);
    expect(ready.status?.placement?.every((p) => p.chip === 'm4' || p.chip === 'm4-pro')).toBe(true);
    // The server's base plus the measured model memory and 50 % headroom.
    const measured =
      (await client.get<TriageModel>(ref('TriageModel', 'er-news2-risk')))?.status?.measuredMemoryMiB ?? 0;
    expect(measured).toBeGreaterThan(0);
    expect(pods[0]?.spec.containers[0]?.resources.requests[unifiedMemoryResource]).toBe(
      String(podUnifiedMemoryMiB(measured, 50)),
    );

    const service = await client.get<KubeObject & { spec: { selector: Record<string, string> } }>(
      ref('Service', 'er-triage', 'v1'),
    );
    expect(service?.spec.selector).toEqual({ 'aurora.health/pool': 'er-triage' });
    const pdb = await client.get<KubeObject & { spec: { maxUnavailable: number } }>(
      ref('PodDisruptionBudget', 'er-triage', 'policy/v1'),
    );
    expect(pdb?.spec.maxUnavailable).toBe(1);
    const policy = await client.get<KubeObject & { spec: { podSelector: unknown; policyTypes: string[] } }>(
      ref('NetworkPolicy', 'er-triage', 'networking.k8s.io/v1'),
    );
    expect(policy?.spec).toMatchObject({
      podSelector: { matchLabels: { 'aurora.health/pool': 'er-triage' } },
      policyTypes: ['Ingress'],
    });

    // The scale subresource moves replicas, as a CareQueue or an HPA would.
    await client.patch(
      ref('InferencePool', 'er-triage'),
      { spec: { replicas: 4 } },
      { type: 'merge', subresource: 'scale' },
    );
    const scaled = await waitPool(
      'er-triage',
      '4 ready',
      (p) => p.status?.readyReplicas === 4 && condition(p, 'Ready')?.status === 'True',
    );
    expect(scaled.status?.placement?.map((p) => p.node).sort()).toEqual([...appleNodes].sort());
    const scale = await client.request<{ status: { replicas: number; selector: string } }>(
      'GET',
      `/apis/aurora.health/v1alpha1/namespaces/${namespace}/inferencepools/er-triage/scale`,
    );
    expect(scale.status).toEqual({ replicas: 4, selector: 'aurora.health/pool=er-triage' });
    await removePools('er-triage');
  });

  it('places a pool that needs 30 GiB per pod on the only Mac that can hold it', async () => {
    await client.create(pool('er-large', { minReplicas: 1, resources: { memory: '30Gi' } }));
    const ready = await waitPool('er-large', 'Ready', (p) => condition(p, 'Ready')?.status === 'True');
    expect(ready.status?.placement).toEqual([{ node: 'mac-mini-m4-pro-1', chip: 'm4-pro', replicas: 1 }]);
    await removePools('er-large');
  });

  it('Preferred placement falls back to other nodes when no Apple node matches, reserving no unified memory', async () => {
    await client.create(
      pool('er-anywhere', { minReplicas: 1, placement: { appleSilicon: 'Preferred', chips: ['m4-max'] } }),
    );
    const ready = await waitPool('er-anywhere', 'Ready', (p) => condition(p, 'Ready')?.status === 'True');
    expect(ready.status?.placement).toHaveLength(1);
    const [pod] = await podsOf('er-anywhere');
    expect(pod?.spec.containers[0]?.resources.requests[unifiedMemoryResource]).toBeUndefined();
    await removePools('er-anywhere');
  });

  it('a model served over HTTP is released with its file, so the pods never depend on the server again', async () => {
    const files = createServer((req, res) => {
      if (req.url !== '/er.onnx') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': goodModel.length }).end(goodModel);
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    const model = triageModel('er-http', '1.0.0', 'er-model-v1');
    model.spec.source = {
      http: {
        url: `http://127.0.0.1:${(files.address() as AddressInfo).port}/er.onnx`,
        sha256: createHash('sha256').update(goodModel).digest('hex'),
        timeoutSeconds: 10,
        maxSizeMiB: 16,
      },
    };
    await client.create(model);
    await client.create(pool('er-http', { modelRef: { name: 'er-http' }, minReplicas: 1 }));
    try {
      await waitPool('er-http', 'Ready', (p) => condition(p, 'Ready')?.status === 'True');
    } finally {
      files.closeAllConnections();
      files.close();
    }
    const [release] = (
      await client.list<KubeObject & { binaryData?: Record<string, string> }>('v1', 'ConfigMap', {
        namespace,
        labelSelector: 'aurora.health/release-of=er-http',
      })
    ).items;
    expect(Buffer.from(release?.binaryData?.['model.onnx'] ?? '', 'base64').equals(goodModel)).toBe(true);
    const d = await client.get<
      Deployment & { spec: { template: { spec: { containers: Array<{ env: Array<{ name: string }> }> } } } }
    >(ref('Deployment', 'er-http', 'apps/v1'));
    const env = d?.spec.template.spec.containers[0]?.env.map((e) => e.name) ?? [];
    expect(env).toContain('AURORA_MODEL_FILE');
    expect(env).not.toContain('AURORA_MODEL_URL');
    // With the server gone, the pool still scales: new pods mount the release.
    await client.patch(
      ref('InferencePool', 'er-http'),
      { spec: { replicas: 2 } },
      { type: 'merge', subresource: 'scale' },
    );
    await waitPool(
      'er-http',
      '2 ready',
      (p) => p.status?.readyReplicas === 2 && condition(p, 'Ready')?.status === 'True',
    );
    await removePools('er-http');
  });

  it('a URL kept in a Secret reaches the pods through secretKeyRef and appears nowhere else', async () => {
    const token = 'X-Amz-Signature=tok3n-s3cr3t-9f8e7d';
    // Over 960 KiB, so each pod downloads the file itself with the URL from the Secret.
    const big = paddedModel(goodModel, 1024 * 1024);
    const files = createServer((req, res) => {
      if (req.url !== `/big.onnx?${token}`) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': big.length }).end(big);
    });
    await new Promise<void>((resolve) => files.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
    const secret = (name: string, url: string) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace },
      stringData: { url },
    });
    await client.create(secret('model-url', `${base}/big.onnx?${token}`));
    await client.create(secret('wrong-url', `${base}/elsewhere.onnx?${token}`));
    const fromSecret = (name: string, secretName: string) => {
      const model = triageModel(name, '1.0.0', 'er-model-v1');
      model.spec.source = {
        http: {
          urlSecretRef: { name: secretName, key: 'url' },
          sha256: createHash('sha256').update(big).digest('hex'),
          timeoutSeconds: 10,
          maxSizeMiB: 16,
        },
      };
      return model;
    };
    try {
      await client.create(fromSecret('er-secret-url', 'model-url'));
      await client.create(fromSecret('er-secret-404', 'wrong-url'));
      await client.create(pool('er-secret', { modelRef: { name: 'er-secret-url' }, minReplicas: 1 }));
      await waitPool('er-secret', 'Ready', (p) => condition(p, 'Ready')?.status === 'True');
      const failed = await waitFor('the 404 reported', async () => {
        const m = await client.get<TriageModel>(ref('TriageModel', 'er-secret-404'));
        return m?.status?.conditions?.find((c) => c.type === 'Ready' && c.reason === 'SourceUnavailable');
      });
      expect(failed.message).toBe(`the URL in Secret ${namespace}/wrong-url (key url) answered HTTP 404`);
      const d = await client.get<
        KubeObject & { spec: { template: { spec: { containers: Array<{ env: unknown[] }> } } } }
      >(ref('Deployment', 'er-secret', 'apps/v1'));
      expect(d?.spec.template.spec.containers[0]?.env).toContainEqual({
        name: 'AURORA_MODEL_URL',
        valueFrom: { secretKeyRef: { name: 'model-url', key: 'url' } },
      });
      // Everything Aurora wrote, read back, and everything it logged: the token is in none of it.
      const written: unknown[] = [];
      for (const [apiVersion, kind] of [
        ['v1', 'ConfigMap'],
        ['apps/v1', 'Deployment'],
        ['apps/v1', 'ReplicaSet'],
        ['v1', 'Pod'],
        ['v1', 'Service'],
        ['events.k8s.io/v1', 'Event'],
        ['aurora.health/v1alpha1', 'TriageModel'],
        ['aurora.health/v1alpha1', 'InferencePool'],
      ] as const)
        written.push(...(await client.list(apiVersion, kind, { namespace })).items);
      const everything = [JSON.stringify(written), ...operatorLog, ...validator.logs].join('\n');
      expect(everything).toContain('er-secret-404');
      expect(everything).not.toContain('tok3n-s3cr3t');
      expect(everything).not.toContain('big.onnx');
    } finally {
      files.closeAllConnections();
      files.close();
      await client.delete(ref('TriageModel', 'er-secret-404'));
      await removePools('er-secret');
    }
  });

  it('a model too large for any node stays Pending with ModelTooLarge and both figures', async () => {
    await client.create(pool('er-huge', { minReplicas: 1, resources: { memory: '60Gi' } }));
    const stuck = await waitPool(
      'er-huge',
      'Placed False',
      (p) => condition(p, 'Placed')?.status === 'False',
    );
    expect(condition(stuck, 'Placed')).toMatchObject({
      reason: 'ModelTooLarge',
      message:
        '1 of 1 pod(s) cannot be placed: each needs 61440 MiB of unified memory; the largest allowed node (mac-mini-m4-pro-1) offers 55705 MiB',
    });
    expect(condition(stuck, 'Ready')).toMatchObject({ status: 'False', reason: 'ModelTooLarge' });
    const [pod] = await podsOf('er-huge');
    expect(pod?.spec.nodeName).toBeUndefined();
    await removePools('er-huge');
  });

  it('a Deployment the API server refuses is Ready=False ApplyFailed with its words, until admitted', async () => {
    // A cluster policy, as a platform team might have, that forbids this pool's Deployment.
    const policyName = `deny-refused-pool-${namespace}`;
    const policy = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name: policyName },
      spec: {
        failurePolicy: 'Fail',
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: ['apps'],
              apiVersions: ['v1'],
              operations: ['CREATE', 'UPDATE'],
              resources: ['deployments'],
            },
          ],
        },
        validations: [
          {
            expression: "object.metadata.name != 'er-refused'",
            message: 'er-refused may not run in this namespace (policy triage-capacity)',
          },
        ],
      },
    };
    const binding = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name: policyName },
      spec: {
        policyName,
        validationActions: ['Deny'],
        matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } },
      },
    };
    await client.create(policy);
    await client.create(binding);
    try {
      // The policy takes effect once the API server has loaded it.
      await waitFor('the policy to deny', async () => {
        const denied = await client
          .create({
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: 'er-refused', namespace },
            spec: {
              selector: { matchLabels: { probe: 'x' } },
              template: {
                metadata: { labels: { probe: 'x' } },
                spec: { containers: [{ name: 'c', image: 'x' }] },
              },
            },
          })
          .then(
            async (d) => {
              await client.delete(d);
              return undefined;
            },
            () => true,
          );
        return denied;
      });
      await client.create(pool('er-refused', { minReplicas: 1 }));
      const refused = await waitPool(
        'er-refused',
        'Ready ApplyFailed',
        (p) => condition(p, 'Ready')?.reason === 'ApplyFailed',
      );
      expect(condition(refused, 'Ready')?.status).toBe('False');
      expect(condition(refused, 'Ready')?.message).toMatch(
        /^the API server refused Deployment er-refused: .*er-refused may not run in this namespace \(policy triage-capacity\)/,
      );
      await client.delete(
        ref('ValidatingAdmissionPolicyBinding', policyName, 'admissionregistration.k8s.io/v1'),
      );
      await waitPool(
        'er-refused',
        'Ready once admitted',
        (p) => condition(p, 'Ready')?.reason !== 'ApplyFailed',
        90_000,
      );
    } finally {
      await client.delete(
        ref('ValidatingAdmissionPolicyBinding', policyName, 'admissionregistration.k8s.io/v1'),
      );
      await client.delete(ref('ValidatingAdmissionPolicy', policyName, 'admissionregistration.k8s.io/v1'));
      await removePools('er-refused');
    }
  });

  it('pods that do not fit beside others wait with InsufficientUnifiedMemory and the shortfall', async () => {
    // 18 GiB per pod fits once on each M4 (20,480 MiB), so the fourth M4-only pod has nowhere to go.
    await client.create(
      pool('er-m4', { minReplicas: 4, placement: { chips: ['m4'] }, resources: { memory: '18Gi' } }),
    );
    const stuck = await waitPool(
      'er-m4',
      'one pod unplaced',
      (p) =>
        condition(p, 'Placed')?.reason === 'InsufficientUnifiedMemory' &&
        condition(p, 'Degraded')?.status === 'True' &&
        p.status?.readyReplicas === 3,
    );
    const shortfall =
      /^1 of 4 pod\(s\) cannot be placed: each needs 18432 MiB of unified memory; the most free on an allowed node is (\d+) MiB \(mac-mini-m4-\d\), (\d+) MiB short$/.exec(
        condition(stuck, 'Placed')?.message ?? '',
      );
    expect(shortfall, condition(stuck, 'Placed')?.message).not.toBeNull();
    // 2,048 MiB are left on each M4, less whatever pods of earlier tests still hold while they terminate.
    const [freeMiB, shortMiB] = [Number(shortfall?.[1]), Number(shortfall?.[2])];
    expect(freeMiB).toBeLessThanOrEqual(2048);
    expect(shortMiB).toBe(18_432 - freeMiB);
    expect(condition(stuck, 'Degraded')).toMatchObject({
      status: 'True',
      reason: 'InsufficientUnifiedMemory',
    });
    expect(stuck.status?.placement?.map((p) => p.node).sort()).toEqual([
      'mac-mini-m4-1',
      'mac-mini-m4-2',
      'mac-mini-m4-3',
    ]);
    await removePools('er-m4');
  });

  it('moves to a new version only after it passed acceptance; a failing version keeps the old one serving', async () => {
    await client.create(pool('er-roll', { minReplicas: 2 }));
    const first = await waitPool('er-roll', 'Ready', (p) => condition(p, 'Ready')?.status === 'True');
    expect(first.status?.servedModel?.version).toBe('1.0.0');
    // Every template the Deployment ever carries, from a watch: none may name a version that failed.
    const templates: string[] = [];
    const stopWatch = new AbortController();
    const deploymentsPath = client.path(await client.resource('apps/v1', 'Deployment'), namespace);
    const watching = client
      .watch(
        deploymentsPath,
        { fieldSelector: 'metadata.name=er-roll' },
        (event) => {
          const d = event.object as unknown as Deployment;
          const v = d.spec?.template?.metadata?.annotations?.['aurora.health/model-version'];
          if (v && templates.at(-1) !== v) templates.push(v);
        },
        stopWatch.signal,
      )
      .catch(() => {});
    try {
      // 1.1.0 under-triages: acceptance refuses it.
      await client.create(modelConfigMap('er-model-v1-1', underTriageModel));
      await patchModel('1.1.0', 'er-model-v1-1');
      const rejected = await waitPool(
        'er-roll',
        'VersionRejected',
        (p) => condition(p, 'ModelCurrent')?.reason === 'VersionRejected',
      );
      expect(condition(rejected, 'ModelCurrent')?.message).toMatch(
        /^TriageModel er-news2-risk version 1\.1\.0 was not validated \(AcceptanceFailed\): .*recall.*; still serving version 1\.0\.0$/,
      );
      expect(condition(rejected, 'Degraded')).toMatchObject({ status: 'True', reason: 'VersionRejected' });
      expect(condition(rejected, 'Ready')).toMatchObject({ status: 'True', reason: 'Serving' });
      expect(rejected.status?.servedModel?.version).toBe('1.0.0');
      const pods = await podsOf('er-roll');
      expect(pods.map((p) => p.metadata.annotations?.['aurora.health/model-version'])).toEqual([
        '1.0.0',
        '1.0.0',
      ]);

      // 1.2.0 passes: the pods move.
      await client.create(modelConfigMap('er-model-v1-2', goodModelVariant));
      await patchModel('1.2.0', 'er-model-v1-2');
      const moved = await waitPool(
        'er-roll',
        'serving 1.2.0',
        (p) =>
          condition(p, 'Progressing')?.reason === 'Complete' && p.status?.servedModel?.version === '1.2.0',
        90_000,
      );
      expect(condition(moved, 'ModelCurrent')).toMatchObject({ status: 'True', reason: 'Current' });
      expect(moved.status?.servedModel?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(moved.status?.servedModel?.digest).not.toBe(first.status?.servedModel?.digest);
      const after = await podsOf('er-roll');
      expect(after.map((p) => p.metadata.annotations?.['aurora.health/model-version'])).toEqual([
        '1.2.0',
        '1.2.0',
      ]);
      // Releases exist for the versions served, none for the one that failed.
      const releases = (
        await client.list('v1', 'ConfigMap', { namespace, labelSelector: 'aurora.health/release-of=er-roll' })
      ).items.map((cm) => cm.metadata.annotations?.['aurora.health/model-version']);
      expect(releases.sort()).toEqual(['1.0.0', '1.2.0']);

      // A HealingPolicy's rollback (annotations on the pool, its spec untouched): 1.0.0 serves again
      // while 1.2.0 is still the newest that passed; taking the annotations away moves it forward.
      const releaseOf = async (version: string) =>
        (
          await client.list('v1', 'ConfigMap', {
            namespace,
            labelSelector: 'aurora.health/release-of=er-roll',
          })
        ).items.find((cm) => cm.metadata.annotations?.['aurora.health/model-version'] === version)?.metadata
          .name;
      const poolRef = {
        apiVersion: 'aurora.health/v1alpha1',
        kind: 'InferencePool',
        metadata: { name: 'er-roll', namespace },
      };
      await client.patch(
        poolRef,
        {
          metadata: {
            annotations: {
              'aurora.health/rolled-back-to': await releaseOf('1.0.0'),
              'aurora.health/rolled-back-from': await releaseOf('1.2.0'),
            },
          },
        },
        { type: 'merge' },
      );
      await waitPool(
        'er-roll',
        'rolled back to 1.0.0',
        (p) => p.status?.servedModel?.version === '1.0.0',
        90_000,
      );
      await client.patch(
        poolRef,
        {
          metadata: {
            annotations: { 'aurora.health/rolled-back-to': null, 'aurora.health/rolled-back-from': null },
          },
        },
        { type: 'merge' },
      );
      await waitPool(
        'er-roll',
        'forward to 1.2.0 again',
        (p) => p.status?.servedModel?.version === '1.2.0',
        90_000,
      );
    } finally {
      stopWatch.abort();
      await watching;
    }
    // The Deployment never named the version that failed (and went back and forth by the rollback).
    expect(templates).toEqual(['1.0.0', '1.2.0', '1.0.0', '1.2.0']);
    await removePools('er-roll');
  }, 240_000);
});

describe('a rollout on Macs with no room for one more pod', () => {
  it('replaces one pod at a time instead of waiting for room that never comes', async () => {
    await client.create(triageModel('er-full', '1.0.0', 'er-model-v1'));
    // 18 GiB per pod on each M4 (20,480 MiB): no M4 has room for a fourth, surge, pod.
    await client.create(
      pool('er-full', {
        modelRef: { name: 'er-full' },
        minReplicas: 3,
        placement: { chips: ['m4'] },
        resources: { memory: '18Gi' },
      }),
    );
    await waitPool('er-full', 'Ready', (p) => condition(p, 'Ready')?.status === 'True');
    await patchModel('1.2.0', 'er-model-v1-2', 'er-full');
    const moved = await waitPool(
      'er-full',
      'serving 1.2.0',
      (p) =>
        condition(p, 'ModelCurrent')?.status === 'True' &&
        p.status?.servedModel?.version === '1.2.0' &&
        p.status?.readyReplicas === 3,
      90_000,
    );
    expect(moved.status?.readyReplicas).toBe(3);
    const d = await client.get<Deployment & { spec: { strategy: { rollingUpdate: unknown } } }>(
      ref('Deployment', 'er-full', 'apps/v1'),
    );
    expect(d?.spec.strategy.rollingUpdate).toEqual({ maxSurge: 0, maxUnavailable: 1 });
    await removePools('er-full');
  }, 180_000);
});

describe('releases kept for a rollback', () => {
  it('keeps the release served and the two served before it, and deletes older ones', async () => {
    // The same network under another doc_string per version: each passes acceptance with a digest of its own.
    const variant = (version: string) => {
      const doc = Buffer.from(`re-exported for the ${version} release`);
      return Buffer.concat([goodModel, Buffer.from([0x32, doc.length]), doc]);
    };
    await client.create(triageModel('er-prune', '1.0.0', 'er-model-v1'));
    await client.create(pool('er-prune', { modelRef: { name: 'er-prune' }, minReplicas: 1 }));
    await waitPool('er-prune', 'serving 1.0.0', (p) => p.status?.servedModel?.version === '1.0.0');
    for (const version of ['1.1.0', '1.2.0', '1.3.0']) {
      const configMap = `er-prune-${version.replaceAll('.', '-')}`;
      await client.create(modelConfigMap(configMap, variant(version)));
      await patchModel(version, configMap, 'er-prune');
      await waitPool(
        'er-prune',
        `serving ${version}`,
        (p) =>
          condition(p, 'Progressing')?.reason === 'Complete' && p.status?.servedModel?.version === version,
        90_000,
      );
    }
    const releases = async () =>
      (
        await client.list('v1', 'ConfigMap', {
          namespace,
          labelSelector: 'aurora.health/release-of=er-prune',
        })
      ).items
        .map((cm) => cm.metadata.annotations?.['aurora.health/model-version'])
        .sort();
    await waitFor('1.0.0 pruned', async () => ((await releases()).includes('1.0.0') ? undefined : true));
    expect(await releases()).toEqual(['1.1.0', '1.2.0', '1.3.0']);
    await removePools('er-prune');
  }, 240_000);
});

async function patchModel(version: string, configMap: string, model = 'er-news2-risk') {
  await client.patch(
    ref('TriageModel', model),
    {
      spec: {
        version,
        source: { configMap: { name: configMap, key: 'model.onnx' } },
        acceptance: { goldenVectors: { configMap: { name: configMap, key: 'golden-vectors.jsonl' } } },
      },
    },
    { type: 'merge' },
  );
}

describe('packing 20 pools onto the four Macs', () => {
  it('places every pool first-fit-decreasing places, and overcommits no node', async () => {
    const sizesMiB = [
      61_440, 30_720, 16_384, 12_288, 10_240, 8_192, 6_144, 5_120, 4_096, 3_584, 3_072, 2_560, 2_048, 1_536,
      1_024, 1_024, 768, 512, 512, 256,
    ];
    const pools = sizesMiB.map((mib, i) => ({ name: `pack-${String(i).padStart(2, '0')}`, mib }));
    const nodes = await unifiedMemoryByNode();
    const reference = firstFitDecreasing(
      pools,
      nodes.map((n) => ({ name: n.node, mib: n.allocatableMiB - n.requestedMiB })),
    );
    expect(reference.unplaced).toEqual(['pack-00']);
    // Largest first, each bound (or refused) before the next, as first-fit-decreasing orders them.
    for (const p of [...pools].sort((a, b) => b.mib - a.mib)) {
      await client.create(
        pool(p.name, {
          minReplicas: 1,
          placement: { appleSilicon: 'Required' },
          resources: { memory: `${p.mib}Mi` },
        }),
      );
      await waitFor(`pool ${p.name}'s pod to be bound or refused`, async () => {
        const [pod] = await podsOf(p.name);
        const refused = pod?.status?.conditions?.some(
          (c) => c.type === 'PodScheduled' && c.reason === 'Unschedulable',
        );
        return pod && (pod.spec.nodeName || refused) ? true : undefined;
      });
      process.stdout.write(`  packed ${p.name} (${p.mib} MiB)\n`);
    }
    const placed = new Set<string>();
    for (const p of pools) if ((await podsOf(p.name))[0]?.spec.nodeName) placed.add(p.name);
    for (const { item } of reference.placed) expect(placed, `${item} is placed`).toContain(item);
    const usage = await unifiedMemoryByNode();
    for (const n of usage)
      expect(n.requestedMiB, `${n.node} not overcommitted`).toBeLessThanOrEqual(n.allocatableMiB);
    process.stdout.write(
      `  placed ${placed.size}/20 (first-fit-decreasing: ${reference.placed.length}); ${usage
        .map((n) => `${n.node} ${n.requestedMiB}/${n.allocatableMiB} MiB`)
        .join(', ')}\n`,
    );
    const refused = await waitPool(
      'pack-00',
      'ModelTooLarge',
      (p) => condition(p, 'Placed')?.reason === 'ModelTooLarge',
    );
    expect(condition(refused, 'Ready')?.status).toBe('False');
    await removePools(...pools.map((p) => p.name));
  }, 300_000);
});
