// Validation apart from the operator, on the real control plane with a real validator process: hostile
// and slow model files fail only their own TriageModel, capacity is shared between namespaces, a stop
// is not held up by a download, a validator that cannot answer is a retry and not a verdict, and a
// restarted operator keeps the verdicts it recorded.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerTriageModelController } from '../../controllers/triagemodel/reconcile.ts';
import type { TriageModel } from '../../crds/kinds.ts';
import { exampleModelFiles } from '../../hack/example-model/generate.ts';
import { externalDataModel, memoryBombModel } from '../../hack/example-model/hostile.ts';
import { parseYamlObjects, repoRoot } from '../../hack/local-cluster/control-plane.ts';
import { waitFor } from '../../hack/local-cluster/process.ts';
import type { ValidationRequest } from '../../model/validation-protocol.ts';
import { createValidatorClient, type ValidatorClient } from '../../model/validator-client.ts';
import type { Condition } from '../../operator/conditions.ts';
import { createKubeClient } from '../../operator/kube/client.ts';
import type { KubeObject } from '../../operator/kube/types.ts';
import type { Manager } from '../../operator/manager.ts';
import {
  type Echo,
  echoApiVersion,
  installEchoCrd,
  registerEchoController,
} from '../fixtures/echo-controller.ts';
import { createTestManager, createTestNamespace, operatorClient, testAccess } from '../harness/cluster.ts';
import { startTestValidator } from '../harness/validator.ts';

const client = createKubeClient(testAccess());
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const good = readFileSync(exampleModelFiles.model);
const files: Record<string, Uint8Array> = {
  '/good.onnx': good,
  '/copy.onnx': good,
  '/bomb.onnx': memoryBombModel(),
  '/external.onnx': externalDataModel(),
};
const exampleConfigMap = parseYamlObjects(readFileSync(exampleModelFiles.configMap, 'utf8'))[0] as KubeObject;
const example = parseYamlObjects(
  readFileSync(join(repoRoot, 'examples/triage-model.yaml'), 'utf8'),
)[0] as TriageModel;

let server: Server;
let baseUrl: string;
/** Drip responses open now, by path: a slow source holds its connection until someone hangs up. */
const dripping = new Map<string, Set<ServerResponse>>();
let validator: Awaited<ReturnType<typeof startTestValidator>>;
const cleanups: Array<() => Promise<void>> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '';
    if (path.startsWith('/drip/')) {
      // One byte every 700 ms: never idle for the 2 s limit, far below the least rate.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const open = dripping.get(path) ?? new Set();
      dripping.set(path, open.add(res));
      const timer = setInterval(() => res.write(Buffer.from([0])), 700);
      res.once('close', () => {
        clearInterval(timer);
        open.delete(res);
      });
      return;
    }
    const body = files[path];
    if (!body) return void res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  validator = await startTestValidator({
    AURORA_VALIDATOR_MEMORY_MIB: '256',
    AURORA_VALIDATOR_IDLE_TIMEOUT_SECONDS: '2',
    AURORA_VALIDATOR_MIN_BYTES_PER_SECOND: '1000',
  });
  await installEchoCrd(client);
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await validator?.stop();
  server?.closeAllConnections();
  server?.close();
});

/** A namespace of its own with the TriageModel controller (and the Echo one) on the given validator. */
async function operatorIn(prefix: string, validatorClient: ValidatorClient = validator.client) {
  const { name: namespace, cleanup } = await createTestNamespace(prefix);
  // The example's golden vectors live in its ConfigMap.
  await client.create({ ...exampleConfigMap, metadata: { ...exampleConfigMap.metadata, namespace } });
  const manager = createTestManager(operatorClient(), namespace);
  registerTriageModelController(manager, { validator: validatorClient });
  // The Echo kind is a test fixture the chart grants nothing on: it runs in this process too, with the
  // admin's client.
  const echoManager = createTestManager(client, namespace);
  registerEchoController(echoManager);
  await manager.start();
  await echoManager.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await manager.stop();
    await echoManager.stop();
  };
  cleanups.push(async () => {
    await stop();
    await cleanup();
  });
  return { namespace, manager, stop };
}

function model(
  namespace: string,
  name: string,
  path: string,
  digest = sha(files[path] ?? good),
): TriageModel {
  const spec = structuredClone(example.spec);
  spec.source = { http: { url: `${baseUrl}${path}`, sha256: digest, timeoutSeconds: 60, maxSizeMiB: 16 } };
  return { ...example, metadata: { name, namespace }, spec };
}

const ref = (namespace: string, name: string) => ({
  apiVersion: 'aurora.health/v1alpha1',
  kind: 'TriageModel',
  metadata: { name, namespace },
});

async function readyOf(namespace: string, name: string): Promise<Condition | undefined> {
  const m = await client.get<TriageModel>(ref(namespace, name));
  return m?.status?.observedGeneration === m?.metadata.generation
    ? m?.status?.conditions?.find((c) => c.type === 'Ready')
    : undefined;
}

async function ready(
  namespace: string,
  name: string,
  reason: string,
  timeoutMs = 60_000,
): Promise<Condition> {
  return waitFor(
    `TriageModel ${namespace}/${name} Ready reason ${reason}`,
    async () => {
      const c = await readyOf(namespace, name);
      return c?.reason === reason ? c : undefined;
    },
    { timeoutMs },
  );
}

async function validationsRun(manager: Manager): Promise<number> {
  const text = await manager.metrics.registry.metrics();
  return [...text.matchAll(/aurora_triagemodel_validations_total\{outcome="[^"]+"\} (\d+)/g)].reduce(
    (a, m) => a + Number(m[1]),
    0,
  );
}

describe('validation apart from the operator', () => {
  it('fails a model that allocates past the validator bound, and only it: the operator reconciles on', async () => {
    const { namespace } = await operatorIn('bomb');
    await client.create(model(namespace, 'bomb', '/bomb.onnx'));
    await client.create<Echo>({
      apiVersion: echoApiVersion,
      kind: 'Echo',
      metadata: { name: 'other-kind', namespace },
      spec: { message: 'still here' },
    });
    const verdict = await ready(namespace, 'bomb', 'ExceedsValidationMemory');
    expect(verdict.status).toBe('False');
    expect(verdict.message).toMatch(/allocates more than validation allows/);
    await waitFor('the Echo reconciled meanwhile', async () => {
      const echo = await client.get<Echo>({
        apiVersion: echoApiVersion,
        kind: 'Echo',
        metadata: { name: 'other-kind', namespace },
      });
      return echo?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') || undefined;
    });
    // The 1.2 GB the model asked for was never this process's: the operator stays small.
    expect(process.memoryUsage().rss).toBeLessThan(1024 * 2 ** 20);
    await client.create(model(namespace, 'good-after', '/good.onnx'));
    await ready(namespace, 'good-after', 'Validated');
  });

  it('refuses a model whose weights lie in an external file', async () => {
    const { namespace } = await operatorIn('external');
    await client.create(model(namespace, 'external', '/external.onnx'));
    const verdict = await ready(namespace, 'external', 'InvalidModel');
    expect(verdict.message).toMatch(/keeps 1 tensor\(s\) in external data files \(w\), which Aurora refuses/);
  });

  it("cuts off a slow-drip source, and one namespace's slow models hold up no other namespace", async () => {
    const slow = await operatorIn('slow');
    const quick = await operatorIn('quick');
    for (const name of ['drip-a', 'drip-b', 'drip-c'])
      await client.create(model(slow.namespace, name, `/drip/${name}`, 'a'.repeat(64)));
    await waitFor('the slow downloads to start', async () => (dripping.size >= 2 ? true : undefined));
    const t0 = performance.now();
    await client.create(model(quick.namespace, 'prompt', '/good.onnx'));
    await ready(quick.namespace, 'prompt', 'Validated');
    const quickSeconds = (performance.now() - t0) / 1000;
    // Judged while the slow namespace's downloads were still dripping.
    expect(await readyOf(slow.namespace, 'drip-c')).toBeUndefined();
    expect(quickSeconds).toBeLessThan(4);
    for (const name of ['drip-a', 'drip-b', 'drip-c']) {
      const cut = await ready(slow.namespace, name, 'SourceUnavailable', 30_000);
      expect(cut.message).toMatch(/bytes\/s, below the least of 1000|nothing arrived for 2 s/);
    }
  });

  it('stops within 2 s while a download is under way, and the validator hangs up on the source', async () => {
    const { namespace, stop } = await operatorIn('stop');
    await client.create(model(namespace, 'held', '/drip/held', 'b'.repeat(64)));
    await waitFor('the download to start', async () =>
      (dripping.get('/drip/held')?.size ?? 0) > 0 ? true : undefined,
    );
    const t0 = performance.now();
    await stop();
    expect(performance.now() - t0).toBeLessThan(2000);
    await waitFor(
      'the source connection to close',
      async () => (dripping.get('/drip/held')?.size === 0 ? true : undefined),
      {
        timeoutMs: 2000,
      },
    );
    expect(await readyOf(namespace, 'held')).toBeUndefined();
  });

  it('reports a validator that cannot answer as Ready=Unknown, retrying, and validates once it answers', async () => {
    let url: string | undefined = 'http://127.0.0.1:9';
    const { namespace } = await operatorIn(
      'retry',
      createValidatorClient(() => url),
    );
    await client.create(model(namespace, 'waits', '/good.onnx'));
    const retrying = await ready(namespace, 'waits', 'ValidationRetrying');
    expect(retrying.status).toBe('Unknown');
    expect(retrying.message).toMatch(/the validator did not answer: .*trying again in 15 s/);
    url = validator.url();
    await ready(namespace, 'waits', 'Validated', 45_000);
  });

  it('checks the own source of a model pinned to a digest validated for another model', async () => {
    const { namespace, manager } = await operatorIn('pinned');
    await client.create(model(namespace, 'first', '/good.onnx'));
    await ready(namespace, 'first', 'Validated');
    const runs = await validationsRun(manager);
    await client.create(model(namespace, 'gone-source', '/nowhere.onnx', sha(good)));
    const gone = await ready(namespace, 'gone-source', 'SourceUnavailable');
    expect(gone.message).toMatch(/answered HTTP 404/);
    await client.create(model(namespace, 'same-file', '/copy.onnx'));
    await ready(namespace, 'same-file', 'Validated');
    // The file was fetched and its digest checked; the verdict for it was not judged again.
    expect(await validationsRun(manager)).toBe(runs);
  });

  it('keeps the verdicts a restarted operator finds recorded, and asks the validator nothing', async () => {
    const first = await operatorIn('restart');
    for (const name of ['one', 'two']) await client.create(model(first.namespace, name, '/good.onnx'));
    await ready(first.namespace, 'one', 'Validated');
    await ready(first.namespace, 'two', 'Validated');
    const before = await client.get<TriageModel>(ref(first.namespace, 'one'));
    expect(before?.status?.verdict).toEqual({ digest: `sha256:${sha(good)}`, specHash: expect.any(String) });
    await first.stop();
    const asked: ValidationRequest[] = [];
    const counting: ValidatorClient = {
      validate: (request, signal) => {
        asked.push(request);
        return validator.client.validate(request, signal);
      },
    };
    const restarted = createTestManager(operatorClient(), first.namespace);
    registerTriageModelController(restarted, { validator: counting });
    await restarted.start();
    cleanups.push(() => restarted.stop());
    await new Promise((r) => setTimeout(r, 3000));
    expect(asked).toEqual([]);
    const after = await client.get<TriageModel>(ref(first.namespace, 'one'));
    expect(after?.metadata.resourceVersion).toBe(before?.metadata.resourceVersion);
    // A change to what judges the file is judged again.
    await client.patch(
      ref(first.namespace, 'two'),
      { spec: { acceptance: { minAccuracy: 0.5 } } },
      { type: 'merge' },
    );
    await waitFor('the changed model to be judged', async () => (asked.length > 0 ? true : undefined));
    await ready(first.namespace, 'two', 'Validated');
  });
});
