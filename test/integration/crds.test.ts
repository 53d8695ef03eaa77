// The Aurora API on the real API server: examples apply and read back with the schema's defaults, bad
// manifests are refused with the field and the reason, kubectl explain and kubectl get aurora work.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openApiSchema } from '../../crds/generate.ts';
import { kinds } from '../../crds/kinds.ts';
import { defaultToolsDir, parseYamlObjects, repoRoot } from '../../hack/local-cluster/control-plane.ts';
import { ApiError, createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import { createTestNamespace, testAccess } from '../harness/cluster.ts';

const run = promisify(execFile);
const client = createKubeClient(testAccess());
const kubectl = (...args: string[]) =>
  run(join(defaultToolsDir, 'bin', 'kubectl'), ['--kubeconfig', inject('kubeconfigPath'), ...args]);

type Manifest = KubeObject & { spec: Record<string, unknown> };
const examples = new Map<string, Manifest>(
  readdirSync(join(repoRoot, 'examples'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseYamlObjects(readFileSync(join(repoRoot, 'examples', f), 'utf8')))
    .filter((o) => o.apiVersion === 'aurora.health/v1alpha1')
    .map((o) => [o.kind, o as Manifest]),
);

let namespace: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ name: namespace, cleanup } = await createTestNamespace('api')));
afterAll(async () => cleanup());

/** The example of a kind, in the test namespace under a new name, for a test to change. */
function example(kind: string, name: string): Manifest {
  const base = examples.get(kind);
  if (!base) throw new Error(`no example of ${kind}`);
  return { ...structuredClone(base), metadata: { name, namespace } };
}

describe('the examples', () => {
  it('cover all four kinds', () => {
    expect([...examples.keys()].sort()).toEqual(kinds.map((k) => k.kind).sort());
  });

  it.each(kinds.map((k) => k.kind))(
    '%s applies and reads back as written, plus the schema defaults',
    async (kind) => {
      const manifest = example(kind, `example-${kind.toLowerCase()}`);
      await client.create(manifest);
      const back = (await client.get<Manifest>(manifest)) as Manifest;
      const def = kinds.find((k) => k.kind === kind);
      // The API server's defaulting and the operator's zod parse must agree, and nothing may be pruned.
      expect(back.spec).toEqual(def?.spec.parse(manifest.spec));
      expect(back.spec).toMatchObject(manifest.spec);
    },
  );
});

interface InvalidCase {
  name: string;
  kind: string;
  // biome-ignore lint/suspicious/noExplicitAny: each change builds a deliberately malformed manifest
  change: (spec: Record<string, any>) => void;
  /** The API server's message must name the field and the reason. */
  message: RegExp;
}

const invalid: InvalidCase[] = [
  // TriageModel
  {
    name: 'no source',
    kind: 'TriageModel',
    change: (s) => {
      s.source = {};
    },
    message:
      /spec\.source: Invalid value: .*exactly one of configMap, http and persistentVolumeClaim must be set/,
  },
  {
    name: 'two sources',
    kind: 'TriageModel',
    change: (s) => {
      s.source.http = { url: 'https://models.example/er.onnx', sha256: 'a'.repeat(64) };
    },
    message: /spec\.source: .*exactly one of configMap, http and persistentVolumeClaim/,
  },
  {
    name: 'http source without digest',
    kind: 'TriageModel',
    change: (s) => {
      s.source = { http: { url: 'https://models.example/er.onnx' } };
    },
    message: /spec\.source\.http\.sha256: Required value/,
  },
  {
    name: 'digest not hex',
    kind: 'TriageModel',
    change: (s) => {
      s.source = { http: { url: 'https://models.example/er.onnx', sha256: 'xyz' } };
    },
    message: /spec\.source\.http\.sha256: Invalid value: "xyz"/,
  },
  {
    name: 'ftp URL',
    kind: 'TriageModel',
    change: (s) => {
      s.source = { http: { url: 'ftp://models.example/er.onnx', sha256: 'a'.repeat(64) } };
    },
    message: /spec\.source\.http\.url: Invalid value: "ftp:/,
  },
  {
    name: 'download timeout 0',
    kind: 'TriageModel',
    change: (s) => {
      s.source = { http: { url: 'https://m.example/a.onnx', sha256: 'a'.repeat(64), timeoutSeconds: 0 } };
    },
    message: /spec\.source\.http\.timeoutSeconds: Invalid value: 0: .*greater than or equal to 1/,
  },
  {
    name: 'PVC path not .onnx',
    kind: 'TriageModel',
    change: (s) => {
      s.source = { persistentVolumeClaim: { claimName: 'models', path: 'er.bin', sha256: 'a'.repeat(64) } };
    },
    message: /spec\.source\.persistentVolumeClaim\.path: Invalid value: "er\.bin"/,
  },
  {
    name: 'unknown format',
    kind: 'TriageModel',
    change: (s) => {
      s.format = 'tflite';
    },
    message: /spec\.format: Unsupported value: "tflite": supported values: "onnx"/,
  },
  {
    name: 'version missing',
    kind: 'TriageModel',
    change: (s) => {
      delete s.version;
    },
    message: /spec\.version: Required value/,
  },
  {
    name: 'version with spaces',
    kind: 'TriageModel',
    change: (s) => {
      s.version = 'one two';
    },
    message: /spec\.version: Invalid value: "one two"/,
  },
  {
    name: 'no features',
    kind: 'TriageModel',
    change: (s) => {
      s.inputs.features = [];
    },
    message: /spec\.inputs\.features: Invalid value: .*should have at least 1 items/,
  },
  {
    name: 'duplicate feature',
    kind: 'TriageModel',
    change: (s) => {
      s.inputs.features.push({ name: 'pulse' });
      s.inputs.shape = [-1, 8];
    },
    message: /spec\.inputs\.features: Invalid value: .*feature names must be unique/,
  },
  {
    name: 'feature name not snake_case',
    kind: 'TriageModel',
    change: (s) => {
      s.inputs.features[0].name = 'RespRate';
    },
    message: /spec\.inputs\.features\[0\]\.name: Invalid value: "RespRate"/,
  },
  {
    name: 'feature min above max',
    kind: 'TriageModel',
    change: (s) => {
      s.inputs.features[0].min = 90;
    },
    message: /spec\.inputs\.features\[0\]\.min: Invalid value: .*min must not be greater than max/,
  },
  {
    name: 'shape disagrees with features',
    kind: 'TriageModel',
    change: (s) => {
      s.inputs.shape = [-1, 5];
    },
    message:
      /spec\.inputs\.shape: Invalid value: .*last dimension of shape must equal the number of features/,
  },
  {
    name: 'unknown element type',
    kind: 'TriageModel',
    change: (s) => {
      s.inputs.elementType = 'float16';
    },
    message: /spec\.inputs\.elementType: Unsupported value: "float16"/,
  },
  {
    name: 'one label only',
    kind: 'TriageModel',
    change: (s) => {
      s.outputs.labels = ['high'];
    },
    message: /spec\.outputs\.labels: Invalid value: .*should have at least 2 items/,
  },
  {
    name: 'duplicate label',
    kind: 'TriageModel',
    change: (s) => {
      s.outputs.labels = ['high', 'low', 'high'];
    },
    message: /spec\.outputs\.labels: Invalid value: .*label names must be unique/,
  },
  {
    name: 'recall floor above 1',
    kind: 'TriageModel',
    change: (s) => {
      s.acceptance.minRecall[0].min = 1.5;
    },
    message: /spec\.acceptance\.minRecall\[0\]\.min: Invalid value: 1\.5: .*less than or equal to 1/,
  },
  {
    name: 'recall for an unknown label',
    kind: 'TriageModel',
    change: (s) => {
      s.acceptance.minRecall.push({ label: 'critical', min: 0.9 });
    },
    message:
      /spec\.acceptance\.minRecall: Invalid value: .*every minRecall label must be one of outputs\.labels/,
  },
  {
    name: 'golden vectors inline and from a ConfigMap',
    kind: 'TriageModel',
    change: (s) => {
      s.acceptance.goldenVectors.inline = [{ features: [16, 97, 0, 125, 72, 0, 37], expectedLabel: 'low' }];
    },
    message: /spec\.acceptance\.goldenVectors: Invalid value: .*exactly one of inline and configMap/,
  },
  {
    name: 'golden vector of the wrong length',
    kind: 'TriageModel',
    change: (s) => {
      s.acceptance.goldenVectors = { inline: [{ features: [1, 2], expectedLabel: 'high' }] };
    },
    message: /spec\.acceptance\.goldenVectors\.inline: Invalid value: .*one value per input feature/,
  },
  {
    name: 'unknown execution provider',
    kind: 'TriageModel',
    change: (s) => {
      s.executionProviders = ['cuda'];
    },
    message: /spec\.executionProviders\[0\]: Unsupported value: "cuda"/,
  },
  // InferencePool: specs whose children the API server would refuse, refused at the pool itself
  {
    name: 'empty server image',
    kind: 'InferencePool',
    change: (s) => {
      s.server = { image: '' };
    },
    message: /spec\.server\.image: Invalid value: "": .*at least 1 chars/,
  },
  {
    name: 'server image with a space',
    kind: 'InferencePool',
    change: (s) => {
      s.server = { image: 'ghcr.io/x/y :1' };
    },
    message: /spec\.server\.image: Invalid value: "ghcr\.io\/x\/y :1"/,
  },
  {
    name: 'toleration Exists with a value',
    kind: 'InferencePool',
    change: (s) => {
      s.placement.tolerations = [{ key: 'dedicated', operator: 'Exists', value: 'triage' }];
    },
    message:
      /spec\.placement\.tolerations\[0\]\.value: Invalid value: .*value must be empty when operator is Exists/,
  },
  {
    name: 'toleration with no key and no Exists',
    kind: 'InferencePool',
    change: (s) => {
      s.placement.tolerations = [{ value: 'triage', effect: 'NoSchedule' }];
    },
    message:
      /spec\.placement\.tolerations\[0\]\.operator: Invalid value: .*an empty key matches every taint only with operator Exists/,
  },
  {
    name: 'tolerationSeconds without NoExecute',
    kind: 'InferencePool',
    change: (s) => {
      s.placement.tolerations = [
        { key: 'dedicated', operator: 'Exists', effect: 'NoSchedule', tolerationSeconds: 30 },
      ];
    },
    message:
      /spec\.placement\.tolerations\[0\]\.tolerationSeconds: Invalid value: .*goes only with effect NoExecute/,
  },
  {
    name: 'toleration key that is no label key',
    kind: 'InferencePool',
    change: (s) => {
      s.placement.tolerations = [{ key: 'bad key!', operator: 'Exists' }];
    },
    message: /spec\.placement\.tolerations\[0\]\.key: Invalid value: "bad key!"/,
  },
  {
    name: 'node selector key that is no label key',
    kind: 'InferencePool',
    change: (s) => {
      s.placement.nodeSelector = { 'rack/row/7': 'a' };
    },
    message: /spec\.placement\.nodeSelector: Invalid value: .*every key must be a label key/,
  },
  {
    name: 'node selector value that is no label value',
    kind: 'InferencePool',
    change: (s) => {
      s.placement.nodeSelector = { 'topology.kubernetes.io/zone': 'ward 7' };
    },
    message: /spec\.placement\.nodeSelector: Invalid value: .*every value must be a label value/,
  },
  {
    name: 'cpu past its bound',
    kind: 'InferencePool',
    change: (s) => {
      s.resources = { cpu: '1000' };
    },
    message: /spec\.resources\.cpu: Invalid value: .*cpu must be between 10m and 64/,
  },
  {
    name: 'memory past its bound',
    kind: 'InferencePool',
    change: (s) => {
      s.resources = { memory: '2Ti' };
    },
    message: /spec\.resources\.memory: Invalid value: .*memory must be between 64Mi and 1Ti/,
  },
  {
    name: 'memory too small for a triage server',
    kind: 'InferencePool',
    change: (s) => {
      s.resources = { memory: '1Mi' };
    },
    message: /spec\.resources\.memory: Invalid value: .*memory must be between 64Mi and 1Ti/,
  },
  {
    name: 'a model URL with a presigned query',
    kind: 'TriageModel',
    change: (s) => {
      s.source = {
        http: { url: 'https://models.example/er.onnx?X-Amz-Signature=abc', sha256: 'a'.repeat(64) },
      };
    },
    message:
      /spec\.source\.http\.url: Invalid value: .*a URL that carries a token goes in a Secret \(urlSecretRef\)/,
  },
  {
    name: 'a model URL with credentials',
    kind: 'TriageModel',
    change: (s) => {
      s.source = { http: { url: 'https://user:pass@models.example/er.onnx', sha256: 'a'.repeat(64) } };
    },
    message: /spec\.source\.http\.url: Invalid value: .*without credentials/,
  },
  {
    name: 'both a URL and a URL Secret',
    kind: 'TriageModel',
    change: (s) => {
      s.source = {
        http: {
          url: 'https://models.example/er.onnx',
          urlSecretRef: { name: 'u', key: 'url' },
          sha256: 'a'.repeat(64),
        },
      };
    },
    message: /spec\.source\.http: Invalid value: .*exactly one of url and urlSecretRef must be set/,
  },
  {
    name: 'a contract too large for a release ConfigMap',
    kind: 'TriageModel',
    change: (s) => {
      s.inputs.features = Array.from({ length: 129 }, (_, i) => ({ name: `f${i}` }));
    },
    message: /spec\.inputs\.features: Too many: 129: must have at most 128 items/,
  },
  // InferencePool
  {
    name: 'min above max replicas',
    kind: 'InferencePool',
    change: (s) => {
      s.minReplicas = 8;
    },
    message: /spec\.minReplicas: Invalid value: .*minReplicas must not be greater than maxReplicas/,
  },
  {
    name: 'replicas above max',
    kind: 'InferencePool',
    change: (s) => {
      s.replicas = 9;
    },
    message: /spec\.replicas: Invalid value: .*replicas must be between minReplicas and maxReplicas/,
  },
  {
    name: 'negative replicas',
    kind: 'InferencePool',
    change: (s) => {
      s.minReplicas = -1;
    },
    message: /spec\.minReplicas: Invalid value: -1: .*greater than or equal to 0/,
  },
  {
    name: 'no model',
    kind: 'InferencePool',
    change: (s) => {
      delete s.modelRef;
    },
    message: /spec\.modelRef: Required value/,
  },
  {
    name: 'unknown chip',
    kind: 'InferencePool',
    change: (s) => {
      s.placement.chips = ['a17-pro'];
    },
    message: /spec\.placement\.chips\[0\]: Unsupported value: "a17-pro"/,
  },
  {
    name: 'Apple silicon neither required nor preferred',
    kind: 'InferencePool',
    change: (s) => {
      s.placement.appleSilicon = 'Maybe';
    },
    message: /spec\.placement\.appleSilicon: Unsupported value: "Maybe"/,
  },
  {
    name: 'memory not a quantity',
    kind: 'InferencePool',
    change: (s) => {
      s.resources.memory = 'lots';
    },
    message: /spec\.resources\.memory: Invalid value: "lots"/,
  },
  {
    name: 'privileged port',
    kind: 'InferencePool',
    change: (s) => {
      s.server.port = 80;
    },
    message: /spec\.server\.port: Invalid value: 80: .*greater than or equal to 1024/,
  },
  {
    name: 'canary weight above 100',
    kind: 'InferencePool',
    change: (s) => {
      s.canary = { modelRef: { name: 'er-v2' }, steps: [{ weight: 150 }] };
    },
    message: /spec\.canary\.steps\[0\]\.weight: Invalid value: 150: .*less than or equal to 100/,
  },
  {
    name: 'canary weights decreasing',
    kind: 'InferencePool',
    change: (s) => {
      s.canary = { modelRef: { name: 'er-v2' }, steps: [{ weight: 50 }, { weight: 20 }] };
    },
    message: /spec\.canary\.steps: Invalid value: .*step weights must increase/,
  },
  {
    name: 'canary to the served model',
    kind: 'InferencePool',
    change: (s) => {
      s.canary = { modelRef: { name: 'er-news2-risk' } };
    },
    message: /spec\.canary\.modelRef\.name: Invalid value: .*must name a different TriageModel/,
  },
  {
    name: 'canary error rate above 1',
    kind: 'InferencePool',
    change: (s) => {
      s.canary = { modelRef: { name: 'er-v2' }, analysis: { maxErrorRate: 2 } };
    },
    message: /spec\.canary\.analysis\.maxErrorRate: Invalid value: 2: .*less than or equal to 1/,
  },
  // CareQueue
  {
    name: 'duplicate category',
    kind: 'CareQueue',
    change: (s) => {
      s.categories[1].name = 'immediate';
    },
    message: /spec\.categories: Invalid value: .*category names must be unique/,
  },
  {
    name: 'negative maximum wait',
    kind: 'CareQueue',
    change: (s) => {
      s.categories[2].maxWaitSeconds = -60;
    },
    message: /spec\.categories\[2\]\.maxWaitSeconds: Invalid value: -60/,
  },
  {
    name: 'zero consumers with an immediate category',
    kind: 'CareQueue',
    change: (s) => {
      s.minReplicas = 0;
    },
    message: /spec\.minReplicas: Invalid value: .*at least 1 while a category has maxWaitSeconds 0/,
  },
  {
    name: 'min above max consumers',
    kind: 'CareQueue',
    change: (s) => {
      s.minReplicas = 7;
    },
    message: /spec\.minReplicas: Invalid value: .*must not be greater than maxReplicas/,
  },
  {
    name: 'reserved capacity beyond max',
    kind: 'CareQueue',
    change: (s) => {
      s.categories[0].reservedReplicas = 7;
    },
    message:
      /spec\.categories: Invalid value: .*reservedReplicas of all categories must fit within maxReplicas/,
  },
  {
    name: 'scale target of another kind',
    kind: 'CareQueue',
    change: (s) => {
      s.scaleTargetRef.kind = 'StatefulSet';
    },
    message: /spec\.scaleTargetRef\.kind: Unsupported value: "StatefulSet"/,
  },
  {
    name: 'no Redis secret',
    kind: 'CareQueue',
    change: (s) => {
      delete s.redis.urlSecretRef;
    },
    message: /spec\.redis\.urlSecretRef: Required value/,
  },
  {
    name: 'surge above max',
    kind: 'CareQueue',
    change: (s) => {
      s.surge = { minReplicas: 20, until: '2026-12-01T00:00:00Z' };
    },
    message: /spec\.surge\.minReplicas: Invalid value: .*must not be greater than maxReplicas/,
  },
  {
    name: 'unknown colour',
    kind: 'CareQueue',
    change: (s) => {
      s.categories[0].colour = 'purple';
    },
    message: /spec\.categories\[0\]\.colour: Unsupported value: "purple"/,
  },
  {
    name: 'two categories on one stream',
    kind: 'CareQueue',
    change: (s) => {
      s.categories[0].streamKey = 'er:shared';
      s.categories[3].streamKey = 'er:shared';
    },
    message: /spec\.categories: Invalid value: .*each category needs a stream of its own/,
  },
  {
    name: 'results written into a category stream',
    kind: 'CareQueue',
    change: (s) => {
      s.categories[1].streamKey = 'er:orange';
      s.results = { streamKey: 'er:orange' };
    },
    message: /spec\.results\.streamKey: Invalid value: .*must not be a category stream/,
  },
  {
    name: 'forecast lead time under a minute',
    kind: 'CareQueue',
    change: (s) => {
      s.forecast = { leadTimeSeconds: 10 };
    },
    message: /spec\.forecast\.leadTimeSeconds: Invalid value: 10/,
  },
  {
    name: 'stabilisation window over an hour',
    kind: 'CareQueue',
    change: (s) => {
      s.behavior.scaleDown.stabilizationWindowSeconds = 7200;
    },
    message: /spec\.behavior\.scaleDown\.stabilizationWindowSeconds: Invalid value: 7200/,
  },
  // HealingPolicy
  {
    name: 'no detector',
    kind: 'HealingPolicy',
    change: (s) => {
      s.detectors = {};
    },
    message: /spec\.detectors: Invalid value: .*at least one detector must be set/,
  },
  {
    name: 'empty escalation',
    kind: 'HealingPolicy',
    change: (s) => {
      s.escalation = [];
    },
    message: /spec\.escalation: Invalid value: .*should have at least 1 items/,
  },
  {
    name: 'repeated action',
    kind: 'HealingPolicy',
    change: (s) => {
      s.escalation.push({ action: 'RestartPod' });
    },
    message: /spec\.escalation: Invalid value: .*each action may appear once/,
  },
  {
    name: 'unknown action',
    kind: 'HealingPolicy',
    change: (s) => {
      s.escalation[0].action = 'Reboot';
    },
    message: /spec\.escalation\[0\]\.action: Unsupported value: "Reboot"/,
  },
  {
    name: 'scaleOutBy on a restart',
    kind: 'HealingPolicy',
    change: (s) => {
      s.escalation[0].scaleOutBy = 2;
    },
    message:
      /spec\.escalation\[0\]\.scaleOutBy: Invalid value: .*scaleOutBy applies only to the ScaleOut action/,
  },
  {
    name: 'unhealthy share above 100',
    kind: 'HealingPolicy',
    change: (s) => {
      s.guardrails.maxUnhealthyPercent = 120;
    },
    message: /spec\.guardrails\.maxUnhealthyPercent: Invalid value: 120/,
  },
  {
    name: 'approval for an action not in the ladder',
    kind: 'HealingPolicy',
    change: (s) => {
      s.approval.requiredFor = ['CordonNode'];
    },
    message: /spec\.approval\.requiredFor: Invalid value: .*may only name actions that appear in escalation/,
  },
  {
    name: 'unknown mode',
    kind: 'HealingPolicy',
    change: (s) => {
      s.mode = 'Yolo';
    },
    message: /spec\.mode: Unsupported value: "Yolo": supported values: "Enforce", "DryRun"/,
  },
  {
    name: 'no audit database',
    kind: 'HealingPolicy',
    change: (s) => {
      delete s.audit;
    },
    message: /spec\.audit: Required value/,
  },
  {
    name: 'PromQL detector with a bad operator',
    kind: 'HealingPolicy',
    change: (s) => {
      s.detectors.prometheus = { url: 'http://prometheus:9090', query: 'up', operator: '=', threshold: 1 };
    },
    message: /spec\.detectors\.prometheus\.operator: Unsupported value: "="/,
  },
];

describe('invalid manifests', () => {
  it('number at least 40', () => {
    expect(invalid.length).toBeGreaterThanOrEqual(40);
  });

  it.each(invalid)('$kind refuses: $name', async ({ kind, change, message }) => {
    const manifest = example(kind, `bad-${kind.toLowerCase()}`);
    change(manifest.spec);
    const error = await client.create(manifest).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error, 'the API server accepted it').toBeInstanceOf(ApiError);
    expect((error as ApiError).status).toBe(422);
    expect((error as ApiError).message).toMatch(message);
    // Nothing half-applied: the object does not exist.
    expect(await client.get(manifest)).toBeUndefined();
  });
});

describe('InferencePool names', () => {
  it.each([
    ['too long for the Service and pods it names', `er-${'x'.repeat(46)}`],
    ['not a DNS-1035 label (starts with a digit)', '1st-floor-triage'],
  ])('refuses a name %s', async (_why, name) => {
    const manifest = example('InferencePool', name);
    const error = await client.create(manifest).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect((error as ApiError).status).toBe(422);
    expect((error as ApiError).message).toMatch(/is invalid: .*metadata\.name must be at most 47 characters/);
    expect(await client.get(manifest)).toBeUndefined();
  });
});

describe('kubectl', () => {
  it.each(kinds.map((k) => k.plural))('explain %s.spec describes every field', async (plural) => {
    const { stdout } = await kubectl('explain', `${plural}.spec`);
    const def = kinds.find((k) => k.plural === plural);
    if (!def) throw new Error(`no kind ${plural}`);
    const fields = openApiSchema(def.spec).properties as Record<string, { description?: string }>;
    expect(Object.keys(fields).length).toBeGreaterThan(3);
    for (const [field, schema] of Object.entries(fields)) {
      expect(schema.description, `${plural}.spec.${field} has no description`).toBeTruthy();
      expect(stdout).toContain(field);
      // kubectl wraps long descriptions; the first words stand on one line.
      expect(stdout).toContain((schema.description ?? '').split(' ').slice(0, 3).join(' '));
    }
  });

  it('get aurora lists all four kinds with their columns', async () => {
    const { stdout } = await kubectl('get', 'aurora', '-n', namespace);
    for (const def of kinds)
      expect(stdout).toContain(`${def.singular}.aurora.health/example-${def.kind.toLowerCase()}`);
    for (const column of [
      'VERSION',
      'VALIDATED',
      'MODEL',
      'SERVING',
      'TARGET',
      'WAITS-MET',
      'MODE',
      'TIER',
      'AGE',
    ]) {
      expect(stdout).toContain(column);
    }
  });
});
