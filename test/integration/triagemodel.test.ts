// The TriageModel controller on the real control plane, with a local HTTP server serving model files.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerTriageModelController } from '../../controllers/triagemodel/reconcile.ts';
import type { TriageModel } from '../../crds/kinds.ts';
import { contract, exampleModelFiles } from '../../hack/example-model/generate.ts';
import { classifierToOnnx } from '../../hack/example-model/onnx.ts';
import { parseYamlObjects, repoRoot } from '../../hack/local-cluster/control-plane.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import { createTestManager, createTestNamespace, operatorClient, testAccess } from '../harness/cluster.ts';
import { startTestValidator } from '../harness/validator.ts';

const client = createKubeClient(testAccess());
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const good = readFileSync(exampleModelFiles.model);
const files: Record<string, Uint8Array> = {
  '/good.onnx': good,
  '/truncated.onnx': good.subarray(0, 1000),
  '/under-triage.onnx': readFileSync(exampleModelFiles.underTriage),
  '/garbage.onnx': Buffer.from('\u0000\u0001garbage that declares nothing sensible\u00ff'.repeat(50)),
  '/renamed.onnx': classifierToOnnx(
    {
      mean: Array(7).fill(0),
      std: Array(7).fill(1),
      bands: { feature: [], threshold: [], sharpness: [] },
      w1: Array.from({ length: 7 }, () => [0.1]),
      b1: [0],
      w2: [[1, 0, 0, 0]],
      b2: [0, 0, 0, 0],
    },
    { ...contract, inputName: 'observations' },
  ),
};

let server: Server;
let baseUrl: string;
let namespace: string;
let cleanup: () => Promise<void>;
let manager: Manager;
let validator: Awaited<ReturnType<typeof startTestValidator>>;
const example = parseYamlObjects(
  readFileSync(join(repoRoot, 'examples/triage-model.yaml'), 'utf8'),
)[0] as TriageModel;
const exampleConfigMap = parseYamlObjects(readFileSync(exampleModelFiles.configMap, 'utf8'))[0] as KubeObject;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/huge.onnx') {
      // Declares 10 GiB; the controller must refuse before reading it.
      res.writeHead(200, { 'content-length': String(10 * 2 ** 30) });
      res.write(Buffer.alloc(1024));
      return;
    }
    if (req.url === '/to-metadata.onnx') {
      return void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
    }
    if (req.url === '/stall.onnx') {
      // Sends headers and a little, then nothing: the download's time limit must end it.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(16));
      return;
    }
    const body = files[req.url ?? ''];
    if (!body) return void res.writeHead(404).end('not found');
    res
      .writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length })
      .end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  ({ name: namespace, cleanup } = await createTestNamespace('triage'));
  await client.create({ ...exampleConfigMap, metadata: { ...exampleConfigMap.metadata, namespace } });
  manager = createTestManager(operatorClient(), namespace);
  // The test server listens on loopback, which the operator refuses unless told otherwise.
  validator = await startTestValidator();
  registerTriageModelController(manager, { validator: validator.client });
  await manager.start();
});

afterAll(async () => {
  await manager?.stop();
  await validator?.stop();
  await cleanup?.();
  server?.closeAllConnections();
  server?.close();
});

function modelFrom(name: string, change: (spec: TriageModel['spec']) => void = () => {}): TriageModel {
  const spec = structuredClone(example.spec);
  change(spec);
  return { ...example, metadata: { name, namespace }, spec };
}
const http =
  (path: string, digest = sha(files[path] as Uint8Array)) =>
  (spec: TriageModel['spec']) => {
    spec.source = { http: { url: `${baseUrl}${path}`, sha256: digest, timeoutSeconds: 10, maxSizeMiB: 16 } };
  };
const ref = (name: string) => ({
  apiVersion: 'aurora.health/v1alpha1',
  kind: 'TriageModel',
  metadata: { name, namespace },
});

async function readyCondition(name: string, reason: string) {
  return waitFor(
    `TriageModel ${name} Ready reason ${reason}`,
    async () => {
      const model = await client.get<TriageModel>(ref(name));
      const ready = model?.status?.conditions?.find((c) => c.type === 'Ready');
      return ready?.reason === reason && model?.status?.observedGeneration === model?.metadata.generation
        ? { model: model as TriageModel, ready }
        : undefined;
    },
    { timeoutMs: 60_000 },
  );
}

async function validationsRun(): Promise<number> {
  const text = await manager.metrics.registry.metrics();
  return [...text.matchAll(/aurora_triagemodel_validations_total\{outcome="[^"]+"\} (\d+)/g)].reduce(
    (a, m) => a + Number(m[1]),
    0,
  );
}

describe('the TriageModel controller', () => {
  it('validates the example model from its ConfigMap: Ready with the measured figures', async () => {
    await client.create(modelFrom('er-news2-risk'));
    const { model, ready } = await readyCondition('er-news2-risk', 'Validated');
    expect(ready.status).toBe('True');
    expect(ready.message).toMatch(
      /^version 1\.0\.0 \(sha256 [0-9a-f]{12}\) passed: 576 golden vectors, accuracy 9\d\.\d%/,
    );
    expect(model.status).toMatchObject({
      digest: `sha256:${sha(good)}`,
      sizeBytes: good.length,
      validatedVersion: '1.0.0',
      validatedDigest: `sha256:${sha(good)}`,
      acceptance: { vectors: 576 },
    });
    expect(model.status?.measuredMemoryMiB).toBeGreaterThanOrEqual(0);
    expect(model.status?.latency?.p99Ms).toBeGreaterThan(0);
    const types = Object.fromEntries((model.status?.conditions ?? []).map((c) => [c.type, c.status]));
    expect(types).toEqual({ ContractValid: 'True', AcceptancePassed: 'True', Ready: 'True' });
  });

  it('does not validate the same digest against the same spec twice', async () => {
    const before = await validationsRun();
    await client.patch(
      ref('er-news2-risk'),
      { metadata: { annotations: { touched: 'yes' } } },
      { type: 'merge' },
    );
    await client.create(modelFrom('er-news2-risk-copy'));
    await readyCondition('er-news2-risk-copy', 'Validated');
    expect(await validationsRun()).toBe(before);
  });

  it.each([
    [
      'over HTTP with the right digest',
      'http-good',
      http('/good.onnx'),
      'Validated',
      /passed: 576 golden vectors/,
    ],
    [
      'a digest mismatch',
      'http-mismatch',
      http('/good.onnx', 'f'.repeat(64)),
      'DigestMismatch',
      /has sha256 [0-9a-f]{64}; spec\.source\.http\.sha256 is f{64}: fix the digest or the file/,
    ],
    [
      'a truncated file',
      'http-truncated',
      http('/truncated.onnx'),
      'InvalidModel',
      /onnxruntime could not load the file \(sha256 [0-9a-f]{64}, 1000 bytes\)/,
    ],
    [
      'garbage bytes',
      'http-garbage',
      http('/garbage.onnx'),
      'InvalidModel',
      /onnxruntime could not load the file/,
    ],
    [
      'a contract mismatch',
      'http-renamed',
      http('/renamed.onnx'),
      'ContractMismatch',
      /the model has no input named 'vitals' \(it has 'observations'\): set spec\.inputs\.tensorName/,
    ],
    [
      'an under-triaging model',
      'http-under',
      http('/under-triage.onnx'),
      'AcceptanceFailed',
      /failed acceptance: recall of 'high' is \d+\.\d% \(\d+ of \d+\), below the floor of 95\.0%/,
    ],
    [
      'a missing file',
      'http-missing',
      http('/nowhere.onnx', 'a'.repeat(64)),
      'SourceUnavailable',
      /answered HTTP 404/,
    ],
    [
      'a file declaring 10 GiB',
      'http-huge',
      http('/huge.onnx', 'a'.repeat(64)),
      'SourceTooLarge',
      /is 10240\.0 MiB, over the limit of 16 MiB \(spec\.source\.http\.maxSizeMiB 16, operator 512\)/,
    ],
    [
      'a URL at the cloud metadata address',
      'http-metadata',
      (spec: TriageModel['spec']) => {
        spec.source = {
          http: {
            url: 'http://169.254.169.254/model.onnx',
            sha256: 'a'.repeat(64),
            timeoutSeconds: 5,
            maxSizeMiB: 16,
          },
        };
      },
      'SourceForbidden',
      /refusing http:\/\/169\.254\.169\.254\/model\.onnx: 169\.254\.169\.254 is a link-local address/,
    ],
    [
      'a redirect to the cloud metadata address',
      'http-redirect',
      http('/to-metadata.onnx', 'a'.repeat(64)),
      'SourceForbidden',
      /refusing http:\/\/169\.254\.169\.254\/latest\/meta-data\/: .*link-local/,
    ],
    [
      'a server that stalls',
      'http-stall',
      (spec: TriageModel['spec']) => {
        spec.source = {
          http: { url: `${baseUrl}/stall.onnx`, sha256: 'a'.repeat(64), timeoutSeconds: 2, maxSizeMiB: 16 },
        };
      },
      'SourceUnavailable',
      /the download took longer than 2 s/,
    ],
  ])(
    'reports %s with its own reason and a message that says what to fix',
    async (_what, name, change, reason, message) => {
      await client.create(modelFrom(name, change));
      const { ready } = await readyCondition(name, reason);
      expect(ready.message).toMatch(message);
      expect(ready.status).toBe(reason === 'Validated' ? 'True' : 'False');
    },
  );

  it('refuses a ConfigMap source too large for a pool to release with its contract', async () => {
    const big = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big-model', namespace } };
    await client.create({ ...big, binaryData: { 'model.onnx': Buffer.alloc(1_000_000).toString('base64') } });
    await client.create(
      modelFrom('too-big', (spec) => {
        spec.source = { configMap: { name: 'big-model', key: 'model.onnx' } };
      }),
    );
    const { ready } = await readyCondition('too-big', 'SourceTooLarge');
    expect(ready.message).toMatch(
      /holds 1000000 bytes; a configMap source may hold at most 983040 \(960 KiB\)/,
    );
  });

  it('recovers when the spec is fixed, without restarting the operator', async () => {
    await readyCondition('http-mismatch', 'DigestMismatch');
    await client.patch(
      ref('http-mismatch'),
      { spec: { source: { http: { sha256: sha(good) } } } },
      { type: 'merge' },
    );
    const { model } = await readyCondition('http-mismatch', 'Validated');
    expect(model.status?.validatedDigest).toBe(`sha256:${sha(good)}`);
  });

  it('validates again when the spec that judges the same file changes', async () => {
    const before = await validationsRun();
    await client.patch(
      ref('er-news2-risk-copy'),
      { spec: { acceptance: { minRecall: [{ label: 'low-medium', min: 0.99 }] } } },
      { type: 'merge' },
    );
    const { ready } = await readyCondition('er-news2-risk-copy', 'AcceptanceFailed');
    expect(ready.message).toMatch(
      /recall of 'low-medium' is \d+\.\d% \(\d+ of \d+\), below the floor of 99\.0%/,
    );
    expect(await validationsRun()).toBe(before + 1);
  });

  it('judges again when the golden vectors in a ConfigMap change, though file and spec did not', async () => {
    const all = readFileSync(exampleModelFiles.goldenVectors, 'utf8');
    const lowOnly = all
      .split('\n')
      .filter((l) => l.includes('"low"'))
      .join('\n');
    const vectorsRef = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'vectors-b', namespace } };
    await client.create({ ...vectorsRef, data: { 'v.jsonl': lowOnly } });
    await client.create(
      modelFrom('own-vectors', (spec) => {
        spec.acceptance.goldenVectors = { configMap: { name: 'vectors-b', key: 'v.jsonl' } };
      }),
    );
    const first = await readyCondition('own-vectors', 'AcceptanceFailed');
    expect(first.ready.message).toMatch(
      /no golden vector expects 'high', so its recall floor cannot be checked/,
    );
    await client.patch(vectorsRef, { data: { 'v.jsonl': all } }, { type: 'merge' });
    await readyCondition('own-vectors', 'Validated');
  });

  it('records an Event for each outcome without echoing golden vector values', async () => {
    const events = await waitFor('Events for the under-triaging model', async () => {
      const list = await client.list<
        KubeObject & { reason?: string; note?: string; regarding?: { name?: string } }
      >('events.k8s.io/v1', 'Event', { namespace });
      const mine = list.items.filter((e) => e.regarding?.name === 'http-under');
      return mine.length > 0 ? mine : undefined;
    });
    expect(events[0]?.reason).toBe('AcceptanceFailed');
    // A vector's values (e.g. a pulse of 135 next to a temperature of 39.4) must never appear.
    const vectors = readFileSync(exampleModelFiles.goldenVectors, 'utf8').trim().split('\n').slice(0, 20);
    for (const line of vectors) expect(events[0]?.note).not.toContain(JSON.parse(line).features.join(','));
  });
});
