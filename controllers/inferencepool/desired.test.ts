import { describe, expect, it } from 'vitest';
import { careQueueSpec } from '../../crds/carequeue.ts';
import { inferencePoolSpec } from '../../crds/inferencepool.ts';
import type { CareQueue, InferencePool } from '../../crds/kinds.ts';
import { unifiedMemoryResource } from '../../crds/labels.ts';
import { maxConfigMapModelBytes } from '../../crds/triagemodel.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import {
  consumedQueue,
  desiredDeployment,
  desiredNetworkPolicy,
  desiredRelease,
  desiredReplicas,
  poolPodMemoryMiB,
  rolloutStrategy,
} from './desired.ts';
import { type ModelRelease, parseRelease, releaseName } from './release.ts';

const digest = 'ab'.repeat(32);
const pool = (spec: Record<string, unknown> = {}) =>
  ({
    apiVersion: 'aurora.health/v1alpha1',
    kind: 'InferencePool',
    metadata: { name: 'er-triage', namespace: 'emergency', uid: 'u1', generation: 1 },
    spec: inferencePoolSpec.parse({ modelRef: { name: 'er' }, ...spec }),
  }) as InferencePool & { spec: ReturnType<typeof inferencePoolSpec.parse> };
const release: ModelRelease = {
  model: 'er',
  version: '1.0.0',
  digest,
  measuredMemoryMiB: 1000,
  contract: {
    version: '1.0.0',
    inputs: { tensorName: 'vitals', elementType: 'float32', features: [{ name: 'pulse' }] },
    outputs: { tensorName: 'probabilities', labels: ['high', 'low'] },
    executionProviders: ['coreml', 'cpu'],
  },
};
describe('desiredReplicas', () => {
  it.each([
    [{}, 1],
    [{ minReplicas: 2, maxReplicas: 6 }, 2],
    [{ minReplicas: 2, maxReplicas: 6, replicas: 4 }, 4],
    [{ minReplicas: 0, maxReplicas: 6, replicas: 0 }, 0],
  ])('%j → %i', (spec, expected) => {
    expect(desiredReplicas(pool(spec).spec)).toBe(expected);
  });
});

describe('pod memory', () => {
  it('sizes pods from the measured memory plus headroom unless resources.memory is set', () => {
    expect(poolPodMemoryMiB(pool().spec, release)).toBe(192 + 1500);
    expect(poolPodMemoryMiB(pool({ resources: { memoryHeadroomPercent: 20 } }).spec, release)).toBe(
      192 + 1200,
    );
    expect(poolPodMemoryMiB(pool({ resources: { memory: '12Gi' } }).spec, release)).toBe(12_288);
  });
});

describe('releases', () => {
  it('names a release by file and contract, so a changed contract is a new release', () => {
    const changed = { ...release, contract: { ...release.contract, executionProviders: ['cpu' as const] } };
    expect(releaseName('er-triage', release)).toMatch(/^er-triage-model-[0-9a-f]{10}$/);
    expect(releaseName('er-triage', changed)).not.toBe(releaseName('er-triage', release));
    expect(releaseName('er-triage', { ...release, measuredMemoryMiB: 5 })).toBe(
      releaseName('er-triage', release),
    );
  });

  it('writes an immutable ConfigMap owned by the pool that reads back as the same release', () => {
    const cm = desiredRelease(pool(), release, new Uint8Array([1, 2, 3]));
    expect(cm).toMatchObject({
      immutable: true,
      binaryData: { 'model.onnx': 'AQID' },
      metadata: { ownerReferences: [{ kind: 'InferencePool', name: 'er-triage', controller: true }] },
    });
    expect(parseRelease(cm)).toEqual(release);
    expect(parseRelease({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } })).toBeUndefined();
  });
});

describe('desiredDeployment', () => {
  // biome-ignore lint/suspicious/noExplicitAny: the test walks the manifest as the API server would
  const podSpec = (d: any) => d.spec.template.spec;

  it('asks for unified memory and Apple nodes of the allowed chips and size, spread by host', () => {
    const d = desiredDeployment(
      pool({
        minReplicas: 2,
        maxReplicas: 4,
        placement: { chips: ['m4', 'm4-pro'], minUnifiedMemoryGiB: 16 },
      }),
      release,
      'aurora:test',
    );
    const spec = podSpec(d);
    expect((d as unknown as { spec: { replicas: number } }).spec.replicas).toBe(2);
    expect(spec.containers[0].resources).toEqual({
      requests: { cpu: '500m', memory: '1692Mi', [unifiedMemoryResource]: '1692' },
      limits: { memory: '1692Mi', [unifiedMemoryResource]: '1692' },
    });
    expect(
      spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms,
    ).toEqual([
      {
        matchExpressions: [
          { key: 'aurora.health/apple-silicon', operator: 'In', values: ['true'] },
          { key: 'aurora.health/chip', operator: 'In', values: ['m4', 'm4-pro'] },
          { key: 'aurora.health/unified-memory-gib', operator: 'Gt', values: ['15'] },
        ],
      },
    ]);
    expect(spec.topologySpreadConstraints[0]).toMatchObject({
      topologyKey: 'kubernetes.io/hostname',
      maxSkew: 1,
      labelSelector: { matchLabels: { 'aurora.health/pool': 'er-triage' } },
    });
  });

  it('mounts the release ConfigMap and pins the digest and contract in the environment', () => {
    const spec = podSpec(desiredDeployment(pool(), release, 'aurora:test'));
    const env = Object.fromEntries(
      spec.containers[0].env.map((e: { name: string; value: string }) => [e.name, e.value]),
    );
    expect(env.AURORA_MODEL_FILE).toBe('/var/run/aurora/model/model.onnx');
    expect(env.AURORA_MODEL_SHA256).toBe(digest);
    expect(JSON.parse(env.AURORA_MODEL_SPEC)).toEqual(release.contract);
    expect(spec.volumes[0].configMap.name).toBe(releaseName('er-triage', release));
  });

  it('has a file served over HTTP downloaded by the server, with time to start', () => {
    const http = {
      url: 'https://models.example/er.onnx',
      sha256: digest,
      timeoutSeconds: 60,
      maxSizeMiB: 100,
    };
    const spec = podSpec(desiredDeployment(pool(), { ...release, http }, 'aurora:test'));
    const env = Object.fromEntries(
      spec.containers[0].env.map((e: { name: string; value: string }) => [e.name, e.value]),
    );
    expect(env.AURORA_MODEL_URL).toBe(http.url);
    expect(env.AURORA_MODEL_FILE).toBeUndefined();
    expect(spec.volumes.map((v: { name: string }) => v.name)).toEqual(['tmp']);
    // Three download time limits plus two minutes before the kubelet gives up on the pod.
    expect(spec.containers[0].startupProbe).toMatchObject({ periodSeconds: 2, failureThreshold: 150 });
  });

  it('makes the pods consumers of the CareQueue that targets the pool, the URL read from its Secret', () => {
    const queue = {
      namespace: 'emergency',
      name: 'er-queue',
      spec: careQueueSpec.parse({
        redis: {
          urlSecretRef: { name: 'er-redis', key: 'url' },
          tls: { enabled: true, caSecretRef: { name: 'er-redis-ca', key: 'ca.pem' } },
        },
        categories: [
          { name: 'immediate', maxWaitSeconds: 0 },
          { name: 'standard', maxWaitSeconds: 7200, streamKey: 'ed:green' },
        ],
        scaleTargetRef: { kind: 'InferencePool', name: 'er-triage' },
      }),
    };
    const spec = podSpec(desiredDeployment(pool(), release, 'aurora:test', undefined, queue));
    const env = Object.fromEntries(
      spec.containers[0].env.map((e: { name: string; value?: string; valueFrom?: unknown }) => [
        e.name,
        e.value ?? e.valueFrom,
      ]),
    );
    expect(env.AURORA_QUEUE_REDIS_URL).toEqual({ secretKeyRef: { name: 'er-redis', key: 'url' } });
    expect(JSON.parse(env.AURORA_QUEUE_STREAMS)).toEqual([
      { category: 'immediate', streamKey: 'aurora:emergency:er-queue:immediate' },
      { category: 'standard', streamKey: 'ed:green' },
    ]);
    expect(env.AURORA_QUEUE_RESULT_STREAM).toBe('aurora:emergency:er-queue:results');
    expect(env.AURORA_QUEUE_CONSUMER).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
    expect(env.AURORA_QUEUE_REDIS_CA_FILE).toBe('/etc/aurora/redis-ca/ca.crt');
    expect(spec.volumes.find((v: { name: string }) => v.name === 'redis-ca').secret).toEqual({
      secretName: 'er-redis-ca',
      items: [{ key: 'ca.pem', path: 'ca.crt' }],
    });
    // No queue, no consumer.
    const plain = podSpec(desiredDeployment(pool(), release, 'aurora:test'));
    expect(plain.containers[0].env.some((e: { name: string }) => e.name.startsWith('AURORA_QUEUE_'))).toBe(
      false,
    );
  });

  it('takes the oldest valid CareQueue that targets the pool', () => {
    // As the informer holds them: whatever the API server took, parsed only here.
    const cq = (name: string, created: string, spec: Record<string, unknown>) =>
      ({
        apiVersion: 'aurora.health/v1alpha1',
        kind: 'CareQueue',
        metadata: { name, namespace: 'emergency', creationTimestamp: created },
        spec,
      }) as unknown as CareQueue;
    const good = {
      redis: { urlSecretRef: { name: 'r', key: 'url' } },
      scaleTargetRef: { kind: 'InferencePool', name: 'er-triage' },
    };
    expect(
      consumedQueue([
        cq('newer', '2026-11-02T00:00:00Z', good),
        cq('broken', '2026-10-01T00:00:00Z', { scaleTargetRef: good.scaleTargetRef }),
        cq('older', '2026-11-01T00:00:00Z', good),
      ])?.name,
    ).toBe('older');
    expect(consumedQueue([])).toBeUndefined();
  });

  it('with Preferred placement, prefers Apple nodes and does not ask for a resource only they offer', () => {
    const spec = podSpec(
      desiredDeployment(
        pool({ placement: { appleSilicon: 'Preferred', nodeSelector: { zone: 'er' } } }),
        release,
        'i',
      ),
    );
    expect(spec.containers[0].resources.requests[unifiedMemoryResource]).toBeUndefined();
    expect(spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight).toBe(100);
    expect(
      spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms,
    ).toEqual([{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['er'] }] }]);
  });

  it('changes the pod template only when the release changes', () => {
    const a = desiredDeployment(pool(), release, 'i');
    const b = desiredDeployment(pool(), { ...release }, 'i');
    const c = desiredDeployment(pool(), { ...release, version: '1.1.0', digest: 'cd'.repeat(32) }, 'i');
    // biome-ignore lint/suspicious/noExplicitAny: reading the manifest
    const template = (d: any) => JSON.stringify(d.spec.template);
    expect(template(a)).toBe(template(b));
    expect(template(a)).not.toBe(template(c));
  });
});

describe('rolloutStrategy', () => {
  const surge = { maxSurge: 1, maxUnavailable: 0 };
  const oneAtATime = { maxSurge: 0, maxUnavailable: 1 };
  const base = {
    replicas: 3,
    roomForOneMore: true,
    live: surge,
    templateChanged: false,
    surgeBlocked: false,
  };
  it.each([
    ['a new template with room for a surge pod', { templateChanged: true }, surge],
    [
      'a new template on full Macs: one pod at a time',
      { templateChanged: true, roomForOneMore: false },
      oneAtATime,
    ],
    [
      'one pod is never taken away first, even on full Macs',
      { replicas: 1, templateChanged: true, roomForOneMore: false },
      surge,
    ],
    ['between rollouts a change in room changes nothing', { roomForOneMore: false }, surge],
    ['a surge pod that found no room after all: one at a time', { surgeBlocked: true }, oneAtATime],
    ['a rollout under way keeps its strategy', { live: oneAtATime, roomForOneMore: true }, oneAtATime],
    ['no Deployment yet', { live: undefined }, surge],
  ])('%s', (_name, change, expected) => {
    expect(rolloutStrategy({ ...base, ...change })).toEqual(expected);
  });
});

describe('template hash', () => {
  it('changes with the pod template, not with replicas or strategy', () => {
    const hash = (d: { metadata: { annotations?: Record<string, string> } }) =>
      d.metadata.annotations?.['aurora.health/template-hash'];
    const a = desiredDeployment(pool(), release, 'i');
    expect(hash(a)).toMatch(/^[0-9a-f]{16}$/);
    expect(
      hash(
        desiredDeployment(pool({ minReplicas: 3, maxReplicas: 5 }), release, 'i', {
          maxSurge: 0,
          maxUnavailable: 1,
        }),
      ),
    ).toBe(hash(a));
    expect(hash(desiredDeployment(pool(), release, 'other-image'))).not.toBe(hash(a));
  });
});

describe('a release fits its ConfigMap', () => {
  it('holds the largest file a ConfigMap source may have beside the largest contract the CRD admits', () => {
    // Every bound of the contract at its most (crds/triagemodel.ts).
    const longest = (n: number, c = 'a') => c.repeat(n);
    const contract: ModelRelease['contract'] = {
      version: longest(64, '9'),
      inputs: {
        tensorName: longest(128),
        elementType: 'float32',
        features: Array.from({ length: 128 }, (_, i) => ({
          name: `f${String(i).padStart(3, '0')}${longest(59)}`,
          unit: longest(16, 'u'),
          min: -1.2345678901234567e308,
          max: 1.2345678901234567e308,
          description: longest(128, 'd'),
        })),
        shape: [-1, 128],
      },
      outputs: {
        tensorName: longest(128),
        labels: Array.from({ length: 16 }, (_, i) => `l${String(i).padStart(2, '0')}${longest(60)}`),
      },
      executionProviders: ['coreml', 'cpu'],
    };
    const release: ModelRelease = {
      model: longest(253),
      version: contract.version,
      digest,
      measuredMemoryMiB: 123_456.7,
      contract,
    };
    const cm = desiredRelease(pool(), release, new Uint8Array(maxConfigMapModelBytes)) as KubeObject & {
      data: Record<string, string>;
      binaryData: Record<string, string>;
    };
    // The API server's limit is on the data held: text values plus decoded binary values.
    const held =
      Object.values(cm.data).reduce((n, v) => n + Buffer.byteLength(v), 0) +
      Object.values(cm.binaryData).reduce((n, v) => n + Buffer.from(v, 'base64').length, 0);
    expect(held).toBeLessThanOrEqual(1024 * 1024);
  });
});

describe('desiredNetworkPolicy', () => {
  it('admits the pool namespace and the namespaces it names, on the server port only', () => {
    const policy = desiredNetworkPolicy(
      pool({ server: { port: 9000, allowedNamespaces: ['ward-7', 'monitoring'] } }),
    );
    expect(policy.spec).toEqual({
      podSelector: { matchLabels: { 'aurora.health/pool': 'er-triage' } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            { podSelector: {} },
            {
              namespaceSelector: {
                matchExpressions: [
                  { key: 'kubernetes.io/metadata.name', operator: 'In', values: ['ward-7', 'monitoring'] },
                ],
              },
            },
          ],
          ports: [{ protocol: 'TCP', port: 9000 }],
        },
      ],
    });
  });

  it('admits only the pool namespace by default', () => {
    const policy = desiredNetworkPolicy(pool()) as KubeObject & {
      spec: { ingress: Array<{ from: unknown[] }> };
    };
    expect(policy.spec.ingress[0]?.from).toEqual([{ podSelector: {} }]);
  });
});
